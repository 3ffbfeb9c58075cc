"""Money helpers: Decimal arithmetic, explicit rounding and integer minor units.

Rules of the house (DESIGN.md §5): never floats; tariff prices and intermediates are ``Decimal``; invoice
amounts are integer minor units (cents) plus an ISO 4217 currency; rounding is always explicit and
``ROUND_HALF_UP`` at documented points.

This module owns *how* money is rounded (every helper rounds half-up); the callers own *where*: pricing rounds
its intermediates to 4 decimals (``round_price``, see ``app.pricing.result``), the invoice rounds each line to
minor units once (``to_minor_units``) and VAT per rate once (``round_to_whole`` on a base in minor units).
Pure (no Flask, no database): pricing imports it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# Minor-unit exponents for the currencies we handle; EUR and most others use cents.
_MINOR_UNIT_EXPONENT = {"EUR": 2, "GBP": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "USD": 2}

CENT = Decimal("0.01")
# Tariff prices, rated costs and our fees are kept to 4 decimals (their columns are Numeric(14, 4)).
PRICE_PLACES = 4
_ONE = Decimal(1)
# The quantum of each number of decimals, built once: rounding sits in hot loops (pricing, the invoice run).
_QUANTA = tuple(_ONE.scaleb(-places) for places in range(9))
_PRICE_QUANTUM = _QUANTA[PRICE_PLACES]


class MoneyError(ValueError):
    """A value that cannot be used as money (a float, an unknown currency, garbage text)."""


def to_decimal(value: Decimal | int | str) -> Decimal:
    """Convert an exact value to Decimal; floats are refused because they are not exact."""
    if isinstance(value, (bool, float)):
        raise MoneyError(f"refusing inexact value {value!r}; pass a Decimal, int or str")
    try:
        result = Decimal(value)
    except (InvalidOperation, TypeError) as exc:
        raise MoneyError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise MoneyError(f"not a finite number: {value!r}")
    return result


def minor_unit_exponent(currency: str) -> int:
    try:
        return _MINOR_UNIT_EXPONENT[currency.upper()]
    except KeyError as exc:
        raise MoneyError(f"unsupported currency {currency!r}") from exc


def quantize(value: Decimal, places: int) -> Decimal:
    """Round ``value`` half-up to ``places`` decimals."""
    quantum = _QUANTA[places] if 0 <= places < len(_QUANTA) else _ONE.scaleb(-places)
    return value.quantize(quantum, rounding=ROUND_HALF_UP)


def round_price(value: Decimal) -> Decimal:
    """Round half-up to 4 decimals: tariff prices, costs and fees before they become invoice lines."""
    return value.quantize(_PRICE_QUANTUM, rounding=ROUND_HALF_UP)


def round_to_cents(value: Decimal) -> Decimal:
    """Round half-up to 0.01 (an amount in a currency with cents, still as a Decimal)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def round_to_whole(value: Decimal) -> int:
    """Round half-up to an integer: for an amount already counted in minor units (VAT on a base in cents)."""
    return int(value.quantize(_ONE, rounding=ROUND_HALF_UP))


def round_to_minor_units(amount: Decimal, exponent: int) -> int:
    """Round a Decimal amount half-up to whole minor units of ``exponent`` decimals (2 → cents), as an int.

    For loops that looked the exponent up once; :func:`to_minor_units` is the checked form. Rounding happens
    before the shift, so an amount with more digits than the decimal context holds is rounded only once.
    """
    return int(quantize(amount, exponent).scaleb(exponent))


def to_minor_units(amount: Decimal | int | str, currency: str) -> int:
    """Round an amount half-up to the currency's minor unit and return it as an integer (e.g. cents)."""
    exponent = minor_unit_exponent(currency)
    return round_to_minor_units(to_decimal(amount), exponent)


def from_minor_units(minor: int, currency: str) -> Decimal:
    """The exact Decimal amount of ``minor`` units (e.g. 1234 cents → Decimal('12.34'))."""
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise MoneyError(f"minor units must be an int, got {minor!r}")
    return Decimal(minor).scaleb(-minor_unit_exponent(currency))
