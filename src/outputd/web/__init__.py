"""`outputd web`: the HTTP API (and later the board), a process of its own that talks
to the daemon only through the store."""
