"""The values of the rule workflow: statuses, audit actions, stored versions, roles.

``billingcenter.ledger.rules`` stores and moves versions; these are what it returns and
what it is given.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Protocol

import attrs


class RuleStatus(enum.Enum):
    """Where a version is in its workflow."""

    DRAFT = "draft"
    REVIEWED = "reviewed"
    PUBLISHED = "published"
    RETIRED = "retired"

    @property
    def phrase(self) -> str:
        """The status in a sentence: "it is a draft", "it is published"."""
        return "a draft" if self is RuleStatus.DRAFT else self.value


class AuditAction(enum.Enum):
    """What an audit row records."""

    IMPORT = "import"
    EDIT = "edit"
    REVIEW = "review"
    PUBLISH = "publish"
    RETIRE = "retire"


class ImportOutcome(enum.Enum):
    """What importing a text did."""

    IMPORTED = "imported"  # a new draft
    EDITED = "edited"  # the draft's text replaced
    UNCHANGED = "unchanged"  # the identical text was there already


class RoleNames(Protocol):
    """Who holds which role (``billingcenter.config.Roles`` is one)."""

    @property
    def authors(self) -> frozenset[str]:
        """Who may import (and edit their own drafts)."""

    @property
    def reviewers(self) -> frozenset[str]:
        """Who may review a draft someone else wrote."""

    @property
    def publishers(self) -> frozenset[str]:
        """Who may publish a reviewed version, and retire versions."""


@attrs.frozen
class NoRoles:
    """Nobody holds any role: a store that can only be read."""

    authors: frozenset[str] = frozenset()
    reviewers: frozenset[str] = frozenset()
    publishers: frozenset[str] = frozenset()


@attrs.frozen
class RuleVersion:
    """One stored version of a rule set, its TOML source verbatim."""

    rule_set: str
    version: str
    author: str
    effective_from: datetime
    effective_to: datetime | None
    status: RuleStatus
    digest: str
    created_at: datetime
    source: str = attrs.field(repr=False)

    @property
    def label(self) -> str:
        """``name version``, as messages and the command line name it."""
        return f"{self.rule_set} {self.version}"


@attrs.frozen
class AuditEntry:
    """One change of a version: who did what, when, from which status to which."""

    action: AuditAction
    actor: str
    from_status: RuleStatus | None
    to_status: RuleStatus
    at: datetime
    note: str


@attrs.frozen
class Imported:
    """The version an imported text is now, and what the import did."""

    version: RuleVersion
    outcome: ImportOutcome
