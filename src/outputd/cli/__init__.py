"""The `outputd` command line: a thin adapter over the operations."""
