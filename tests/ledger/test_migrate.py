"""Migrations: run from code, and they build exactly what schema.py describes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.types import TypeDecorator

import billingcenter.ledger
from billingcenter.ledger import migrate
from billingcenter.ledger.coltypes import is_mysql
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.schema import TABLE_OPTIONS
from billingcenter.ledger.tables import metadata


def mysql_ddl(type_, dialect):
    """A MySQL column type as DDL, minus what reflection adds or drops on its own."""
    type_ = getattr(type_, "_variant_mapping", {}).get(dialect.name, type_)
    if isinstance(type_, TypeDecorator):
        type_ = type_.load_dialect_impl(dialect)
    text = type_.compile(dialect=dialect)
    text = re.sub(r"^(BIGINT|INTEGER)\(\d+\)", r"\1", text)
    text = text.replace(" CHARACTER SET utf8mb4", "")
    if text.startswith(("VARCHAR", "TEXT", "MEDIUMTEXT")) and "COLLATE" not in text:
        text += f" COLLATE {TABLE_OPTIONS['mysql_collate']}"
    return text


def exact_types(context, inspected_column, metadata_column, inspected_type, metadata_type):
    """Alembic's type comparison ignores MySQL collation, charset and fsp: compare the DDL."""
    dialect = context.dialect
    if not is_mysql(dialect):
        return None
    return mysql_ddl(inspected_type, dialect) != mysql_ddl(metadata_type, dialect)


def differences(url):
    """What autogenerate would change to make the database at ``url`` match the metadata."""
    engine = create_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": exact_types, "compare_server_default": True}
            )
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


class TestMigrationMatchesMetadata:
    def test_sqlite(self, sqlite_url):
        """The migrated SQLite database is exactly the metadata."""
        assert differences(sqlite_url) == []

    @pytest.mark.mariadb
    def test_mariadb(self, mysql_url):
        """The migrated MariaDB database is exactly the metadata, collations and fsp included."""
        assert differences(mysql_url) == []

    @pytest.mark.mariadb
    def test_the_comparison_sees_collations(self, mysql_url, mysql_engine):
        """The comparison is strict enough to notice a key column losing its binary collation."""
        with mysql_engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE usage_record MODIFY item_code VARCHAR(128) NOT NULL")
        try:
            found = differences(mysql_url)
        finally:
            with mysql_engine.begin() as conn:
                conn.exec_driver_sql(
                    "ALTER TABLE usage_record MODIFY item_code "
                    "VARCHAR(128) COLLATE utf8mb4_nopad_bin NOT NULL"
                )
        assert [d[0][0] for d in found] == ["modify_type"]
        assert differences(mysql_url) == []

    @pytest.mark.mariadb
    def test_mariadb_table_options(self, mysql_url, mysql_engine):
        """Every table is InnoDB with utf8mb4."""
        with mysql_engine.connect() as conn:
            found = conn.execute(
                sa.text(
                    "SELECT table_name, engine, table_collation FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() AND table_name != 'alembic_version'"
                )
            ).all()
        assert sorted(name for name, _, _ in found) == sorted(metadata.tables)
        assert {(engine, collation) for _, engine, collation in found} == {
            ("InnoDB", "utf8mb4_unicode_ci")
        }


class TestRunningMigrations:
    def test_upgrade_and_current(self, tmp_path):
        """A new database has no revision; upgrade brings it to head, twice is harmless."""
        url = f"sqlite:///{tmp_path}/new.sqlite3"
        assert migrate.current(url) is None
        assert not migrate.is_current(url)
        migrate.upgrade(url)
        migrate.upgrade(url)
        assert migrate.current(url) == migrate.head()
        assert migrate.is_current(url)

    def test_downgrade_and_back(self, tmp_path):
        """The intake migration can be undone and redone."""
        url = f"sqlite:///{tmp_path}/new.sqlite3"
        migrate.upgrade(url)
        command.downgrade(migrate.config(url), "base")
        assert migrate.current(url) is None
        migrate.upgrade(url)
        assert differences(url) == []

    def test_scripts_are_found_inside_the_package(self):
        """The scripts are a package resource: no alembic.ini, no working-directory lookup."""
        scripts = ScriptDirectory.from_config(migrate.config("sqlite://"))
        package = Path(billingcenter.ledger.__file__).parent
        assert Path(scripts.dir).resolve() == (package / "migrations").resolve()
        assert (package / "migrations" / "script.py.mako").is_file()

    def test_offline_sql(self, capsys):
        """The migration can be printed as MySQL DDL for a DBA, without a connection."""
        command.upgrade(migrate.config("mysql+pymysql://nobody@nowhere/x"), "head", sql=True)
        out = capsys.readouterr().out
        assert "CREATE TABLE usage_record" in out and "ENGINE=InnoDB" in out
