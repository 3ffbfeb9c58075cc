"""The pricing notes kept with a charge, read back for the pages that show a session's price.

``rate_cdr`` stores the engine's notes (``app.pricing.periods.PeriodNote.to_json_dict``) in
``SessionCharge.pricing_notes``: which charging periods did not fit the session and where they were counted from.
Pages answer "why did this cost X?" with them: the English ``text`` for staff, or their own translated sentence
from ``kind`` and the instants (shown in the reader's time zone).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from app.ocpi_values import utc_datetime
from app.rating.models import SessionCharge


@dataclass(frozen=True)
class PricingNote:
    """One stored note: charging period ``period`` (its index in the CDR) of ``kind`` (``before_start``,
    ``before_previous``, ``after_end``) started at ``started``, was measured against ``reference`` and counted
    from ``counted_from``; ``text`` says it in English."""

    period: int
    kind: str
    started: dt.datetime
    counted_from: dt.datetime
    reference: dt.datetime
    text: str


def pricing_notes_of(charge: SessionCharge) -> tuple[PricingNote, ...]:
    """The notes of a charge, in the order the engine wrote them (none for most charges)."""
    return tuple(_note(stored) for stored in charge.pricing_notes or ())


def _note(stored: dict[str, Any]) -> PricingNote:
    return PricingNote(
        period=int(stored["period"]),
        kind=str(stored["kind"]),
        started=utc_datetime(stored["started"]),
        counted_from=utc_datetime(stored["counted_from"]),
        reference=utc_datetime(stored["reference"]),
        text=str(stored["text"]),
    )
