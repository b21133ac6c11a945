"""``billingcenter rules``: the whole workflow through ``cli.main`` on a temporary SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from billingcenter.cli import main
from billingcenter.commands import rules as rules_command
from billingcenter.ledger import migrate
from tests.ledger.test_rules_store import rule_text
from tests.support import mysql_test_url, reset_mysql_database

CONF_RULES = Path(__file__).resolve().parents[2] / "conf" / "rules"
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
CONFIG = """\
[database]
data_dir = data

[roles]
authors = alice bob
reviewers = alice bob carol
publishers = dave
"""


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A directory with a config naming the roles, two rule set files, and a fixed clock."""
    (tmp_path / "billingcenter.ini").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "pc2-1.toml").write_text(rule_text("2026.11.1"), encoding="utf-8")
    (tmp_path / "pc2-2.toml").write_text(
        rule_text("2027.1.1", price="0.60", effective_from="2027-01-01T00:00:00",
                  effective_to="2028-01-01T00:00:00"),
        encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BILLINGCENTER_USER", raising=False)
    monkeypatch.setattr(rules_command, "_now", lambda: NOW)
    return tmp_path


def run(capsys, *argv):
    """Run ``billingcenter rules ARGV --config ...``: (exit code, stdout, stderr)."""
    code = main(["rules", *argv, "--config", "billingcenter.ini"])
    out, err = capsys.readouterr()
    return code, out, err


def listing(capsys):
    """What ``rules list`` prints."""
    code, out, err = run(capsys, "list")
    assert (code, err) == (0, "")
    return out


def imported(capsys):
    """Import both files as alice."""
    assert run(capsys, "import", "pc2-1.toml", "pc2-2.toml", "--as", "alice")[0] == 0


class TestImport:
    def test_files_become_drafts(self, home, capsys):
        """Each file is imported as a draft and said so; the list shows them."""
        code, out, err = run(capsys, "import", "pc2-1.toml", "pc2-2.toml", "--as", "alice")
        assert (code, err) == (0, "")
        assert out == (
            "imported saas-pc2 2026.11.1 (draft) from pc2-1.toml\n"
            "imported saas-pc2 2027.1.1 (draft) from pc2-2.toml\n"
        )
        assert listing(capsys) == (
            "RULE SET  VERSION    STATUS  AUTHOR  EFFECTIVE FROM             EFFECTIVE TO\n"
            "saas-pc2  2026.11.1  draft   alice   2026-11-01T00:00:00+08:00  -\n"
            "saas-pc2  2027.1.1   draft   alice   2027-01-01T00:00:00+08:00  "
            "2028-01-01T00:00:00+08:00\n"
        )
        assert (home / "data" / "billingcenter.sqlite3").is_file()

    def test_again_unchanged_and_edited(self, home, capsys):
        """Re-importing says unchanged; a changed draft says edited."""
        imported(capsys)
        (home / "pc2-1.toml").write_text(rule_text("2026.11.1", price="0.55"), encoding="utf-8")
        code, out, _ = run(capsys, "import", "pc2-1.toml", "pc2-2.toml", "--as", "alice")
        assert code == 0
        assert out == (
            "edited saas-pc2 2026.11.1 (draft) from pc2-1.toml\n"
            "unchanged saas-pc2 2027.1.1 (draft) from pc2-2.toml\n"
        )

    def test_user_from_the_environment(self, home, capsys, monkeypatch):
        """Without --as the user is $BILLINGCENTER_USER."""
        monkeypatch.setenv("BILLINGCENTER_USER", "alice")
        code, out, _ = run(capsys, "import", "pc2-1.toml")
        assert (code, out) == (0, "imported saas-pc2 2026.11.1 (draft) from pc2-1.toml\n")

    def test_no_user(self, home, capsys):
        """Without --as or $BILLINGCENTER_USER nothing is imported."""
        code, out, err = run(capsys, "import", "pc2-1.toml")
        assert (code, out) == (2, "")
        assert err == "error: say who you are: --as USER or $BILLINGCENTER_USER\n"
        assert listing(capsys).count("\n") == 1

    def test_unreadable_file(self, home, capsys):
        """A missing file is refused before anything is imported."""
        code, _, err = run(capsys, "import", "pc2-1.toml", "missing.toml", "--as", "alice")
        assert code == 2
        assert err.startswith("error: cannot read missing.toml: ")
        assert listing(capsys).count("\n") == 1

    def test_not_an_author(self, home, capsys):
        """Dave is no author: refused, exit 2, nothing stored."""
        (home / "dave.toml").write_text(rule_text(author="dave"), encoding="utf-8")
        code, out, err = run(capsys, "import", "dave.toml", "--as", "dave")
        assert (code, out) == (2, "")
        assert err == (
            "error: ROLE_FORBIDDEN: 'dave' may not import rule sets: not one of [roles] authors\n")
        assert listing(capsys).count("\n") == 1

    def test_invalid_toml(self, home, capsys):
        """A file the parser refuses names the field; the other file is not imported either."""
        (home / "bad.toml").write_text(rule_text().replace('"0.50"', "0.5"), encoding="utf-8")
        code, _, err = run(capsys, "import", "pc2-2.toml", "bad.toml", "--as", "alice")
        assert code == 2
        assert err.startswith("error: INVALID_RULE_SET: rule[1].unit_price: ")
        assert listing(capsys).count("\n") == 1


class TestWorkflow:
    def test_review_publish_retire(self, home, capsys):
        """The happy path, each step printed, then the audit in show --audit."""
        imported(capsys)
        assert run(capsys, "review", "saas-pc2", "2026.11.1", "--as", "bob",
                   "--note", "prices checked") == (
            0, "saas-pc2 2026.11.1 is reviewed (by bob)\n", "")
        assert run(capsys, "publish", "saas-pc2", "2026.11.1", "--as", "dave") == (
            0, "saas-pc2 2026.11.1 is published (by dave)\n", "")
        assert run(capsys, "retire", "saas-pc2", "2026.11.1", "--as", "dave") == (
            0, "saas-pc2 2026.11.1 is retired (by dave)\n", "")
        code, out, _ = run(capsys, "show", "saas-pc2", "2026.11.1", "--audit")
        assert code == 0
        head, audit, source = out.split("\n\n", 2)
        assert head.splitlines()[:7] == [
            "rule set:       saas-pc2",
            "version:        2026.11.1",
            "status:         retired",
            "author:         alice",
            "effective from: 2026-11-01T00:00:00+08:00",
            "effective to:   -",
            "imported at:    2026-11-20T10:00:00+08:00",
        ]
        assert audit.splitlines()[0].split() == ["AT", "ACTION", "ACTOR", "FROM", "TO", "NOTE"]
        assert [line.split()[1:] for line in audit.splitlines()[1:]] == [
            ["import", "alice", "-", "draft", "digest", head.splitlines()[7].split()[1][:12]],
            ["review", "bob", "draft", "reviewed", "prices", "checked"],
            ["publish", "dave", "reviewed", "published"],
            ["retire", "dave", "published", "retired"],
        ]
        assert source == rule_text("2026.11.1")

    def test_publish_a_draft(self, home, capsys):
        """Publishing a draft is refused with exit 2 and leaves it a draft."""
        imported(capsys)
        before = listing(capsys)
        code, out, err = run(capsys, "publish", "saas-pc2", "2026.11.1", "--as", "dave")
        assert (code, out) == (2, "")
        assert err == ("error: RULE_WORKFLOW: cannot publish saas-pc2 2026.11.1: it is a draft; "
                       "only a reviewed version can be published\n")
        assert listing(capsys) == before

    def test_review_your_own(self, home, capsys):
        """The author may not review her own version."""
        imported(capsys)
        code, _, err = run(capsys, "review", "saas-pc2", "2026.11.1", "--as", "alice")
        assert code == 2
        assert err == ("error: ROLE_FORBIDDEN: 'alice' may not review saas-pc2 2026.11.1: "
                       "they are its author\n")

    def test_edit_a_published_version(self, home, capsys):
        """Re-importing a changed published version is refused; the source is unchanged."""
        imported(capsys)
        run(capsys, "review", "saas-pc2", "2026.11.1", "--as", "bob")
        run(capsys, "publish", "saas-pc2", "2026.11.1", "--as", "dave")
        (home / "pc2-1.toml").write_text(rule_text("2026.11.1", price="9.99"), encoding="utf-8")
        code, _, err = run(capsys, "import", "pc2-1.toml", "--as", "alice")
        assert code == 2
        assert err.startswith("error: RULE_WORKFLOW: cannot edit saas-pc2 2026.11.1: "
                              "it is published;")
        assert run(capsys, "show", "saas-pc2", "2026.11.1")[1].endswith(rule_text("2026.11.1"))

    def test_unknown_version(self, home, capsys):
        """Showing a version never imported exits 2."""
        code, _, err = run(capsys, "show", "saas-pc2", "1.0")
        assert code == 2
        assert err == (
            "error: UNKNOWN_RULE_VERSION: no version '1.0' of rule set 'saas-pc2' was imported\n")


class TestShippedRuleSets:
    def test_conf_rules_import_review_publish(self, home, capsys):
        """Every rule set in conf/rules imports as alice; bob and dave bring it to production."""
        files = sorted(CONF_RULES.glob("*.toml"))
        assert len(files) >= 5
        code, out, err = run(capsys, "import", *map(str, files), "--as", "alice")
        assert (code, err) == (0, "")
        names = [line.split()[1] for line in out.splitlines()]
        assert all(line.startswith("imported ") for line in out.splitlines())
        for name in names:
            assert run(capsys, "review", name, "2026.11.1", "--as", "bob")[0] == 0
            assert run(capsys, "publish", name, "2026.11.1", "--as", "dave")[0] == 0
        rows = listing(capsys).splitlines()[1:]
        assert sorted(row.split()[0] for row in rows) == sorted(names)
        assert {row.split()[2] for row in rows} == {"published"}


class TestReading:
    def test_list_one_set(self, home, capsys):
        """--rule-set limits the list to one set."""
        imported(capsys)
        code, out, _ = run(capsys, "list", "--rule-set", "inter-network")
        assert (code, out.count("\n")) == (0, 1)

    def test_diff(self, home, capsys):
        """diff prints the unified diff of the two sources."""
        imported(capsys)
        code, out, _ = run(capsys, "diff", "saas-pc2", "2026.11.1", "2027.1.1")
        assert code == 0
        assert out.startswith("--- saas-pc2 2026.11.1\n+++ saas-pc2 2027.1.1\n")
        changed = [line for line in out.splitlines()[2:] if line[:1] in "+-"]
        assert changed == [
            '-version = "2026.11.1"',
            '+version = "2027.1.1"',
            "-effective_from = 2026-11-01T00:00:00+08:00",
            "+effective_from = 2027-01-01T00:00:00+08:00",
            "+effective_to = 2028-01-01T00:00:00+08:00",
            '-unit_price = "0.50"',
            '+unit_price = "0.60"',
        ]


@pytest.mark.mariadb
def test_mariadb_must_be_migrated_first(home, capsys):
    """On MariaDB the command does not migrate: an empty database asks for db upgrade."""
    url = mysql_test_url("rules_cli")
    reset_mysql_database(url)
    code = main(["rules", "list", "--config", "billingcenter.ini", "--database-url", url])
    assert code == 2
    assert capsys.readouterr().err == (
        "error: the database schema is not at the current version; run "
        "`billingcenter db upgrade --database-url ...` first\n")
    migrate.upgrade(url)
    assert run(capsys, "list", "--database-url", url)[0] == 0
