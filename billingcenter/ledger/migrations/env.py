"""Alembic environment of the ledger, driven from ``billingcenter.ledger.migrate``.

The URL (or an open connection) arrives in ``config.attributes``; the engine is
built by ``billingcenter.ledger.engine`` so migrations run with the same
per-database settings (utf8mb4, strict mode, SQLite pragmas) as the service.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.tables import metadata


def run_offline() -> None:
    """Write the migration SQL for the URL's dialect instead of running it."""
    context.configure(
        url=context.config.attributes["url"],
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Migrate through the given connection, or through a short-lived engine."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = create_engine(context.config.attributes["url"], pool_size=1)
    try:
        with engine.connect() as connection:
            _migrate(connection)
    finally:
        engine.dispose()


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
