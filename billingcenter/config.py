"""Configuration: an ini file read once into frozen values.

See ``conf/billingcenter.ini`` for every key with its default and meaning.  Paths in
the file are relative to the file's own directory.
"""

from __future__ import annotations

import configparser
import os
from datetime import timedelta
from pathlib import Path

import attrs

from billingcenter.intake import Limits

DEFAULT_ENDPOINT = "tcp:8080:interface=127.0.0.1"
REPO_CONF = Path(__file__).resolve().parent.parent / "conf"


class ConfigError(Exception):
    """The configuration is unusable; the message says which key and why."""


@attrs.frozen
class Caller:
    """One calling system: its HTTP Basic user, hashed password and allowed methods."""

    name: str
    password_hash: str
    methods: frozenset[str]


@attrs.frozen
class Roles:
    """Who may do what with rule sets: user names as given to ``--as``."""

    authors: frozenset[str] = frozenset()
    reviewers: frozenset[str] = frozenset()
    publishers: frozenset[str] = frozenset()


@attrs.frozen
class RatingSettings:
    """The daily rating job: when it runs in the daemon and how it splits the work."""

    enabled: bool = True  # run on a timer inside the daemon
    delay: int = 1800  # seconds after a business day closes before it is rated
    chunk: int = 5000  # orders per claimed unit of work


@attrs.frozen
class Config:
    """Everything the daemon and the ops commands need to know."""

    endpoint: str = DEFAULT_ENDPOINT
    database_url: str = ""
    data_dir: Path = Path("data")
    catalogue_file: Path | None = None
    max_body: int = 1024 * 1024
    max_depth: int = 64
    threads: int = 16
    write_batches: int = 1
    business_time_zone: str = "Asia/Shanghai"
    limits: Limits = Limits()
    callers: tuple[Caller, ...] = ()
    roles: Roles = Roles()
    rating: RatingSettings = RatingSettings()

    @property
    def auth_enabled(self) -> bool:
        """Whether callers must authenticate (true as soon as one caller is configured)."""
        return bool(self.callers)


def _int(parser: configparser.ConfigParser, section: str, key: str, default: int) -> int:
    try:
        value = parser.getint(section, key, fallback=default)
    except ValueError as exc:
        raise ConfigError(f"[{section}] {key} must be an integer") from exc
    if value <= 0:
        raise ConfigError(f"[{section}] {key} must be positive, got {value}")
    return value


def _path(base: Path, value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else (base / path)


def _callers(parser: configparser.ConfigParser) -> tuple[Caller, ...]:
    callers = []
    for section in parser.sections():
        if not section.startswith("caller:"):
            continue
        name = section.split(":", 1)[1].strip()
        password_hash = parser.get(section, "password_hash", fallback="").strip()
        if not name or not password_hash:
            raise ConfigError(f"[{section}] needs a name and a password_hash")
        methods = parser.get(section, "methods", fallback="").replace(",", " ").split()
        if not methods:
            raise ConfigError(f"[{section}] methods lists nothing this caller may call")
        callers.append(Caller(name, password_hash, frozenset(methods)))
    return tuple(callers)


def _names(parser: configparser.ConfigParser, section: str, key: str) -> frozenset[str]:
    return frozenset(parser.get(section, key, fallback="").replace(",", " ").split())


def _roles(parser: configparser.ConfigParser) -> Roles:
    return Roles(
        authors=_names(parser, "roles", "authors"),
        reviewers=_names(parser, "roles", "reviewers"),
        publishers=_names(parser, "roles", "publishers"),
    )


def _rating(parser: configparser.ConfigParser) -> RatingSettings:
    try:
        enabled = parser.getboolean("rating", "enabled", fallback=True)
    except ValueError as exc:
        raise ConfigError("[rating] enabled must be true or false") from exc
    return RatingSettings(
        enabled=enabled,
        delay=_int(parser, "rating", "delay", 1800),
        chunk=_int(parser, "rating", "chunk", 5000),
    )


def load_config(path: Path | None) -> Config:
    """Read the ini file at ``path`` (None: all defaults, the repo's catalogue)."""
    parser = configparser.ConfigParser(interpolation=None)
    base = Path.cwd()
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error as exc:
            raise ConfigError(f"config file {path}: {exc}") from exc
        base = path.resolve().parent
    catalogue = parser.get("catalogue", "file", fallback="").strip()
    default_catalogue = REPO_CONF / "catalogue.toml"
    return Config(
        endpoint=parser.get("server", "endpoint", fallback=DEFAULT_ENDPOINT),
        database_url=parser.get("database", "url", fallback="").strip(),
        data_dir=_path(base, parser.get("database", "data_dir", fallback="data")),
        catalogue_file=_path(base, catalogue) if catalogue else (
            default_catalogue if default_catalogue.is_file() else None
        ),
        max_body=_int(parser, "server", "max_body", 1024 * 1024),
        max_depth=_int(parser, "server", "max_depth", 64),
        threads=_int(parser, "server", "threads", 16),
        write_batches=_int(parser, "server", "write_batches", 1),
        business_time_zone=parser.get("business", "time_zone", fallback="Asia/Shanghai"),
        limits=Limits(
            max_future=timedelta(seconds=_int(parser, "intake", "max_future", 86400))
        ),
        callers=_callers(parser),
        roles=_roles(parser),
        rating=_rating(parser),
    )
