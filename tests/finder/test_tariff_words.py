"""The CPO tariff in words, from the parsed tariff."""

from __future__ import annotations

import datetime as dt

from app.finder.tariff_words import tariff_in_words
from app.pricing import parse_tariff


def tariff(*elements, **extra):
    return parse_tariff({"id": "T", "currency": "EUR", "elements": list(elements), **extra})


def component(kind, price, step=1):
    return {"type": kind, "price": price, "vat": 21.0, "step_size": step}


def test_energy_then_time_after_two_hours():
    words = tariff_in_words(
        tariff(
            {"price_components": [component("ENERGY", 0.35)]},
            {"price_components": [component("TIME", 1.00, 60)], "restrictions": {"min_duration": 7200}},
        )
    )
    assert words.text == "€0.35/kWh, €1.00 per hour after 2 h (excl. VAT)"


def test_prices_are_exact_and_restrictions_that_restrict_nothing_are_left_out():
    # As the Dutch feed sends it: 00:00-23:59 every day of the week, minimum duration 0.
    every_day = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
    restrictions = {"start_time": "00:00", "end_time": "23:59", "min_duration": 0, "day_of_week": every_day}
    words = tariff_in_words(tariff({"price_components": [component("ENERGY", 0.388)], "restrictions": restrictions}))
    assert words.text == "€0.388/kWh (excl. VAT)"


def test_day_and_night_and_flat_fee():
    words = tariff_in_words(
        tariff(
            {
                "price_components": [component("ENERGY", 0.45)],
                "restrictions": {"start_time": "07:00", "end_time": "23:00"},
            },
            {"price_components": [component("ENERGY", 0.29)]},
            {"price_components": [component("FLAT", 0.35)]},
            {"price_components": [component("ENERGY", 9.99)]},  # never applies: an unrestricted one came first
        )
    )
    assert words.text == "€0.45/kWh from 07:00 to 23:00, €0.29/kWh otherwise, €0.35 per session (excl. VAT)"


def test_weekdays_parking_power_and_bounds():
    words = tariff_in_words(
        tariff(
            {
                "price_components": [component("PARKING_TIME", 2.5, 300)],
                "restrictions": {"day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]},
            },
            {"price_components": [component("ENERGY", 0.59)], "restrictions": {"min_power": 50}},
            {"price_components": [component("ENERGY", 0.39)]},
            max_price={"excl_vat": 30},
        )
    )
    assert words.text == (
        "€2.50 per hour parked on weekdays, €0.59/kWh from 50 kW, €0.39/kWh otherwise, at most €30.00 (excl. VAT)"
    )


def test_reservations_left_out_and_alt_text_in_the_drivers_language(app):
    words = tariff_in_words(
        tariff(
            {"price_components": [component("TIME", 1.0)], "restrictions": {"reservation": "RESERVATION"}},
            {"price_components": [component("ENERGY", 0.30)]},
        ),
        [{"language": "en", "text": "30 cents per kWh"}, {"language": "nl", "text": "30 cent per kWh"}],
    )
    assert words.text == "€0.30/kWh (excl. VAT)"
    assert words.alt_text == "30 cents per kWh"  # outside a request: English
    with app.test_request_context("/?lang=nl"):
        dutch = tariff_in_words(
            tariff({"price_components": [component("ENERGY", 0.30)]}),
            [
                {"language": "en", "text": "30 cents per kWh"},
                {"language": "nl", "text": "30 cent per kWh"},
            ],
        )
    assert dutch.alt_text == "30 cent per kWh"
    assert "0,30" in dutch.text  # Dutch number format


def test_dates_already_past_are_left_out():
    words = tariff_in_words(
        tariff(
            {"price_components": [component("ENERGY", 0.60)], "restrictions": {"start_date": "2027-03-01"}},
            {"price_components": [component("ENERGY", 0.65)], "restrictions": {"end_date": "2027-01-01"}},
            {"price_components": [component("ENERGY", 0.55)], "restrictions": {"start_date": "2025-11-19"}},
            {"price_components": [component("ENERGY", 0.99)]},  # never: the one above applies from now on
        ),
        today=dt.date(2026, 12, 7),
    )
    assert words.text == "€0.60/kWh from 2027-03-01, €0.65/kWh until 2027-01-01, €0.55/kWh otherwise (excl. VAT)"
