"""I/O jobs: batch work that reads the ledger, calls the pure core and writes back."""
