"""Money helpers: Decimal arithmetic, explicit rounding and integer minor units.

Rules of the house (DESIGN.md §5): never floats; tariff prices and intermediates are ``Decimal``; invoice
amounts are integer minor units (cents) plus an ISO 4217 currency; rounding is always explicit and
``ROUND_HALF_UP`` at documented points.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# Minor-unit exponents for the currencies we handle; EUR and most others use cents.
_MINOR_UNIT_EXPONENT = {"EUR": 2, "GBP": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "USD": 2}

CENT = Decimal("0.01")


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
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def to_minor_units(amount: Decimal | int | str, currency: str) -> int:
    """Round an amount half-up to the currency's minor unit and return it as an integer (e.g. cents)."""
    exponent = minor_unit_exponent(currency)
    rounded = quantize(to_decimal(amount), exponent)
    return int(rounded.scaleb(exponent))


def from_minor_units(minor: int, currency: str) -> Decimal:
    """The exact Decimal amount of ``minor`` units (e.g. 1234 cents → Decimal('12.34'))."""
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise MoneyError(f"minor units must be an int, got {minor!r}")
    return Decimal(minor).scaleb(-minor_unit_exponent(currency))
