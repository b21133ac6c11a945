"""The wire contract in Python: DTO mapping and the method table (no SQL, no Twisted)."""
