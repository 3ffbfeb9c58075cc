"""Opening hours of a location (OCPI 2.2.1 ``Hours``) and whether it is open at an instant.

The rules, from mod_locations (Hours, RegularHours, ExceptionalPeriod):

- ``exceptional_closings`` (UTC periods) win over everything;
- ``exceptional_openings`` (UTC periods) open the location in addition to the regular hours;
- ``twentyfourseven`` true: open at any other time;
- else ``regular_hours``: weekday 1 (Monday) to 7 (Sunday) with a begin and an end in *local* time, in the
  location's own ``time_zone`` (so a Dutch garage's 08:00 is 08:00 in Amsterdam, summer or winter, wherever the
  driver looks from). A period ends before its ``period_end``; "23:59" is read as the end of the day (feeds write
  it for midnight). A period whose end is not after its begin (not allowed by the spec, seen in feeds) is read as
  running past midnight into the next day.

A location that publishes no opening times, or times that cannot be read, has *unknown* hours (None): on-street
chargers, most of the locations without ``opening_times`` in the Dutch data, have none to publish. The "open
now" filter keeps them (it drops only locations known to be closed) and the result says the hours are unknown.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.ocpi_values import parse_ocpi_datetime

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
END_OF_DAY = 24 * 60


@dataclass(frozen=True, slots=True)
class RegularPeriod:
    weekday: int  # 1 = Monday ... 7 = Sunday, ISO
    begin: str  # "HH:MM", local time
    end: str  # "HH:MM", local time ("23:59" = end of day)

    @property
    def begin_minute(self) -> int:
        return _minutes(self.begin)

    @property
    def end_minute(self) -> int:
        end = _minutes(self.end)
        return END_OF_DAY if end == END_OF_DAY - 1 else end


@dataclass(frozen=True, slots=True)
class ExceptionalPeriod:
    begin: dt.datetime  # UTC
    end: dt.datetime  # UTC

    def contains(self, at: dt.datetime) -> bool:
        return self.begin <= at < self.end


@dataclass(frozen=True, slots=True)
class OpeningHours:
    twentyfourseven: bool
    regular: tuple[RegularPeriod, ...]
    exceptional_openings: tuple[ExceptionalPeriod, ...]
    exceptional_closings: tuple[ExceptionalPeriod, ...]
    time_zone: str

    def is_open(self, at: dt.datetime) -> bool:
        """Open at the instant ``at`` (aware)."""
        if any(period.contains(at) for period in self.exceptional_closings):
            return False
        if any(period.contains(at) for period in self.exceptional_openings):
            return True
        if self.twentyfourseven:
            return True
        local = at.astimezone(ZoneInfo(self.time_zone))
        minute = local.hour * 60 + local.minute
        today = local.isoweekday()
        yesterday = 7 if today == 1 else today - 1
        for period in self.regular:
            begin, end = period.begin_minute, period.end_minute
            if end > begin:
                if period.weekday == today and begin <= minute < end:
                    return True
            elif (period.weekday == today and minute >= begin) or (period.weekday == yesterday and minute < end):
                return True  # runs past midnight (see the module)
        return False


def _minutes(clock: str) -> int:
    match = _CLOCK.match(clock)
    if match is None:
        raise ValueError(f"not a time of day: {clock!r}")
    return int(match.group(1)) * 60 + int(match.group(2))


def zone_name(time_zone: str | None, fallback: str) -> str:
    """The location's IANA zone when it is one we know, else ``fallback`` (the country's)."""
    if time_zone:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            return fallback
        return time_zone
    return fallback


def _periods(items: Any) -> tuple[ExceptionalPeriod, ...]:
    periods = []
    for item in items or ():
        begin, end = parse_ocpi_datetime(item["period_begin"]), parse_ocpi_datetime(item["period_end"])
        periods.append(ExceptionalPeriod(begin, end))
    return tuple(periods)


def opening_hours_of(opening_times: Any, time_zone: str) -> OpeningHours | None:
    """The hours published in a location's ``opening_times`` (None: none published, or unreadable)."""
    if not isinstance(opening_times, Mapping):
        return None
    try:
        regular = []
        for item in opening_times.get("regular_hours") or ():
            weekday = item["weekday"]
            if not isinstance(weekday, int) or isinstance(weekday, bool) or not 1 <= weekday <= 7:
                raise ValueError(f"weekday {weekday!r}")
            period = RegularPeriod(weekday, str(item["period_begin"]), str(item["period_end"]))
            period.begin_minute, period.end_minute  # noqa: B018  (checks both clocks now, not at the first search)
            regular.append(period)
        hours = OpeningHours(
            twentyfourseven=opening_times.get("twentyfourseven") is True,
            regular=tuple(regular),
            exceptional_openings=_periods(opening_times.get("exceptional_openings")),
            exceptional_closings=_periods(opening_times.get("exceptional_closings")),
            time_zone=time_zone,
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if not hours.twentyfourseven and not hours.regular and not hours.exceptional_openings:
        return None  # not 24/7 and no hours at all: the spec requires regular hours then; we cannot tell
    return hours


def open_at(hours: OpeningHours | None, at: dt.datetime) -> bool | None:
    """Whether the location is open at ``at``; None when its hours are unknown."""
    return None if hours is None else hours.is_open(at)
