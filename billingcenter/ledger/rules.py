"""Rule set versions in the ledger and their review-before-publish workflow.

A version is imported from its TOML text (``billingcenter.rating.ruleset``) as a
draft, reviewed by someone else, published, and retired::

    import   author (the TOML's author)    new (set, version)      -> draft
    edit     the draft's author            draft, different text   -> draft
    review   a reviewer, not the author    draft                   -> reviewed
    publish  a publisher                   reviewed                -> published
    retire   a publisher                   reviewed or published   -> retired

Re-importing the identical text is a no-op in every status; any other change of a
reviewed, published or retired version is refused (import it as a new version).
Publishing retires nothing: several versions of a set may be published at once and
``RuleBook`` picks the one in force by effective time (of two with the same effective
time, the one published last).

Each operation is one transaction: the version row is locked (``SELECT ... FOR
UPDATE``), the status checked, the row changed and the audit row written together,
so two racing reviewers cannot both review.  A refused operation raises a typed
``BillingError`` before anything is written.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import attrs
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine, Row

from billingcenter.errors import (
    InvalidRuleSet,
    RoleForbidden,
    RuleWorkflowError,
    UnknownRuleVersion,
)
from billingcenter.ledger import transact
from billingcenter.ledger.rule_values import (
    AuditAction,
    AuditEntry,
    Imported,
    ImportOutcome,
    NoRoles,
    RoleNames,
    RuleStatus,
    RuleVersion,
)
from billingcenter.ledger.schema_rules import (
    ACTOR_MAX,
    RULE_SET_MAX,
    VERSION_MAX,
    rule_audit,
    rule_version,
)
from billingcenter.rating.model import RuleBook, RuleSet
from billingcenter.rating.ruleset import RuleSetError, parse_rule_set

T = TypeVar("T")


@attrs.frozen
class _Transition:
    """A status change: from which statuses, to which, and the role it takes."""

    action: AuditAction
    sources: tuple[RuleStatus, ...]
    target: RuleStatus
    role: str  # attribute of RoleNames
    past: str


REVIEW = _Transition(AuditAction.REVIEW, (RuleStatus.DRAFT,), RuleStatus.REVIEWED,
                     "reviewers", "reviewed")
PUBLISH = _Transition(AuditAction.PUBLISH, (RuleStatus.REVIEWED,), RuleStatus.PUBLISHED,
                      "publishers", "published")
RETIRE = _Transition(AuditAction.RETIRE, (RuleStatus.REVIEWED, RuleStatus.PUBLISHED),
                     RuleStatus.RETIRED, "publishers", "retired")


@attrs.frozen
class _Text:
    """A text to import, parsed, with its digest."""

    text: str
    parsed: RuleSet
    digest: str


class RuleStore:
    """Rule set versions on SQLite or MySQL/MariaDB; ``roles`` says who may change them."""

    def __init__(self, engine: Engine, roles: RoleNames | None = None) -> None:
        self._engine = engine
        self._roles: RoleNames = roles if roles is not None else NoRoles()
        self._parsed: dict[str, RuleSet] = {}  # digest -> parsed
        self._book: tuple[tuple[str, ...], RuleBook] | None = None  # by published digests

    def import_version(self, text: str, actor: str, now: datetime) -> Imported:
        """Import one TOML text as ``actor``: a new draft, an edit of a draft, or a no-op."""
        (imported,) = self.import_versions([text], actor, now)
        return imported

    def import_versions(
        self, texts: Sequence[str], actor: str, now: datetime
    ) -> tuple[Imported, ...]:
        """Import several texts as ``actor`` in one transaction: all of them or none."""
        items = [_prepare(text) for text in texts]
        for item in items:
            self._may_import(item.parsed, actor)
        _refuse_clashes(items)
        # Rows are locked in key order so two concurrent imports cannot deadlock.
        order = sorted(range(len(items)), key=lambda i: _key(items[i].parsed))

        def work(conn: Connection) -> tuple[Imported, ...]:
            done = {i: _import(conn, items[i], actor, now) for i in order}
            return tuple(done[i] for i in range(len(items)))

        return self._write(work)

    def review(
        self, rule_set: str, version: str, actor: str, now: datetime, note: str = ""
    ) -> RuleVersion:
        """Draft -> reviewed, by a reviewer who is not the version's author."""
        return self._move(REVIEW, rule_set, version, actor, now, note)

    def publish(
        self, rule_set: str, version: str, actor: str, now: datetime, note: str = ""
    ) -> RuleVersion:
        """Reviewed -> published, by a publisher; other published versions stay published."""
        return self._move(PUBLISH, rule_set, version, actor, now, note)

    def retire(
        self, rule_set: str, version: str, actor: str, now: datetime, note: str = ""
    ) -> RuleVersion:
        """Reviewed or published -> retired, by a publisher."""
        return self._move(RETIRE, rule_set, version, actor, now, note)

    def list_versions(self, rule_set: str | None = None) -> tuple[RuleVersion, ...]:
        """Every version (of ``rule_set`` only, if given), by set and effective time."""
        query = select(rule_version).order_by(
            rule_version.c.rule_set, rule_version.c.effective_from, rule_version.c.version
        )
        if rule_set is not None:
            query = query.where(rule_version.c.rule_set == rule_set)
        found = self._read(lambda conn: conn.execute(query).all())
        return tuple(_version_from_row(row) for row in found)

    def get(self, rule_set: str, version: str) -> RuleVersion:
        """The stored version; ``UnknownRuleVersion`` if there is none."""
        return _version_from_row(self._read(lambda conn: _find(conn, rule_set, version)))

    def audit(self, rule_set: str, version: str) -> tuple[AuditEntry, ...]:
        """The version's changes, oldest first."""

        def work(conn: Connection) -> list[Row[Any]]:
            version_id = _find(conn, rule_set, version).id
            query = (
                select(rule_audit)
                .where(rule_audit.c.version_id == version_id)
                .order_by(rule_audit.c.id)
            )
            return list(conn.execute(query).all())

        return tuple(_audit_from_row(row) for row in self._read(work))

    def load(self, rule_set: str, version: str) -> RuleSet:
        """The stored version parsed, whatever its status (to simulate a draft)."""
        return self._parse(self.get(rule_set, version))

    def published_book(self) -> RuleBook:
        """Every published version, parsed: what rating and quotes price with.

        Versions come in publishing order, so of two with the same effective time the
        one published last is in force.  Parsed versions and the book itself are kept:
        while nothing is published or retired, each call costs one small query.
        """
        digests = tuple(self._read(lambda conn: conn.execute(_PUBLISHED).scalars().all()))
        cached = self._book
        if cached is not None and cached[0] == digests:
            return cached[1]
        missing = [digest for digest in digests if digest not in self._parsed]
        if missing:
            query = select(rule_version).where(rule_version.c.digest.in_(missing))
            for row in self._read(lambda conn: conn.execute(query).all()):
                self._parse(_version_from_row(row))
        book = RuleBook(versions=tuple(self._parsed[digest] for digest in digests))
        self._book = (digests, book)
        return book

    def diff(self, rule_set: str, old: str, new: str) -> str:
        """A unified diff of two versions' sources ("" when they are identical)."""
        before, after = self.get(rule_set, old), self.get(rule_set, new)
        lines = difflib.unified_diff(
            _lines(before.source), _lines(after.source),
            fromfile=before.label, tofile=after.label,
        )
        return "".join(lines)

    def _may_import(self, parsed: RuleSet, actor: str) -> None:
        if actor not in self._roles.authors:
            raise RoleForbidden(f"{actor!r} may not import rule sets: not one of [roles] authors")
        if parsed.author != actor:
            raise RoleForbidden(
                f"{parsed.name} {parsed.version} names author {parsed.author!r}: only they "
                f"may import it, not {actor!r}"
            )

    def _move(
        self,
        move: _Transition,
        rule_set: str,
        version: str,
        actor: str,
        now: datetime,
        note: str,
    ) -> RuleVersion:
        verb = move.action.value
        if actor not in getattr(self._roles, move.role):
            raise RoleForbidden(
                f"{actor!r} may not {verb} rule sets: not one of [roles] {move.role}"
            )
        return self._write(lambda conn: _apply(conn, move, rule_set, version, actor, now, note))

    def _parse(self, stored: RuleVersion) -> RuleSet:
        parsed = self._parsed.get(stored.digest)
        if parsed is None:
            try:
                parsed = parse_rule_set(stored.source)
            except RuleSetError as exc:
                raise InvalidRuleSet(f"stored {stored.label} no longer parses: {exc}") from exc
            self._parsed[stored.digest] = parsed
        return parsed

    def _write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a write transaction (``billingcenter.ledger.transact.write``)."""
        return transact.write(self._engine, work)

    def _read(self, work: Callable[[Connection], T]) -> T:
        return transact.read(self._engine, work)


# Digests of the published versions in publishing order (the latest publish of each).
_LAST_PUBLISH = (
    select(rule_audit.c.version_id, func.max(rule_audit.c.id).label("publish_id"))
    .where(rule_audit.c.action == AuditAction.PUBLISH.value)
    .group_by(rule_audit.c.version_id)
    .subquery()
)
_PUBLISHED = (
    select(rule_version.c.digest)
    .join(_LAST_PUBLISH, _LAST_PUBLISH.c.version_id == rule_version.c.id)
    .where(rule_version.c.status == RuleStatus.PUBLISHED.value)
    .order_by(_LAST_PUBLISH.c.publish_id)
)


def _prepare(text: str) -> _Text:
    """Parse a text and check that it fits the ledger's columns."""
    try:
        parsed = parse_rule_set(text)
    except RuleSetError as exc:
        raise InvalidRuleSet(str(exc)) from exc
    for field, value, limit in (
        ("name", parsed.name, RULE_SET_MAX),
        ("version", parsed.version, VERSION_MAX),
        ("author", parsed.author, ACTOR_MAX),
    ):
        if not value or len(value) > limit:
            raise InvalidRuleSet(f"rule_set.{field}: must be 1 to {limit} characters")
    for field, moment in (("effective_from", parsed.effective_from),
                          ("effective_to", parsed.effective_to)):
        if moment is not None and moment.utcoffset() is None:
            raise InvalidRuleSet(f"rule_set.{field}: needs a UTC offset (e.g. +08:00)")
    return _Text(text, parsed, hashlib.sha256(text.encode("utf-8")).hexdigest())


def _key(parsed: RuleSet) -> tuple[str, str]:
    return parsed.name, parsed.version


def _refuse_clashes(items: list[_Text]) -> None:
    """Refuse one batch holding two different texts of the same (set, version)."""
    seen: dict[tuple[str, str], str] = {}
    for item in items:
        key = _key(item.parsed)
        if seen.setdefault(key, item.digest) != item.digest:
            raise InvalidRuleSet(f"two different texts of {key[0]} {key[1]} in one import")


def _import(conn: Connection, item: _Text, actor: str, now: datetime) -> Imported:
    parsed = item.parsed
    row = _locked(conn, parsed.name, parsed.version)
    if row is None:
        values = {**_text_values(item), "rule_set": parsed.name, "version": parsed.version,
                  "status": RuleStatus.DRAFT.value, "created_at": now}
        key = conn.execute(insert(rule_version), values).inserted_primary_key
        assert key is not None
        version_id = int(key[0])
        _log(conn, version_id, AuditAction.IMPORT, actor, None, RuleStatus.DRAFT, now,
             f"digest {item.digest[:12]}")
        return Imported(_version_from_row(_find(conn, parsed.name, parsed.version)),
                        ImportOutcome.IMPORTED)
    stored = _version_from_row(row)
    if stored.digest == item.digest:
        return Imported(stored, ImportOutcome.UNCHANGED)
    if stored.status is not RuleStatus.DRAFT:
        raise RuleWorkflowError(
            f"cannot edit {stored.label}: it is {stored.status.phrase}; only a draft can be "
            "edited (import the change as a new version)"
        )
    if stored.author != actor:
        raise RoleForbidden(
            f"{actor!r} may not edit {stored.label}: only its author {stored.author!r} may"
        )
    conn.execute(update(rule_version).where(rule_version.c.id == row.id),
                 _text_values(item))
    _log(conn, row.id, AuditAction.EDIT, actor, RuleStatus.DRAFT, RuleStatus.DRAFT, now,
         f"digest {stored.digest[:12]} -> {item.digest[:12]}")
    return Imported(_version_from_row(_find(conn, parsed.name, parsed.version)),
                    ImportOutcome.EDITED)


def _text_values(item: _Text) -> dict[str, Any]:
    parsed = item.parsed
    return {"author": parsed.author, "effective_from": parsed.effective_from,
            "effective_to": parsed.effective_to, "source": item.text, "digest": item.digest}


def _apply(
    conn: Connection,
    move: _Transition,
    rule_set: str,
    version: str,
    actor: str,
    now: datetime,
    note: str,
) -> RuleVersion:
    row = _locked(conn, rule_set, version)
    if row is None:
        raise _unknown(rule_set, version)
    stored = _version_from_row(row)
    if stored.status not in move.sources:
        allowed = " or ".join(status.value for status in move.sources)
        raise RuleWorkflowError(
            f"cannot {move.action.value} {stored.label}: it is {stored.status.phrase}; "
            f"only a {allowed} version can be {move.past}"
        )
    if move is REVIEW and stored.author == actor:
        raise RoleForbidden(f"{actor!r} may not review {stored.label}: they are its author")
    changed = conn.execute(
        update(rule_version)
        .where(rule_version.c.id == row.id)
        .where(rule_version.c.status == stored.status.value)
        .values(status=move.target.value)
    ).rowcount
    # The row lock makes this impossible; if it ever happens, write nothing.
    if changed != 1:
        raise RuleWorkflowError(f"{stored.label} changed meanwhile; nothing was done")
    _log(conn, row.id, move.action, actor, stored.status, move.target, now, note)
    return attrs.evolve(stored, status=move.target)


def _locked(conn: Connection, rule_set: str, version: str) -> Row[Any] | None:
    query = (
        select(rule_version)
        .where(rule_version.c.rule_set == rule_set)
        .where(rule_version.c.version == version)
        .with_for_update()
    )
    return conn.execute(query).first()


def _find(conn: Connection, rule_set: str, version: str) -> Row[Any]:
    query = (
        select(rule_version)
        .where(rule_version.c.rule_set == rule_set)
        .where(rule_version.c.version == version)
    )
    row = conn.execute(query).first()
    if row is None:
        raise _unknown(rule_set, version)
    return row


def _unknown(rule_set: str, version: str) -> UnknownRuleVersion:
    return UnknownRuleVersion(f"no version {version!r} of rule set {rule_set!r} was imported")


def _log(
    conn: Connection,
    version_id: int,
    action: AuditAction,
    actor: str,
    before: RuleStatus | None,
    after: RuleStatus,
    now: datetime,
    note: str,
) -> None:
    conn.execute(insert(rule_audit), {
        "version_id": version_id, "action": action.value, "actor": actor,
        "from_status": before.value if before is not None else None,
        "to_status": after.value, "at": now, "note": note,
    })


def _version_from_row(row: Row[Any]) -> RuleVersion:
    return RuleVersion(
        rule_set=row.rule_set,
        version=row.version,
        author=row.author,
        effective_from=row.effective_from,
        effective_to=row.effective_to,
        status=RuleStatus(row.status),
        digest=row.digest,
        created_at=row.created_at,
        source=row.source,
    )


def _audit_from_row(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        action=AuditAction(row.action),
        actor=row.actor,
        from_status=RuleStatus(row.from_status) if row.from_status is not None else None,
        to_status=RuleStatus(row.to_status),
        at=row.at,
        note=row.note,
    )


def _lines(text: str) -> list[str]:
    """Lines with their ends; a last line without one gets one, so diffs stay line-wise."""
    return [line if line.endswith("\n") else line + "\n" for line in text.splitlines(True)]
