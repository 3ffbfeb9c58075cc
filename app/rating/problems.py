"""Why CDRs could not be rated, grouped so that an operator sees the few causes behind many CDRs.

``rate_pending`` tries every CDR without a charge; the ones that fail fail for a handful of reasons (no plan at
the session start, a tariff not valid yet, data the engine cannot price...). Each CDR keeps its own full reason
(``RatingProblem.reason``, with its ids and values); :func:`problem_kind` says which *kind* of problem it is —
the same words for every CDR with the same cause, ids and numbers left out — so ``flask rating rate-pending`` can
print one line per cause with a count and a few CDR ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from app.failures import failure_reason
from app.pricing import (
    CurrencyMismatchError,
    PricingError,
    PricingInputError,
    TariffNotValidError,
    UnknownCountryError,
)

NO_ACCOUNT = "the CDR has no account (unknown token)"
NO_PLAN = "the account had no plan at the session start"
CREDIT_BEFORE_ORIGINAL = "credit CDR whose original is unknown or not rated yet"

# Numbers, dates and times (with their units of the same word: 1e30, 2026-10-14T18:00:00+00:00) and quoted values
# differ from CDR to CDR; the words around them say the cause.
_VALUES = re.compile(r"-?\d[\w.:+\-]*|'[^']*'|\"[^\"]*\"")
_INDEX = re.compile(r"\[\d+\]")


class RatingError(ValueError):
    """The CDR cannot be rated automatically (no plan, unknown VAT country, unpriceable data): finance looks.

    ``kind`` is the cause in words shared by every CDR with it (see :func:`problem_kind`); the message may add
    which CDR, account or value."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind


def problem_kind(error: BaseException) -> str:
    """The cause of a rating failure in words that do not depend on the CDR (for grouping)."""
    cause = error.__cause__ if isinstance(error, RatingError) and error.__cause__ is not None else error
    if isinstance(cause, PricingError):
        return _pricing_kind(cause)
    if isinstance(cause, RatingError) and cause.kind:
        return cause.kind
    return _without_values(failure_reason(cause))


def _pricing_kind(error: PricingError) -> str:
    if isinstance(error, TariffNotValidError):
        return "the session started outside the tariff's validity"
    if isinstance(error, CurrencyMismatchError):
        return "the currencies of the CDR, the tariff and the plan differ"
    if isinstance(error, UnknownCountryError):
        return f"no VAT rate known for country {error.country!r}"  # one line per country: finance adds the rate
    if isinstance(error, PricingInputError):
        path = _INDEX.sub("[]", error.path)
        what = _without_values(error.message)
        return f"cannot be priced: {path}: {what}" if path else f"cannot be priced: {what}"
    return _without_values(str(error))


def _without_values(text: str) -> str:
    return _VALUES.sub("…", text)


@dataclass(frozen=True)
class NotRated:
    """One CDR that could not be rated: its ids, the kind of problem and the full reason."""

    cdr_id: int
    ocpi_id: str
    kind: str
    reason: str

    def line(self) -> str:
        """``"<CDR id>: <why>"``, as finance lists and the invoice run's preview keep them."""
        return f"{self.ocpi_id}: {self.reason}"


@dataclass(frozen=True)
class ProblemGroup:
    """CDRs that could not be rated for the same kind of reason: how many, and the first few OCPI ids."""

    kind: str
    count: int
    examples: tuple[str, ...]


@dataclass
class PendingOutcome:
    """What one ``rate_pending`` pass did: how many CDRs it rated, and those it could not rate, with why."""

    rated: int = 0
    not_rated: list[NotRated] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [problem.line() for problem in self.not_rated]

    def groups(self, examples: int = 5) -> list[ProblemGroup]:
        """The problems by kind, the most frequent first, each with up to ``examples`` CDR ids."""
        return group_problems(self.not_rated, examples)


def group_problems(problems: Iterable[NotRated], examples: int = 5) -> list[ProblemGroup]:
    """Problems by kind (most CDRs first, then by kind), each with up to ``examples`` OCPI ids in the order met."""
    counts: dict[str, int] = {}
    ids: dict[str, list[str]] = {}
    for problem in problems:
        counts[problem.kind] = counts.get(problem.kind, 0) + 1
        seen = ids.setdefault(problem.kind, [])
        if len(seen) < examples:
            seen.append(problem.ocpi_id)
    return [
        ProblemGroup(kind, count, tuple(ids[kind]))
        for kind, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
