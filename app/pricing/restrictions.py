"""Tariff restrictions compiled for fast evaluation, and the instants where they can change.

Why compile: the engine evaluates restrictions for every (sub-)period of every CDR, so each element's
restrictions are turned once into integers (microseconds of local "wall clock", microseconds of duration) and
Decimals, trivially-true restrictions are dropped (``min_duration: 0``, all seven days), and the kinds of
boundary an element needs (time of day, date, duration, kWh) are known up front. The engine then only splits
periods when some element of the tariff can actually change inside them.

Local time is handled as "wall microseconds": UTC microseconds since the epoch plus the zone's UTC offset at
that instant. Inside a stretch of constant offset the wall clock is linear in UTC, so a boundary like 17:00 is
found by subtraction, not by datetime arithmetic. Daylight-saving transitions split periods into such
stretches (see ``localtime.local_chunks``).

Evaluation is done at the *midpoint* of a sub-period whose ends are all the boundaries inside the period; the
midpoint lies strictly between two boundaries, so inclusive/exclusive edges (``start_date`` inclusive,
``end_date`` exclusive, ``max_kwh`` exclusive...) and Decimal interpolation noise cannot flip a decision.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from .model import Restrictions

SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US
DAY_US = 86_400 * SECOND_US
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday == 0)


def date_to_wall_us(iso_date: str) -> int:
    """Local midnight of an ISO date as wall microseconds."""
    return (date.fromisoformat(iso_date).toordinal() - _EPOCH_ORDINAL) * DAY_US


class CompiledRestrictions:
    """Restrictions of one element, normalised. ``always``: nothing can make the element inactive."""

    __slots__ = (
        "always",
        "date_from",
        "date_to",
        "days",
        "has_local",
        "has_measured",
        "max_current",
        "max_dur",
        "max_kwh",
        "max_power",
        "min_current",
        "min_dur",
        "min_kwh",
        "min_power",
        "reservation",
        "tod_end",
        "tod_start",
    )

    def __init__(self, r: Restrictions) -> None:
        start = r.start_time
        end = r.end_time
        tod: tuple[int, int] | None
        if start is None and end is None:
            tod = None
        else:
            s = (start or 0) * MINUTE_US
            e = (24 * 60 if end is None else end) * MINUTE_US
            # Equal start and end (e.g. 00:00-00:00) describe the whole day: no restriction.
            tod = None if (s == e or (s == 0 and e == DAY_US)) else (s, e % DAY_US if e == DAY_US else e)
        self.tod_start: int | None
        self.tod_end: int | None
        self.tod_start, self.tod_end = tod if tod is not None else (None, None)
        self.date_from = None if r.start_date is None else date_to_wall_us(r.start_date)
        self.date_to = None if r.end_date is None else date_to_wall_us(r.end_date)
        self.days = None if r.day_of_week is None or len(r.day_of_week) == 7 else r.day_of_week
        self.min_kwh = r.min_kwh if r.min_kwh else None  # 0 kWh: always true, energy is never negative
        self.max_kwh = r.max_kwh
        self.min_dur = r.min_duration * SECOND_US if r.min_duration else None
        self.max_dur = None if r.max_duration is None else r.max_duration * SECOND_US
        self.min_power = r.min_power
        self.max_power = r.max_power
        self.min_current = r.min_current
        self.max_current = r.max_current
        self.reservation = r.reservation
        self.has_local = (
            self.tod_start is not None
            or self.date_from is not None
            or self.date_to is not None
            or self.days is not None
        )
        self.has_measured = any(
            x is not None for x in (self.min_power, self.max_power, self.min_current, self.max_current)
        )
        self.always = (
            not self.has_local
            and not self.has_measured
            and all(x is None for x in (self.min_kwh, self.max_kwh, self.min_dur, self.max_dur))
        )

    # Boundaries ---------------------------------------------------------------------------------------------

    def daily_boundaries(self) -> set[int]:
        """Times of day (wall µs after midnight) at which this element may switch, every day."""
        out: set[int] = set()
        if self.tod_start is not None:
            assert self.tod_end is not None  # set together with tod_start (see __init__)
            out.add(self.tod_start)
            out.add(self.tod_end % DAY_US)
        if self.days is not None:
            out.add(0)
        return out

    def absolute_boundaries(self) -> set[int]:
        """Wall instants (local midnights of start_date/end_date) at which this element may switch."""
        return {x for x in (self.date_from, self.date_to) if x is not None}

    def duration_boundaries(self) -> set[int]:
        return {x for x in (self.min_dur, self.max_dur) if x is not None}

    def energy_boundaries(self) -> set[Decimal]:
        return {x for x in (self.min_kwh, self.max_kwh) if x is not None}

    # Evaluation ---------------------------------------------------------------------------------------------

    def holds(
        self,
        wall: int,
        dur: int,
        energy: Decimal,
        power_lo: Decimal,
        power_hi: Decimal,
        current_lo: Decimal | None,
        current_hi: Decimal | None,
    ) -> bool:
        """True when every restriction holds at one instant.

        ``wall`` is local wall µs, ``dur`` µs since the phase started, ``energy`` kWh consumed so far,
        ``power_lo``/``power_hi`` the MIN_POWER/MAX_POWER (or average power) of the period and
        ``current_lo``/``current_hi`` MIN_CURRENT/MAX_CURRENT (``None`` when the CDR does not tell: a current
        restriction then cannot be verified and does not hold).
        """
        if self.always:
            return True
        if self.has_local:
            if self.tod_start is not None:
                tod = wall % DAY_US
                s, e = self.tod_start, self.tod_end
                assert e is not None  # set together with tod_start (see __init__)
                if s < e:
                    if not (s <= tod < e):
                        return False
                elif not (tod >= s or tod < e):  # wraps past midnight (or ends at 24:00 when e == 0)
                    return False
            if self.date_from is not None and wall < self.date_from:
                return False
            if self.date_to is not None and wall >= self.date_to:
                return False
            if self.days is not None and (wall // DAY_US + _EPOCH_WEEKDAY) % 7 not in self.days:
                return False
        if self.min_dur is not None and dur < self.min_dur:
            return False
        if self.max_dur is not None and dur >= self.max_dur:
            return False
        if self.min_kwh is not None and energy < self.min_kwh:
            return False
        if self.max_kwh is not None and energy >= self.max_kwh:
            return False
        if self.has_measured:
            if self.min_power is not None and power_lo < self.min_power:
                return False
            if self.max_power is not None and power_hi >= self.max_power:
                return False
            if self.min_current is not None and (current_lo is None or current_lo < self.min_current):
                return False
            if self.max_current is not None and (current_hi is None or current_hi >= self.max_current):
                return False
        return True
