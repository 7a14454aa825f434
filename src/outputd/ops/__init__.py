"""The operations: everything a person or a machine may ask of outputd, each with its
permission check (DESIGN §8, §11)."""
