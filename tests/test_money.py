"""Rounding helpers of app.money: one rule (half up), named by where it is used."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.money import quantize, round_price, round_to_cents, round_to_minor_units, round_to_whole, to_minor_units


@pytest.mark.parametrize(
    ("value", "cents", "price"),
    [
        ("0.005", "0.01", "0.0050"),
        ("-0.005", "-0.01", "-0.0050"),
        ("1.23445", "1.23", "1.2345"),
        ("2.00004999", "2.00", "2.0000"),
    ],
)
def test_round_half_up_to_cents_and_to_price_precision(value, cents, price):
    assert round_to_cents(Decimal(value)) == Decimal(cents)
    assert round_price(Decimal(value)) == Decimal(price)
    assert quantize(Decimal(value), 2) == round_to_cents(Decimal(value))
    assert quantize(Decimal(value), 4) == round_price(Decimal(value))


def test_minor_units_and_whole_units():
    assert round_to_minor_units(Decimal("12.345"), 2) == 1235 == to_minor_units("12.345", "EUR")
    assert round_to_minor_units(Decimal("-0.005"), 2) == -1
    assert round_to_whole(Decimal(1050) * 21 / 100) == 221  # 220.5 cents of VAT → 221
    assert round_to_whole(Decimal("-0.5")) == -1


def test_rounding_happens_once_for_amounts_longer_than_the_context():
    # 31 significant digits: shifting before rounding would round twice (to 28 digits, then to cents) and give 1.
    assert round_to_minor_units(Decimal("0.004999999999999999999999999999999"), 2) == 0
