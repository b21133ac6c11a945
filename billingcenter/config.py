"""Configuration: an ini file read once into frozen values.

See ``conf/billingcenter.ini`` for every key with its default and meaning.  Paths in
the file are relative to the file's own directory.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import attrs

from billingcenter.intake import Limits

DEFAULT_ENDPOINT = "tcp:8080:interface=127.0.0.1"
REPO_CONF = Path(__file__).resolve().parent.parent / "conf"


class ConfigError(Exception):
    """The configuration is unusable; the message says which key and why."""


MAX_BILL_WORKERS = 32  # threads sharing one bill run

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
    lookback: int = 7  # closed days before the latest one rated again on each run


@attrs.frozen
class BillingSettings:
    """Bill runs: the default billing date and how a run is split and scheduled."""

    enabled: bool = True  # run on a timer inside the daemon
    day: int = 1  # day of the month bills are made (1..28), unless a payer says otherwise
    delay: int = 7200  # seconds after the billing date starts before its run
    chunk: int = 1000  # payers per claimed unit of work
    workers: int = 2  # threads (each with its connection) sharing a run in the daemon


@attrs.frozen
class Remote:
    """An outbound Hessian service: where, with which HTTP Basic credentials, how long."""

    url: str = ""
    user: str = ""
    password: str = ""
    timeout: float = 10.0  # seconds for one call (connect and answer)

    @property
    def configured(self) -> bool:
        """Whether a URL is set."""
        return bool(self.url)


@attrs.frozen
class OutboxSettings:
    """Delivery of outbound calls: polling, concurrency, retries with backoff."""

    enabled: bool = True  # deliver from inside the daemon
    interval: float = 1.0  # seconds between polls when nothing is due
    batch: int = 200  # messages leased per poll
    concurrency: int = 16  # calls in flight at once
    max_attempts: int = 100  # then the message is DEAD (billingcenter outbox retry)
    backoff_initial: float = 2.0  # seconds before the first retry, doubled each time
    backoff_max: float = 600.0  # longest wait between two attempts
    lease: int = 120  # seconds a poller holds messages before another may take them
    keep_delivered: int = 30  # days a DELIVERED message is kept, then purged (0: forever)


@attrs.frozen
class ArrearsSettings:
    """Service control: when arrears stop service, and which orders."""

    grace: int = 0  # seconds from a failed deduction to the stop (0: at once)
    products: frozenset[str] = frozenset()  # products whose orders stop; empty: all
    interval: int = 60  # seconds between arrears checks in the daemon


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
    name: str = ""  # the owner name of claims and leases; empty: host:pid
    business_time_zone: str = "Asia/Shanghai"
    limits: Limits = Limits()
    callers: tuple[Caller, ...] = ()
    roles: Roles = Roles()
    rating: RatingSettings = RatingSettings()
    billing: BillingSettings = BillingSettings()
    account_system: Remote = Remote()  # chargeAccount
    feedback: Remote = Remote()  # feedbackUser, every product without its own
    feedback_by_product: Mapping[str, Remote] = attrs.field(factory=dict)
    outbox: OutboxSettings = OutboxSettings()
    arrears: ArrearsSettings = ArrearsSettings()

    def feedback_for(self, product_code: str) -> Remote:
        """The business system told about a product's orders."""
        return self.feedback_by_product.get(product_code, self.feedback)

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


def _count(parser: configparser.ConfigParser, section: str, key: str, default: int) -> int:
    """An integer that may be zero."""
    try:
        value = parser.getint(section, key, fallback=default)
    except ValueError as exc:
        raise ConfigError(f"[{section}] {key} must be an integer") from exc
    if value < 0:
        raise ConfigError(f"[{section}] {key} must not be negative, got {value}")
    return value


def _seconds(parser: configparser.ConfigParser, section: str, key: str, default: float) -> float:
    try:
        value = parser.getfloat(section, key, fallback=default)
    except ValueError as exc:
        raise ConfigError(f"[{section}] {key} must be a number of seconds") from exc
    if not value > 0:
        raise ConfigError(f"[{section}] {key} must be positive, got {value}")
    return value


def _flag(parser: configparser.ConfigParser, section: str, key: str, default: bool) -> bool:
    try:
        return parser.getboolean(section, key, fallback=default)
    except ValueError as exc:
        raise ConfigError(f"[{section}] {key} must be true or false") from exc


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
        lookback=_count(parser, "rating", "lookback", 7),
    )


def _billing(parser: configparser.ConfigParser) -> BillingSettings:
    day = _int(parser, "billing", "day", 1)
    if day > 28:
        raise ConfigError(f"[billing] day must be 1..28 (every month has it), got {day}")
    workers = _int(parser, "billing", "workers", 2)
    if workers > MAX_BILL_WORKERS:
        raise ConfigError(f"[billing] workers must be 1..{MAX_BILL_WORKERS}, got {workers}")
    return BillingSettings(
        enabled=_flag(parser, "billing", "enabled", True),
        day=day,
        delay=_count(parser, "billing", "delay", 7200),
        chunk=_int(parser, "billing", "chunk", 1000),
        workers=workers,
    )


def _remote(parser: configparser.ConfigParser, section: str, base: Remote | None = None
            ) -> Remote:
    base = base or Remote()
    url = parser.get(section, "url", fallback=base.url).strip()
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(f"[{section}] url must be an http:// or https:// URL, got {url!r}")
    return Remote(
        url=url,
        user=parser.get(section, "user", fallback=base.user).strip(),
        password=parser.get(section, "password", fallback=base.password),
        timeout=_seconds(parser, section, "timeout", base.timeout),
    )


def _feedback_by_product(parser: configparser.ConfigParser, default: Remote
                         ) -> dict[str, Remote]:
    found = {}
    for section in parser.sections():
        if section.startswith("feedback:"):
            product = section.split(":", 1)[1].strip()
            if not product:
                raise ConfigError(f"[{section}] needs a product code after 'feedback:'")
            found[product] = _remote(parser, section, default)
    return found


def _outbox(parser: configparser.ConfigParser) -> OutboxSettings:
    return OutboxSettings(
        enabled=_flag(parser, "outbox", "enabled", True),
        interval=_seconds(parser, "outbox", "interval", 1.0),
        batch=_int(parser, "outbox", "batch", 200),
        concurrency=_int(parser, "outbox", "concurrency", 16),
        max_attempts=_int(parser, "outbox", "max_attempts", 100),
        backoff_initial=_seconds(parser, "outbox", "backoff_initial", 2.0),
        backoff_max=_seconds(parser, "outbox", "backoff_max", 600.0),
        lease=_int(parser, "outbox", "lease", 120),
        keep_delivered=_count(parser, "outbox", "keep_delivered", 30),
    )


def _arrears(parser: configparser.ConfigParser) -> ArrearsSettings:
    return ArrearsSettings(
        grace=_count(parser, "arrears", "grace", 0),
        products=_names(parser, "arrears", "products"),
        interval=_int(parser, "arrears", "interval", 60),
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
    feedback = _remote(parser, "feedback")
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
        name=parser.get("server", "name", fallback="").strip(),
        business_time_zone=parser.get("business", "time_zone", fallback="Asia/Shanghai"),
        limits=Limits(
            max_future=timedelta(seconds=_int(parser, "intake", "max_future", 86400))
        ),
        callers=_callers(parser),
        roles=_roles(parser),
        rating=_rating(parser),
        billing=_billing(parser),
        account_system=_remote(parser, "account_system"),
        feedback=feedback,
        feedback_by_product=_feedback_by_product(parser, feedback),
        outbox=_outbox(parser),
        arrears=_arrears(parser),
    )
