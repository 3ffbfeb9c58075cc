"""Charging periods fitted into their session, as real CPOs send them, with a note for every change.

OCPI wants a CDR's charging periods inside the session and in time order, each ending where the next one starts.
Real CPOs do not always send that: Dutch CPOs with hourly (dynamic) prices align the periods to the hour, so the
first one starts at 12:00 for a session that started at 12:20. Refusing such a CDR would mean we pay the CPO and
bill nobody. So the engine prices it: a period's *start* is clamped into the session — not before the session
start, not before the previous period's start, not after the session end — and its dimensions are kept as sent,
because they are what the CPO metered and charges. Every clamp becomes a :class:`PeriodNote`, kept with the rating
and shown where support answers "why did this cost X?".

What cannot be priced honestly stays refused elsewhere (``parse``): no periods, negative energy, an end before the
start.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo

from .model import ChargingPeriod

BEFORE_START = "before_start"
BEFORE_PREVIOUS = "before_previous"
AFTER_END = "after_end"


@dataclass(frozen=True, slots=True)
class PeriodNote:
    """One charging period whose start the engine moved: ``period`` is its index in the CDR's
    ``charging_periods``, ``started`` the start the CDR gives, ``counted_from`` where the engine counted it from,
    ``reference`` the instant it was measured against (the session start or end, or the previous period's start).
    ``zone`` is the location's time zone (None: UTC), used only to write the note for people."""

    period: int
    kind: str
    started: datetime
    counted_from: datetime
    reference: datetime
    zone: tzinfo | None = None

    def text(self) -> str:
        """The note in English, times in the location's time zone, as ``flask pricing price-cdr`` prints it."""
        what = {
            BEFORE_START: "before the session start",
            BEFORE_PREVIOUS: f"before the start of charging period {self.period - 1}",
            AFTER_END: "after the session end",
        }[self.kind]
        return (
            f"charging period {self.period} started {self._local(self.started)}, {what} "
            f"{self._local(self.reference)}: counted from {self._local(self.counted_from)}"
        )

    def to_json_dict(self) -> dict[str, object]:
        """The note as stored with a rating: instants as OCPI DateTimes (UTC, 'Z'), and the English text."""
        return {
            "period": self.period,
            "kind": self.kind,
            "started": _utc_text(self.started),
            "counted_from": _utc_text(self.counted_from),
            "reference": _utc_text(self.reference),
            "text": self.text(),
        }

    def _local(self, instant: datetime) -> str:
        local = instant.astimezone(self.zone or UTC)
        session_day = self.reference.astimezone(self.zone or UTC).date()
        clock = local.strftime("%H:%M:%S" if local.second or local.microsecond else "%H:%M")
        day = "" if local.date() == session_day else local.strftime("%Y-%m-%d ")
        return f"{day}{clock} {local.tzname() or 'UTC'}"


def _utc_text(instant: datetime) -> str:
    text = instant.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def fit_periods(
    start: datetime, end: datetime, periods: tuple[ChargingPeriod, ...], zone: tzinfo | None = None
) -> tuple[tuple[ChargingPeriod, ...], tuple[PeriodNote, ...]]:
    """The periods with their starts clamped into ``[start, end]`` and in time order (dimensions untouched), and
    a note for each period that was moved. Periods already inside the session in order come back as they are."""
    fitted: list[ChargingPeriod] = []
    notes: list[PeriodNote] = []
    floor = start  # no period may start before the session, nor before the period before it
    for index, period in enumerate(periods):
        note = _clamp_note(index, period.start, start, end, floor, zone)
        if note is None:
            fitted.append(period)
        else:
            fitted.append(replace(period, start=note.counted_from))
            notes.append(note)
        floor = fitted[-1].start
    return tuple(fitted), tuple(notes)


def _clamp_note(
    index: int, started: datetime, start: datetime, end: datetime, floor: datetime, zone: tzinfo | None
) -> PeriodNote | None:
    """Where period ``index`` must be counted from when it does not fit, as a note; None when it fits."""
    if started < start:
        return PeriodNote(index, BEFORE_START, started, floor, start, zone)
    if started < floor:
        return PeriodNote(index, BEFORE_PREVIOUS, started, floor, floor, zone)
    if started > end:
        return PeriodNote(index, AFTER_END, started, end, end, zone)
    return None
