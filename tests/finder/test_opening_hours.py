"""Open now: regular hours in the location's own time zone, exceptional openings and closings (OCPI Hours)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from app.finder.opening_hours import open_at, opening_hours_of
from tests.shared_data import EXAMPLES

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


WEEKDAYS_8_TO_20 = {
    "twentyfourseven": False,
    "regular_hours": [{"weekday": day, "period_begin": "08:00", "period_end": "20:00"} for day in range(1, 6)],
}


def test_regular_hours_are_local_to_the_location():
    # Wednesday 14 October 2026, 07:30 UTC: 09:30 in Amsterdam (summer time), 03:30 in New York.
    moment = at("2026-10-14T07:30:00+00:00")
    amsterdam = opening_hours_of(WEEKDAYS_8_TO_20, "Europe/Amsterdam")
    new_york = opening_hours_of(WEEKDAYS_8_TO_20, "America/New_York")
    assert open_at(amsterdam, moment) is True
    assert open_at(new_york, moment) is False
    # 19:30 UTC: 21:30 in Amsterdam (closed), 15:30 in New York (open).
    evening = at("2026-10-14T19:30:00+00:00")
    assert (open_at(amsterdam, evening), open_at(new_york, evening)) == (False, True)


def test_summer_and_winter_time():
    hours = opening_hours_of(WEEKDAYS_8_TO_20, "Europe/Amsterdam")
    assert open_at(hours, at("2026-07-01T06:30:00+00:00")) is True  # 08:30 CEST
    assert open_at(hours, at("2026-12-02T06:30:00+00:00")) is False  # 07:30 CET
    assert open_at(hours, at("2026-12-02T07:00:00+00:00")) is True  # 08:00 CET: the period begins
    assert open_at(hours, at("2026-12-02T19:00:00+00:00")) is False  # 20:00 CET: the period has ended


def test_weekend_is_closed():
    hours = opening_hours_of(WEEKDAYS_8_TO_20, "Europe/Brussels")
    assert open_at(hours, at("2026-10-17T10:00:00+00:00")) is False  # Saturday noon in Brussels


def test_spec_example_twentyfourseven_with_exceptional_closing():
    data = json.loads((EXAMPLES / "location_hours_247_open_exception_closing.json").read_text())
    hours = opening_hours_of(data, "Europe/Amsterdam")
    assert open_at(hours, at("2018-12-25T02:59:00+00:00")) is True
    assert open_at(hours, at("2018-12-25T03:00:00+00:00")) is False  # the closing is in UTC, as the spec says
    assert open_at(hours, at("2018-12-25T05:00:00+00:00")) is True


def test_spec_example_regular_hours_with_exceptional_opening():
    data = json.loads((EXAMPLES / "location_hours_opening_hours_with_exceptional_opening.json").read_text())
    hours = opening_hours_of(data, "UTC")
    christmas_2018 = "2018-12-25"  # a Tuesday: open 00:00-04:00, and exceptionally 05:00-06:00
    assert open_at(hours, at(f"{christmas_2018}T03:59:00+00:00")) is True
    assert open_at(hours, at(f"{christmas_2018}T04:30:00+00:00")) is False
    assert open_at(hours, at(f"{christmas_2018}T05:30:00+00:00")) is True
    assert open_at(hours, at("2018-12-26T05:30:00+00:00")) is False  # Wednesday: no regular hours


def test_spec_example_regular_hours_with_exceptional_closing():
    data = json.loads((EXAMPLES / "location_regularhours_example.json").read_text())["opening_times"]
    hours = opening_hours_of(data, "UTC")
    assert open_at(hours, at("2014-06-21T10:00:00+00:00")) is True  # a Saturday, exceptionally open
    assert open_at(hours, at("2014-06-24T10:00:00+00:00")) is False  # a Tuesday, exceptionally closed
    assert open_at(hours, at("2014-06-25T10:00:00+00:00")) is True


def test_end_of_day_and_past_midnight():
    hours = opening_hours_of(
        {
            "twentyfourseven": False,
            "regular_hours": [
                {"weekday": 5, "period_begin": "18:00", "period_end": "23:59"},  # feeds' "until midnight"
                {"weekday": 6, "period_begin": "22:00", "period_end": "02:00"},  # past midnight (not spec, seen)
            ],
        },
        "UTC",
    )
    assert open_at(hours, at("2026-10-16T23:59:30+00:00")) is True  # Friday 23:59:30
    assert open_at(hours, at("2026-10-18T01:30:00+00:00")) is True  # Sunday 01:30, Saturday's night
    assert open_at(hours, at("2026-10-18T02:00:00+00:00")) is False


@pytest.mark.parametrize(
    "opening_times",
    [
        None,
        "24/7",
        {"twentyfourseven": False},  # neither hours nor exceptions: nothing to go by
        {"twentyfourseven": False, "regular_hours": [{"weekday": 8, "period_begin": "08:00", "period_end": "20:00"}]},
        {"twentyfourseven": False, "regular_hours": [{"weekday": 1, "period_begin": "8h", "period_end": "20:00"}]},
        {"twentyfourseven": True, "exceptional_closings": [{"period_begin": "soon"}]},
    ],
)
def test_unknown_hours(opening_times):
    assert opening_hours_of(opening_times, "Europe/Amsterdam") is None
    assert open_at(None, at("2026-10-14T10:00:00+00:00")) is None
