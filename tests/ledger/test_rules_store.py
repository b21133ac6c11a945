"""RuleStore: rule set versions, their review-before-publish workflow and its audit.

Runs on SQLite (a copy of the migrated template) and on MariaDB, in a database of its
own (``billingcenter_rules_test``) so it never races the other ledger tests.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from billingcenter.config import Roles
from billingcenter.errors import (
    InvalidRuleSet,
    RoleForbidden,
    RuleWorkflowError,
    UnknownRuleVersion,
)
from billingcenter.ledger import migrate
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.rule_values import AuditAction, AuditEntry, ImportOutcome, RuleStatus
from billingcenter.ledger.rules import RuleStore
from billingcenter.ledger.schema_rules import rule_audit, rule_version
from tests.support import mysql_test_url, reset_mysql_database

RULES_MYSQL_URL = mysql_test_url("rules", "BILLINGCENTER_TEST_RULES_MYSQL_URL")
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
ROLES = Roles(
    authors=frozenset({"alice", "bob"}),
    reviewers=frozenset({"alice", "bob", "carol"}),
    publishers=frozenset({"alice", "dave"}),
)
CST = "+08:00"


def rule_text(
    version: str = "2026.11.1",
    author: str = "alice",
    price: str = "0.50",
    name: str = "saas-pc2",
    effective_from: str = "2026-11-01T00:00:00",
    effective_to: str | None = None,
) -> str:
    """A small, valid rule set in the format of conf/rules/README.md."""
    to = f"effective_to = {effective_to}{CST}\n" if effective_to else ""
    return (
        "[rule_set]\n"
        f'name = "{name}"\n'
        f'version = "{version}"\n'
        f'author = "{author}"\n'
        'description = "PC2 shared workspace"\n'
        f"effective_from = {effective_from}{CST}\n"
        f"{to}"
        'products = ["PC2"]\n'
        "\n"
        "[[rule]]\n"
        'id = "pc2-daily"\n'
        'description = "PC2 per day"\n'
        'mode = "daily"\n'
        f'unit_price = "{price}"\n'
        'rounding = "half_up"\n'
        "[rule.when]\n"
        'product_code = "PC2"\n'
    )


@pytest.fixture(scope="module")
def rules_mysql_engine():
    """The migrated MariaDB database of these tests, one engine for the module."""
    reset_mysql_database(RULES_MYSQL_URL)
    migrate.upgrade(RULES_MYSQL_URL)
    engine = create_engine(RULES_MYSQL_URL, pool_size=16)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def engine(request):
    """An empty, migrated database: SQLite or MariaDB."""
    if request.param == "sqlite":
        engine = create_engine(request.getfixturevalue("sqlite_url"))
        yield engine
        engine.dispose()
        return
    engine = request.getfixturevalue("rules_mysql_engine")
    with engine.begin() as conn:
        conn.execute(rule_audit.delete())
        conn.execute(rule_version.delete())
    yield engine


@pytest.fixture
def store(engine):
    """A store on the test database with alice, bob, carol and dave in their roles."""
    return RuleStore(engine, ROLES)


def snapshot(engine):
    """Every row of both rule tables: what a refused operation must leave unchanged."""
    with engine.connect() as conn:
        versions = conn.execute(sa.select(rule_version).order_by(rule_version.c.id)).all()
        audit = conn.execute(sa.select(rule_audit).order_by(rule_audit.c.id)).all()
    return [tuple(row) for row in versions], [tuple(row) for row in audit]


def actions(store, version="2026.11.1", rule_set="saas-pc2"):
    """The audit of a version as (action, actor, from, to) tuples."""
    return [
        (e.action.value, e.actor, e.from_status.value if e.from_status else None,
         e.to_status.value)
        for e in store.audit(rule_set, version)
    ]


def at_status(store, status, version="2026.11.1"):
    """Import alice's version and move it to ``status`` through the proper steps."""
    store.import_version(rule_text(version), "alice", NOW)
    if status in (RuleStatus.REVIEWED, RuleStatus.PUBLISHED, RuleStatus.RETIRED):
        store.review("saas-pc2", version, "bob", NOW)
    if status in (RuleStatus.PUBLISHED, RuleStatus.RETIRED):
        store.publish("saas-pc2", version, "dave", NOW)
    if status is RuleStatus.RETIRED:
        store.retire("saas-pc2", version, "dave", NOW)


def refused(store, engine, error, call, *args):
    """``call`` raises ``error`` and leaves both tables exactly as they were."""
    before = snapshot(engine)
    with pytest.raises(error) as caught:
        call(*args)
    assert snapshot(engine) == before
    return caught.value


class TestImport:
    def test_new_version_is_a_draft(self, store):
        """A new (set, version) is stored as a draft with its source, and audited."""
        text = rule_text()
        imported = store.import_version(text, "alice", NOW)
        assert imported.outcome is ImportOutcome.IMPORTED
        version = imported.version
        assert (version.rule_set, version.version, version.author, version.status) == (
            "saas-pc2", "2026.11.1", "alice", RuleStatus.DRAFT)
        assert version.effective_from == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
        assert version.effective_to is None
        assert version.source == text
        assert version.created_at == NOW
        assert store.get("saas-pc2", "2026.11.1") == version
        assert store.audit("saas-pc2", "2026.11.1") == (
            AuditEntry(AuditAction.IMPORT, "alice", None, RuleStatus.DRAFT, NOW,
                       f"digest {version.digest[:12]}"),
        )

    def test_effective_to_is_stored(self, store):
        """An expiry time in the TOML is stored in UTC."""
        text = rule_text(effective_to="2027-11-01T00:00:00")
        version = store.import_version(text, "alice", NOW).version
        assert version.effective_to == datetime(2027, 10, 31, 16, 0, tzinfo=UTC)

    def test_identical_text_again_is_a_no_op(self, store, engine):
        """Importing the same text twice changes nothing and writes no audit row."""
        first = store.import_version(rule_text(), "alice", NOW).version
        before = snapshot(engine)
        again = store.import_version(rule_text(), "alice", LATER)
        assert again.outcome is ImportOutcome.UNCHANGED
        assert again.version == first
        assert snapshot(engine) == before

    def test_different_text_edits_the_draft(self, store):
        """A changed text of a draft replaces its source and is audited as an edit."""
        old = store.import_version(rule_text(), "alice", NOW).version
        edited = store.import_version(rule_text(price="0.60"), "alice", LATER)
        assert edited.outcome is ImportOutcome.EDITED
        assert edited.version.status is RuleStatus.DRAFT
        assert edited.version.source == rule_text(price="0.60")
        assert edited.version.created_at == NOW
        assert store.audit("saas-pc2", "2026.11.1")[1] == AuditEntry(
            AuditAction.EDIT, "alice", RuleStatus.DRAFT, RuleStatus.DRAFT, LATER,
            f"digest {old.digest[:12]} -> {edited.version.digest[:12]}")

    def test_someone_not_an_author_may_not_import(self, store, engine):
        """A user outside [roles] authors is refused."""
        error = refused(store, engine, RoleForbidden, store.import_version,
                        rule_text(author="carol"), "carol", NOW)
        assert error.message == "'carol' may not import rule sets: not one of [roles] authors"
        assert error.code == "ROLE_FORBIDDEN"

    def test_author_in_the_text_must_be_the_importer(self, store, engine):
        """An author may not import a version that names someone else as its author."""
        error = refused(store, engine, RoleForbidden, store.import_version,
                        rule_text(author="alice"), "bob", NOW)
        assert error.message == (
            "saas-pc2 2026.11.1 names author 'alice': only they may import it, not 'bob'")

    def test_only_its_author_edits_a_draft(self, store, engine):
        """Bob cannot take over alice's draft by importing his own text of it."""
        store.import_version(rule_text(), "alice", NOW)
        error = refused(store, engine, RoleForbidden, store.import_version,
                        rule_text(author="bob"), "bob", LATER)
        assert error.message == "'bob' may not edit saas-pc2 2026.11.1: only its author 'alice' may"

    @pytest.mark.parametrize("status, phrase", [
        (RuleStatus.REVIEWED, "reviewed"),
        (RuleStatus.PUBLISHED, "published"),
        (RuleStatus.RETIRED, "retired"),
    ])
    def test_no_edit_after_the_draft(self, store, engine, status, phrase):
        """A reviewed, published or retired version cannot be edited by re-importing it."""
        at_status(store, status)
        error = refused(store, engine, RuleWorkflowError, store.import_version,
                        rule_text(price="0.99"), "alice", LATER)
        assert error.message == (
            f"cannot edit saas-pc2 2026.11.1: it is {phrase}; only a draft can be edited "
            "(import the change as a new version)")
        assert error.code == "RULE_WORKFLOW"
        assert store.get("saas-pc2", "2026.11.1").source == rule_text()

    def test_identical_text_of_a_published_version_is_a_no_op(self, store, engine):
        """Re-importing conf/rules unchanged after publishing is harmless."""
        at_status(store, RuleStatus.PUBLISHED)
        before = snapshot(engine)
        again = store.import_version(rule_text(), "alice", LATER)
        assert again.outcome is ImportOutcome.UNCHANGED
        assert again.version.status is RuleStatus.PUBLISHED
        assert snapshot(engine) == before

    def test_unparsable_text_is_refused(self, store, engine):
        """A text the parser refuses is an InvalidRuleSet naming the problem."""
        text = rule_text().replace('version = "2026.11.1"\n', "")
        error = refused(store, engine, InvalidRuleSet, store.import_version, text, "alice", NOW)
        assert error.code == "INVALID_RULE_SET"
        assert error.message.startswith("rule_set.version: ")

    def test_author_longer_than_the_column_is_refused(self, store, engine):
        """An author name longer than its column (128) is refused before the database."""
        error = refused(store, engine, InvalidRuleSet, store.import_version,
                        rule_text(author="a" * 129), "a" * 129, NOW)
        assert error.message == "rule_set.author: must be 1 to 128 characters"

    def test_several_texts_in_one_transaction(self, store):
        """A batch imports every text, answered in the order given."""
        done = store.import_versions(
            [rule_text("2026.12.1"), rule_text("2026.11.1")], "alice", NOW)
        assert [(d.version.version, d.outcome) for d in done] == [
            ("2026.12.1", ImportOutcome.IMPORTED), ("2026.11.1", ImportOutcome.IMPORTED)]

    def test_a_refused_text_refuses_the_batch(self, store, engine):
        """One refused text in a batch imports none of them."""
        store.import_version(rule_text(), "alice", NOW)
        store.review("saas-pc2", "2026.11.1", "bob", NOW)
        refused(store, engine, RuleWorkflowError, store.import_versions,
                [rule_text("2027.1.1"), rule_text(price="0.70")], "alice", LATER)
        assert [v.version for v in store.list_versions()] == ["2026.11.1"]

    def test_two_texts_of_one_version_in_a_batch(self, store, engine):
        """Two different texts of the same (set, version) in one batch are refused."""
        error = refused(store, engine, InvalidRuleSet, store.import_versions,
                        [rule_text(), rule_text(price="0.70")], "alice", NOW)
        assert error.message == "two different texts of saas-pc2 2026.11.1 in one import"


class TestReview:
    def test_draft_becomes_reviewed(self, store):
        """A reviewer other than the author reviews a draft; the audit says who and when."""
        store.import_version(rule_text(), "alice", NOW)
        reviewed = store.review("saas-pc2", "2026.11.1", "bob", LATER, note="checked prices")
        assert reviewed.status is RuleStatus.REVIEWED
        assert store.get("saas-pc2", "2026.11.1") == reviewed
        assert store.audit("saas-pc2", "2026.11.1")[1] == AuditEntry(
            AuditAction.REVIEW, "bob", RuleStatus.DRAFT, RuleStatus.REVIEWED, LATER,
            "checked prices")

    def test_not_your_own_version(self, store, engine):
        """Alice is a reviewer but may not review the version she wrote."""
        store.import_version(rule_text(), "alice", NOW)
        error = refused(store, engine, RoleForbidden, store.review,
                        "saas-pc2", "2026.11.1", "alice", LATER)
        assert error.message == "'alice' may not review saas-pc2 2026.11.1: they are its author"

    def test_a_non_reviewer(self, store, engine):
        """Dave, a publisher only, may not review."""
        store.import_version(rule_text(), "alice", NOW)
        error = refused(store, engine, RoleForbidden, store.review,
                        "saas-pc2", "2026.11.1", "dave", LATER)
        assert error.message == "'dave' may not review rule sets: not one of [roles] reviewers"

    @pytest.mark.parametrize("status", [
        RuleStatus.REVIEWED, RuleStatus.PUBLISHED, RuleStatus.RETIRED])
    def test_only_a_draft(self, store, engine, status):
        """Only a draft can be reviewed: twice, or after publishing, is refused."""
        at_status(store, status)
        error = refused(store, engine, RuleWorkflowError, store.review,
                        "saas-pc2", "2026.11.1", "carol", LATER)
        assert error.message == (
            f"cannot review saas-pc2 2026.11.1: it is {status.value}; "
            "only a draft version can be reviewed")

    def test_unknown_version(self, store, engine):
        """Reviewing a version never imported is UnknownRuleVersion."""
        error = refused(store, engine, UnknownRuleVersion, store.review,
                        "saas-pc2", "9.9", "bob", NOW)
        assert error.message == "no version '9.9' of rule set 'saas-pc2' was imported"
        assert error.code == "UNKNOWN_RULE_VERSION"


class TestPublish:
    def test_reviewed_becomes_published(self, store):
        """A publisher publishes a reviewed version; it is in the published book."""
        store.import_version(rule_text(), "alice", NOW)
        store.review("saas-pc2", "2026.11.1", "bob", NOW)
        published = store.publish("saas-pc2", "2026.11.1", "dave", LATER)
        assert published.status is RuleStatus.PUBLISHED
        assert actions(store) == [
            ("import", "alice", None, "draft"),
            ("review", "bob", "draft", "reviewed"),
            ("publish", "dave", "reviewed", "published"),
        ]
        book = store.published_book()
        assert [(v.name, v.version) for v in book.versions] == [("saas-pc2", "2026.11.1")]

    def test_the_author_may_publish_after_review(self, store):
        """Review needs a second person; publishing by the author (a publisher) is allowed."""
        at_status(store, RuleStatus.REVIEWED)
        assert store.publish("saas-pc2", "2026.11.1", "alice", LATER).status is (
            RuleStatus.PUBLISHED)

    def test_not_a_draft(self, store, engine):
        """Publishing a draft is refused: only reviewed versions reach production."""
        store.import_version(rule_text(), "alice", NOW)
        error = refused(store, engine, RuleWorkflowError, store.publish,
                        "saas-pc2", "2026.11.1", "dave", LATER)
        assert error.message == (
            "cannot publish saas-pc2 2026.11.1: it is a draft; "
            "only a reviewed version can be published")
        assert store.published_book().versions == ()

    @pytest.mark.parametrize("status", [RuleStatus.PUBLISHED, RuleStatus.RETIRED])
    def test_not_twice_nor_after_retiring(self, store, engine, status):
        """A published or retired version cannot be published (again)."""
        at_status(store, status)
        error = refused(store, engine, RuleWorkflowError, store.publish,
                        "saas-pc2", "2026.11.1", "dave", LATER)
        assert error.message == (
            f"cannot publish saas-pc2 2026.11.1: it is {status.value}; "
            "only a reviewed version can be published")

    def test_a_non_publisher(self, store, engine):
        """Carol, a reviewer only, may not publish."""
        at_status(store, RuleStatus.REVIEWED)
        error = refused(store, engine, RoleForbidden, store.publish,
                        "saas-pc2", "2026.11.1", "carol", LATER)
        assert error.message == "'carol' may not publish rule sets: not one of [roles] publishers"

    def test_publishing_retires_nothing(self, store):
        """Two published versions of one set coexist; the book holds both."""
        at_status(store, RuleStatus.PUBLISHED, "2026.11.1")
        store.import_version(rule_text("2027.1.1", effective_from="2027-01-01T00:00:00"),
                             "alice", LATER)
        store.review("saas-pc2", "2027.1.1", "carol", LATER)
        store.publish("saas-pc2", "2027.1.1", "dave", LATER)
        assert store.get("saas-pc2", "2026.11.1").status is RuleStatus.PUBLISHED
        book = store.published_book()
        assert [v.version for v in book.versions] == ["2026.11.1", "2027.1.1"]


class TestRetire:
    @pytest.mark.parametrize("status", [RuleStatus.REVIEWED, RuleStatus.PUBLISHED])
    def test_reviewed_or_published_becomes_retired(self, store, status):
        """A publisher retires a reviewed or published version; it leaves the book."""
        at_status(store, status)
        retired = store.retire("saas-pc2", "2026.11.1", "dave", LATER, note="superseded")
        assert retired.status is RuleStatus.RETIRED
        assert store.audit("saas-pc2", "2026.11.1")[-1] == AuditEntry(
            AuditAction.RETIRE, "dave", status, RuleStatus.RETIRED, LATER, "superseded")
        assert store.published_book().versions == ()

    @pytest.mark.parametrize("status", [RuleStatus.DRAFT, RuleStatus.RETIRED])
    def test_not_a_draft_nor_twice(self, store, engine, status):
        """A draft cannot be retired (it was never approved); nor a retired one again."""
        at_status(store, status)
        error = refused(store, engine, RuleWorkflowError, store.retire,
                        "saas-pc2", "2026.11.1", "dave", LATER)
        assert error.message == (
            f"cannot retire saas-pc2 2026.11.1: it is {status.phrase}; "
            "only a reviewed or published version can be retired")

    def test_a_non_publisher(self, store, engine):
        """Bob, an author and reviewer, may not retire."""
        at_status(store, RuleStatus.PUBLISHED)
        error = refused(store, engine, RoleForbidden, store.retire,
                        "saas-pc2", "2026.11.1", "bob", LATER)
        assert error.message == "'bob' may not retire rule sets: not one of [roles] publishers"


class TestNoRoles:
    def test_a_store_without_roles_only_reads(self, engine):
        """Without roles nobody may import, review, publish or retire."""
        store = RuleStore(engine)
        with pytest.raises(RoleForbidden):
            store.import_version(rule_text(), "alice", NOW)
        with pytest.raises(RoleForbidden):
            store.publish("saas-pc2", "2026.11.1", "alice", NOW)
        assert store.list_versions() == ()
        assert store.published_book().versions == ()


class TestReading:
    def test_list_by_set_and_effective_time(self, store):
        """Versions are listed by set, then effective time; a set can be chosen."""
        store.import_versions([
            rule_text("2027.1.1", effective_from="2027-01-01T00:00:00"),
            rule_text("2026.11.1"),
            rule_text("1", name="inter-network"),
        ], "alice", NOW)
        assert [v.label for v in store.list_versions()] == [
            "inter-network 1", "saas-pc2 2026.11.1", "saas-pc2 2027.1.1"]
        assert [v.label for v in store.list_versions("saas-pc2")] == [
            "saas-pc2 2026.11.1", "saas-pc2 2027.1.1"]
        assert store.list_versions("nothing") == ()

    def test_get_unknown(self, store):
        """Getting a version never imported is UnknownRuleVersion."""
        with pytest.raises(UnknownRuleVersion):
            store.get("saas-pc2", "2026.11.1")
        with pytest.raises(UnknownRuleVersion):
            store.audit("saas-pc2", "2026.11.1")

    def test_diff(self, store):
        """diff is a unified diff of the two sources, named by set and version."""
        store.import_version(rule_text("1"), "alice", NOW)
        store.import_version(rule_text("2", price="0.60"), "alice", NOW)
        assert store.diff("saas-pc2", "1", "2") == (
            "--- saas-pc2 1\n"
            "+++ saas-pc2 2\n"
            "@@ -1,6 +1,6 @@\n"
            " [rule_set]\n"
            ' name = "saas-pc2"\n'
            '-version = "1"\n'
            '+version = "2"\n'
            ' author = "alice"\n'
            ' description = "PC2 shared workspace"\n'
            " effective_from = 2026-11-01T00:00:00+08:00\n"
            "@@ -10,7 +10,7 @@\n"
            ' id = "pc2-daily"\n'
            ' description = "PC2 per day"\n'
            ' mode = "daily"\n'
            '-unit_price = "0.50"\n'
            '+unit_price = "0.60"\n'
            ' rounding = "half_up"\n'
            " [rule.when]\n"
            ' product_code = "PC2"\n'
        )
        assert store.diff("saas-pc2", "1", "1") == ""

    def test_load_parses_any_status(self, store):
        """load gives the parsed rule set of a stored draft (for simulate)."""
        store.import_version(rule_text(), "alice", NOW)
        loaded = store.load("saas-pc2", "2026.11.1")
        assert (loaded.name, loaded.version, loaded.author) == ("saas-pc2", "2026.11.1", "alice")
        assert loaded.products == frozenset({"PC2"})

    def test_published_book_is_kept_while_unchanged(self, store):
        """The book is built once while nothing is published or retired, then rebuilt."""
        at_status(store, RuleStatus.PUBLISHED)
        book = store.published_book()
        assert store.published_book() is book
        store.retire("saas-pc2", "2026.11.1", "dave", LATER)
        assert store.published_book().versions == ()

    def test_published_book_in_publishing_order(self, store):
        """The book lists versions in the order they were published."""
        store.import_versions([rule_text("1"), rule_text("2")], "alice", NOW)
        for version in ("2", "1"):
            store.review("saas-pc2", version, "bob", NOW)
            store.publish("saas-pc2", version, "dave", NOW)
        assert [v.version for v in store.published_book().versions] == ["2", "1"]

    def test_the_last_published_wins_a_tie(self, store):
        """Of two versions effective from the same time, the one published last is in force."""
        store.import_versions([rule_text("1"), rule_text("2", price="0.60")], "alice", NOW)
        store.review("saas-pc2", "1", "bob", NOW)
        store.review("saas-pc2", "2", "bob", NOW)
        store.publish("saas-pc2", "2", "dave", NOW)
        at = datetime(2026, 12, 1, tzinfo=UTC)
        assert store.published_book().in_force("saas-pc2", at).version == "2"
        store.publish("saas-pc2", "1", "dave", LATER)
        assert store.published_book().in_force("saas-pc2", at).version == "1"


class TestRaces:
    def test_two_reviewers_cannot_both_review(self, engine):
        """Of reviewers racing for one draft exactly one wins; one review is audited."""
        store = RuleStore(engine, ROLES)
        store.import_version(rule_text(), "alice", NOW)
        reviewers = ["bob", "carol"] * 4
        barrier = threading.Barrier(len(reviewers))
        outcomes: list[str] = []

        def review(name: str) -> None:
            barrier.wait()
            try:
                store.review("saas-pc2", "2026.11.1", name, LATER)
                outcomes.append("reviewed")
            except RuleWorkflowError:
                outcomes.append("refused")

        threads = [threading.Thread(target=review, args=(n,)) for n in reviewers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["refused"] * 7 + ["reviewed"]
        assert [a[0] for a in actions(store)] == ["import", "review"]

    def test_a_review_waits_for_the_row_lock(self, engine):
        """A review blocked behind another transaction sees its change, not a stale draft."""
        store = RuleStore(engine, ROLES)
        store.import_version(rule_text(), "alice", NOW)
        outcome: list[str] = []

        def review() -> None:
            try:
                store.review("saas-pc2", "2026.11.1", "carol", LATER)
                outcome.append("reviewed")
            except RuleWorkflowError as exc:
                outcome.append(exc.message)

        row = (rule_version.c.rule_set == "saas-pc2") & (rule_version.c.version == "2026.11.1")
        thread = threading.Thread(target=review)
        with engine.begin() as conn:
            conn.execute(sa.select(rule_version.c.id).where(row).with_for_update())
            thread.start()
            thread.join(0.5)  # the review is now waiting for this transaction
            conn.execute(sa.update(rule_version).where(row).values(status="reviewed"))
        thread.join()
        assert outcome == ["cannot review saas-pc2 2026.11.1: it is reviewed; "
                           "only a draft version can be reviewed"]

    def test_racing_imports_of_one_new_version(self, engine):
        """Imports of the same new text racing each other store it once."""
        store = RuleStore(engine, ROLES)
        barrier = threading.Barrier(6)
        outcomes: list[ImportOutcome] = []

        def load() -> None:
            barrier.wait()
            outcomes.append(store.import_version(rule_text(), "alice", NOW).outcome)

        threads = [threading.Thread(target=load) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(o.value for o in outcomes) == ["imported"] + ["unchanged"] * 5
        assert actions(store) == [("import", "alice", None, "draft")]
