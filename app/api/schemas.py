"""Marshmallow schemas shared by the API's resources (each resource keeps its own ``...In`` / ``...Out`` beside it).

House rules for what goes out: money that is paid is integer minor units with its currency (:class:`MoneyOut`);
rates (a price per kWh or per hour, 4 decimals) and measured quantities (kWh) are exact decimal strings, since
rounding a rate to cents would show the wrong price and a JSON number becomes a float in most clients; times are
ISO 8601 with their offset. What comes in is bounded: text by length and without control characters, numbers by
range.
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from app.money import to_minor_units


class StatusOut(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})
    version = fields.String(required=True, metadata={"example": "v1"})
    time = fields.DateTime(required=True)


class ProblemOut(Schema):
    """RFC 9457 problem document, with the stable ``code`` and the translated ``message``."""

    type = fields.String(required=True, metadata={"example": "urn:emsp:api:problem:card_refused"})
    title = fields.String(required=True, metadata={"example": "Conflict"})
    status = fields.Integer(required=True, metadata={"example": 409})
    detail = fields.String(required=True)
    code = fields.String(required=True, metadata={"description": "Stable; branch on this.", "example": "not_found"})
    message = fields.String(required=True, metadata={"description": "For people, in the caller's language."})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Invalid input: field name → messages."},
    )


class MoneyOut(Schema):
    amount_minor = fields.Integer(required=True, metadata={"description": "In minor units (cents).", "example": 1234})
    currency = fields.String(required=True, metadata={"example": "EUR"})


class RateOut(Schema):
    """A unit price as priced (4 decimals), not rounded to cents."""

    amount = fields.String(required=True, metadata={"description": "Exact decimal.", "example": "0.0500"})
    currency = fields.String(required=True, metadata={"example": "EUR"})


def money(amount: Decimal | int, currency: str) -> dict[str, Any]:
    """An amount (a Decimal in the currency, rounded half-up once, here) as :class:`MoneyOut`."""
    return {"amount_minor": to_minor_units(amount, currency), "currency": currency}


def minor(amount_minor: int, currency: str) -> dict[str, Any]:
    """An amount already in minor units as :class:`MoneyOut`."""
    return {"amount_minor": amount_minor, "currency": currency}


def rate(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"amount": decimal_text(amount), "currency": currency}


def decimal_text(value: Decimal | int, places: int | None = None) -> str:
    """An exact decimal as text, never in exponent notation."""
    number = Decimal(value)
    if places is not None:
        number = number.quantize(Decimal(1).scaleb(-places))
    return format(number, "f")


# English here; the problem document translates it (app.api.problems.VALIDATION_MESSAGES marks it).
CONTROL_CHARACTERS = "Control characters are not allowed."


def _printable(value: str) -> None:
    # Control characters (NUL breaks PostgreSQL, the others break pages and CSVs) and lone surrogates (not
    # encodable in UTF-8) never reach a service.
    if any(unicodedata.category(character) in ("Cc", "Cs") for character in value):
        raise ValidationError(CONTROL_CHARACTERS)


def text(max_length: int, *, required: bool = False, min_length: int = 0, **kwargs: Any) -> fields.String:
    """A string field bounded in length, with no control characters."""
    return fields.String(
        required=required,
        validate=[validate.Length(min=min_length, max=max_length), _printable],
        **kwargs,
    )
