"""Run the ledger's Alembic migrations from code: no ``alembic.ini``, works installed.

The scripts live in the package (``billingcenter/ledger/migrations``) and are
found as a package resource, so an installed wheel migrates the same way as a
checkout.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from billingcenter.ledger.engine import create_engine

SCRIPT_LOCATION = "billingcenter.ledger:migrations"


def config(url: str) -> Config:
    """An Alembic ``Config`` for the database at ``url``, built in code."""
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.set_main_option("path_separator", "os")
    # Passed as an attribute, not an option: options go through ConfigParser
    # interpolation, which a '%' in a password would break.
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (the newest by default)."""
    command.upgrade(config(url), revision)


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None if it was never migrated."""
    engine = create_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision the package ships."""
    revision = ScriptDirectory.from_config(config("sqlite://")).get_current_head()
    if revision is None:
        raise RuntimeError("the ledger ships no migrations")
    return revision


def is_current(url: str) -> bool:
    """Whether the database at ``url`` is at the newest revision the package ships."""
    return current(url) == head()
