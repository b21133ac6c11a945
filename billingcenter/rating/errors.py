"""Errors of the rating core that are not about one record (those are ``RatingError``).

``RuleSetError`` lives here so that both the parser (``ruleset``) and the condition
compiler (``conditions``) can raise it; ``billingcenter.rating.ruleset`` re-exports it.
"""

from __future__ import annotations


class RuleSetError(ValueError):
    """A rule set's TOML is malformed; the message starts with the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem

    def __reduce__(self) -> tuple[type[RuleSetError], tuple[str, str]]:
        return (type(self), (self.field, self.problem))
