"""Errors raised by the pricing package.

Every error a caller can act on is a subclass of :class:`PricingError`, so a door (CLI, OCPI handler,
batch job)
can catch one type and turn it into a clear message. Input errors name the JSON field path, because the person
reading them is usually looking at a CPO's JSON document and needs to find the offending value quickly.
"""

from __future__ import annotations


class PricingError(Exception):
    """Base class of all pricing errors."""


class PricingInputError(PricingError, ValueError):
    """An OCPI object (Tariff, CDR) or an argument is invalid for pricing.

    ``path`` is the JSON path of the offending field (e.g. ``elements[0].price_components[1].price``),
    or ``""``
    when the error concerns the document as a whole.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class TariffNotValidError(PricingInputError):
    """The session started outside the tariff's ``start_date_time``/``end_date_time`` validity window."""


class CurrencyMismatchError(PricingInputError):
    """Tariff, CDR or plan currencies differ; we never convert currencies silently."""


class UnknownCountryError(PricingError, LookupError):
    """No VAT rate is known for the country where charging took place."""

    def __init__(self, country: str) -> None:
        self.country = country
        super().__init__(f"no VAT rate known for country {country!r}")
