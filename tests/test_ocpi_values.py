"""The value rules of OCPI JSON shared by the roaming reader and pricing (app.ocpi_values)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from app.ocpi_values import NotANumberError, exact_decimal, load_json, parse_ocpi_datetime, utc_datetime
from app.pricing import PricingInputError
from app.pricing.parse import parse_datetime
from app.roaming.ocpi.reader import FieldReader, InvalidObjectError, require_decimal, to_datetime
from app.roaming.receive.limits import SESSION_AMOUNT

UTC_MOMENT = dt.datetime(2015, 6, 29, 20, 39, 9, tzinfo=dt.UTC)


def test_json_numbers_stay_exact():
    assert load_json('{"price": 4.40}')["price"] == Decimal("4.40")
    assert exact_decimal(4.4) == Decimal("4.4")  # a float from a careless caller: its shortest text
    assert exact_decimal(" 4.40 ", numeric_text=True) == Decimal("4.40")
    for refused in (True, "4.40", [4], None):
        with pytest.raises(NotANumberError):
            exact_decimal(refused)


@pytest.mark.parametrize("text", ["2015-06-29T20:39:09Z", "2015-06-29T22:39:09+02:00", "2015-06-29T20:39:09"])
def test_one_datetime_rule_for_roaming_and_pricing(text):
    assert utc_datetime(text) == parse_ocpi_datetime(text) == UTC_MOMENT
    assert parse_datetime(text, "start_date_time") == to_datetime(text, "start_date_time") == UTC_MOMENT


def test_roaming_is_more_tolerant_than_pricing_about_the_form():
    assert parse_ocpi_datetime(" 2015-06-29T20:39:09z ") == UTC_MOMENT
    with pytest.raises(PricingInputError):
        parse_datetime("2015-06-29T20:39:09z", "start_date_time")


def test_roaming_reader_names_the_field_in_both_styles():
    with pytest.raises(InvalidObjectError) as first_error:
        require_decimal({"total_cost": {"excl_vat": "abc"}}, "total_cost.excl_vat", SESSION_AMOUNT)
    assert first_error.value.message == "field total_cost.excl_vat must be a number"
    errors: list[tuple[str, str]] = []
    reader = FieldReader({"latitude": "north"}, "coordinates", errors)
    assert reader.decimal("latitude", limit=90) is None
    assert errors == [("coordinates.latitude", "must be a decimal number")]
