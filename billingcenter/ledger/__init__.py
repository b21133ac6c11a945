"""The ledger: where inbound facts and money are stored (SQLAlchemy Core, thread pool)."""
