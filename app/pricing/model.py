"""Parsed, immutable OCPI 2.2.1 objects used by the pricing engine.

Only the fields that influence a price are kept. All numbers are :class:`~decimal.Decimal` (money must never
pass through a float), all instants are timezone-aware UTC :class:`~datetime.datetime` values. The classes are
frozen dataclasses with ``__slots__`` so that a parsed tariff can be shared between threads and cached safely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

# Tariff dimension types (TariffDimensionType enum).
ENERGY = "ENERGY"
FLAT = "FLAT"
PARKING_TIME = "PARKING_TIME"
TIME = "TIME"
TARIFF_DIMENSIONS = frozenset({ENERGY, FLAT, PARKING_TIME, TIME})

# Reservation restriction values (ReservationRestrictionType enum).
RESERVATION = "RESERVATION"
RESERVATION_EXPIRES = "RESERVATION_EXPIRES"
RESERVATION_TYPES = frozenset({RESERVATION, RESERVATION_EXPIRES})

# TariffType enum. It selects *which* tariff applies to a session (charging preference, ad-hoc payment); it
# does
# not change how a tariff is computed, so the engine only validates and carries it.
TARIFF_TYPES = frozenset({"AD_HOC_PAYMENT", "PROFILE_CHEAP", "PROFILE_FAST", "PROFILE_GREEN", "REGULAR"})

DAYS_OF_WEEK = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")

# CDR dimension types (CdrDimensionType enum) that the engine reads.
CDR_DIMENSIONS = frozenset(
    {
        "CURRENT",
        "ENERGY",
        "ENERGY_EXPORT",
        "ENERGY_IMPORT",
        "MAX_CURRENT",
        "MIN_CURRENT",
        "MAX_POWER",
        "MIN_POWER",
        "PARKING_TIME",
        "POWER",
        "RESERVATION_TIME",
        "STATE_OF_CHARGE",
        "TIME",
    }
)

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Price:
    """OCPI Price class. ``incl_vat`` is optional in OCPI, hence ``None`` when absent."""

    excl_vat: Decimal
    incl_vat: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PriceComponent:
    """How one dimension is priced. ``vat is None`` means "no VAT applicable" (different from 0 %)."""

    type: str
    price: Decimal
    step_size: int
    vat: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Restrictions:
    """OCPI TariffRestrictions; every field optional, all set fields must hold (logical AND).

    Times are kept as minutes after local midnight (``end_time`` "00:00" is stored as 1440, i.e. end of day),
    dates as ISO strings ``YYYY-MM-DD`` (local dates), day_of_week as a frozenset of ``0`` (Monday) .. ``6``.
    Durations are seconds, energies kWh, currents A, powers kW.
    """

    start_time: int | None = None
    end_time: int | None = None
    start_date: str | None = None
    end_date: str | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: frozenset[int] | None = None
    reservation: str | None = None


NO_RESTRICTIONS = Restrictions()


@dataclass(frozen=True, slots=True)
class TariffElement:
    price_components: tuple[PriceComponent, ...]
    restrictions: Restrictions = NO_RESTRICTIONS


@dataclass(frozen=True, slots=True)
class Tariff:
    """OCPI Tariff (pricing-relevant part)."""

    currency: str
    elements: tuple[TariffElement, ...]
    id: str | None = None
    country_code: str | None = None
    party_id: str | None = None
    type: str | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChargingPeriod:
    """One OCPI ChargingPeriod. Volumes absent from the CDR are 0 (quantities) or ``None`` (measurements).

    ``energy`` is kWh, ``time``/``parking_time``/``reservation_time`` are hours, as in OCPI.
    """

    start: datetime
    energy: Decimal = ZERO
    time: Decimal = ZERO
    parking_time: Decimal = ZERO
    reservation_time: Decimal = ZERO
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    tariff_id: str | None = None

    @property
    def is_reservation(self) -> bool:
        """A reservation period carries reservation time (and, by validation, nothing else)."""
        return self.reservation_time > 0


@dataclass(frozen=True, slots=True)
class CdrInput:
    """The part of an OCPI CDR the engine needs: a session window, a currency and its charging periods."""

    start: datetime
    end: datetime
    currency: str
    periods: tuple[ChargingPeriod, ...] = field(default_factory=tuple)
    id: str | None = None
