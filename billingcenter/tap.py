"""``makeService(config)``: the single place where the daemon is wired.

config -> engine and ledger -> thread pool -> service -> Hessian resource -> listener.
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from twisted.application import service
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from billingcenter.api.methods import method_table
from billingcenter.auth import Authenticator, check_listen_safety
from billingcenter.catalogue import load_catalogue
from billingcenter.config import Config, ConfigError
from billingcenter.jobs.arrears import ArrearsTimer
from billingcenter.jobs.arrears import check as check_arrears
from billingcenter.jobs.bill_timer import BillRunner, BillTimer
from billingcenter.jobs.timer import DayRater, RatingTimer
from billingcenter.ledger import migrate
from billingcenter.ledger.control import ServicePolicy
from billingcenter.ledger.engine import create_engine, default_sqlite_url
from billingcenter.ledger.payments import AccountStore
from billingcenter.ledger.rules import RuleStore
from billingcenter.ledger.store import SqlLedger
from billingcenter.outbound.delivery import Deliverer, remotes_of
from billingcenter.resource import HessianResource, make_site
from billingcenter.service import BillingService

log = Logger()


def database_url(config: Config) -> str:
    """The configured database URL, or SQLite under the data directory."""
    if config.database_url:
        return config.database_url
    config.data_dir.mkdir(parents=True, exist_ok=True)
    return default_sqlite_url(config.data_dir)


def prepare_schema(url: str) -> None:
    """Bring the embedded SQLite schema up to date; insist that others are migrated."""
    if url.startswith("sqlite"):
        migrate.upgrade(url)
        return
    if not migrate.is_current(url):
        raise ConfigError(
            "the database schema is not at the current version; run "
            "`billingcenter db upgrade --database-url ...` first"
        )


class ThreadPoolService(service.Service):
    """Starts and stops the database thread pool with the application."""

    def __init__(self, pool: ThreadPool) -> None:
        self.pool = pool

    def startService(self) -> None:
        """Start the pool."""
        super().startService()
        self.pool.start()

    def stopService(self) -> None:
        """Stop the pool, waiting for running work."""
        super().stopService()
        self.pool.stop()


class ListenService(service.Service):
    """Listens on an endpoint and says where, once, on stdout."""

    def __init__(self, reactor: Any, endpoint: str, site: Any) -> None:
        self.reactor = reactor
        self.endpoint = endpoint
        self.site = site
        self.port: Any = None

    def startService(self) -> None:
        """Listen; a failure to listen stops the reactor with the reason logged."""
        super().startService()
        d = serverFromString(self.reactor, self.endpoint).listen(self.site)
        d.addCallbacks(self._listening, self._failed)

    def _listening(self, port: Any) -> None:
        self.port = port
        address = port.getHost()
        host = getattr(address, "host", None)
        where = (f"http://{_host(host)}:{address.port}/billing" if host is not None
                 else f"{self.endpoint} /billing")
        print(f"billingcenter listening on {where}", file=sys.stdout, flush=True)

    def _failed(self, failure: Any) -> None:
        log.failure("cannot listen on {endpoint}", failure, endpoint=self.endpoint)
        if self.reactor.running:
            self.reactor.stop()

    def stopService(self) -> Any:
        """Stop listening."""
        super().stopService()
        if self.port is not None:
            return defer.maybeDeferred(self.port.stopListening)
        return None


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def business_zone(config: Config) -> ZoneInfo:
    """The business time zone, or a ConfigError naming the bad value."""
    try:
        return ZoneInfo(config.business_time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"[business] time_zone {config.business_time_zone!r} is not a known time zone"
        ) from exc


def makeService(config: Config, reactor: Any = None) -> service.MultiService:
    """Wire the daemon from its configuration."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    check_listen_safety(config.endpoint, config.auth_enabled)
    tz = business_zone(config)
    authenticator = Authenticator.from_callers(config.callers) if config.callers else None
    url = database_url(config)
    prepare_schema(url)
    engine = create_engine(url)
    ledger = SqlLedger(engine, config.limits)
    if config.catalogue_file is not None:
        ledger.sync_products(load_catalogue(config.catalogue_file))
    pool = ThreadPool(minthreads=1, maxthreads=config.threads, name="billingcenter-db")
    run = partial(deferToThreadPool, reactor, pool)

    def clock() -> datetime:
        # Whole milliseconds: what java.util.Date carries, so a stored receipt time and
        # the one a caller saw are the same value.
        return datetime.fromtimestamp(int(reactor.seconds() * 1000) / 1000, UTC)

    rules = RuleStore(engine, config.roles)
    accounts = AccountStore(
        engine, ServicePolicy(timedelta(seconds=config.arrears.grace), config.arrears.products),
        config.limits)
    billing = BillingService.create(ledger, run, clock, config.write_batches,
                                    rules=rules.published_book, payments=accounts)
    resource = HessianResource(billing, method_table(), authenticator, config.max_depth)
    top = service.MultiService()
    ThreadPoolService(pool).setServiceParent(top)
    owner = config.name or f"{socket.gethostname()}:{os.getpid()}"
    # After the pool, so they stop first: a run in progress ends after its chunk.
    rater = DayRater(engine, rules.published_book, tz, config.rating.chunk, owner, clock)
    RatingTimer(reactor, clock, config.rating, tz,
                lambda day: deferToThreadPool(reactor, pool, rater, day),
                lookback=config.rating.lookback, on_stop=rater.stopping.set).setServiceParent(top)
    biller = BillRunner(engine, config.billing, owner, clock)
    BillTimer(reactor, clock, config.billing, tz,
              lambda day: deferToThreadPool(reactor, pool, biller, day),
              on_stop=biller.stopping.set).setServiceParent(top)
    Deliverer(engine, run, config.outbox, remotes_of(config), owner, clock,
              reactor).setServiceParent(top)
    ArrearsTimer(
        reactor, clock, config.arrears.interval,
        lambda now: deferToThreadPool(reactor, pool, check_arrears, accounts, now),
    ).setServiceParent(top)
    ListenService(reactor, config.endpoint, make_site(resource, config.max_body)).setServiceParent(
        top
    )
    return top
