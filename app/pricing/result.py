"""Pricing results: per-dimension costs, per-element lines, and their OCPI-like JSON form.

Rounding (the documented points, ROUND_HALF_UP, 4 decimals): each *cost line* (one element's price component
applied to its billed quantity in one dimension) is rounded to 4 decimals, excl. and incl. VAT separately
(incl. is computed from the unrounded excl.). Dimension totals are sums of rounded lines, the subtotal the sum
of the dimension totals, and min_price/max_price bound that subtotal. So every figure printed adds up exactly.
Rounding to cents for the invoice happens later in billing, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.money import round_price

from .periods import PeriodNote

_ZERO = Decimal(0)

# Round to 4 decimals, half up: the package's one rounding rule (written once, in app.money). Bound to the
# name rather than wrapped, because it runs for every cost line of every priced session.
q4 = round_price


def fmt4(value: Decimal) -> str:
    """Decimal → string with exactly 4 decimals (never via float)."""
    return f"{q4(value):.4f}"


@dataclass(frozen=True, slots=True)
class CostLine:
    """One price component of one element, applied to the quantity billed under it (step rounding included).

    ``dimension`` is ENERGY, TIME, PARKING_TIME, FLAT, RESERVATION_TIME or RESERVATION_FLAT; ``vat`` is the
    component's VAT percentage, ``None`` when the tariff gives none (no VAT applicable: incl == excl).
    """

    dimension: str
    element_index: int
    price: Decimal
    vat: Decimal | None
    step_size: int
    quantity: Decimal
    excl_vat: Decimal
    incl_vat: Decimal


@dataclass(frozen=True, slots=True)
class DimensionCost:
    quantity: Decimal
    excl_vat: Decimal
    incl_vat: Decimal


ZERO_COST = DimensionCost(_ZERO, _ZERO, _ZERO)


@dataclass(frozen=True, slots=True)
class PriceBreakdown:
    """The CPO cost of one session according to one tariff.

    ``total_*`` are bounded by the tariff's min_price/max_price; ``subtotal_*`` are the unbounded sums of the
    dimensions; ``bound_applied`` says which bound changed the total (``"MIN_PRICE"``/``"MAX_PRICE"``/None).
    ``vat_unknown`` is True when some priced component had no VAT in the tariff (then its incl == excl).
    Quantities, as OCPI defines them for a CDR: ``total_energy`` kWh metered; ``total_time`` the whole session
    in hours (end - start, charging and not charging, whatever dimensions the periods carry);
    ``total_parking_time`` the hours not charging (the periods' PARKING_TIME, or their length where they carry
    no time dimension and no energy); ``total_reservation_time`` hours. The billed, step-rounded quantities are
    in the dimension costs: the reported quantities never change a price.
    ``notes`` says which charging periods did not fit the session and where they were counted from (see
    ``periods``); empty for a CDR as OCPI wants it.
    """

    currency: str
    energy: DimensionCost
    time: DimensionCost
    parking_time: DimensionCost
    flat: DimensionCost
    reservation_time: DimensionCost
    reservation_flat: DimensionCost
    subtotal_excl_vat: Decimal
    subtotal_incl_vat: Decimal
    total_excl_vat: Decimal
    total_incl_vat: Decimal
    bound_applied: str | None
    vat_unknown: bool
    total_energy: Decimal
    total_time: Decimal
    total_parking_time: Decimal
    total_reservation_time: Decimal
    lines: tuple[CostLine, ...]
    notes: tuple[PeriodNote, ...] = ()

    @property
    def reservation(self) -> DimensionCost:
        """Reservation cost including its fixed fee, as OCPI's ``total_reservation_cost``."""
        t, f = self.reservation_time, self.reservation_flat
        return DimensionCost(t.quantity, t.excl_vat + f.excl_vat, t.incl_vat + f.incl_vat)

    def to_json_dict(self) -> dict[str, object]:
        """CDR-like summary with every amount and quantity as a 4-decimal string, and the notes in words."""

        def price(cost: DimensionCost) -> dict[str, str]:
            return {"excl_vat": fmt4(cost.excl_vat), "incl_vat": fmt4(cost.incl_vat)}

        return {
            "currency": self.currency,
            "total_cost": {"excl_vat": fmt4(self.total_excl_vat), "incl_vat": fmt4(self.total_incl_vat)},
            "total_energy": fmt4(self.total_energy),
            "total_energy_cost": price(self.energy),
            "total_time": fmt4(self.total_time),
            "total_time_cost": price(self.time),
            "total_parking_time": fmt4(self.total_parking_time),
            "total_parking_cost": price(self.parking_time),
            "total_fixed_cost": price(self.flat),
            "total_reservation_cost": price(self.reservation),
            "notes": [note.text() for note in self.notes],
        }
