"""Precompiled tariffs: everything the engine can decide once per tariff instead of once per CDR.

A :class:`CompiledTariff` holds, per *phase* (charging session, reservation followed by a session, expired
reservation), the candidate price components of each dimension in element order, with their compiled
restrictions. Candidates after one without restrictions are dropped (they can never be chosen), and when the
first candidate of every dimension is unrestricted the phase is *static*: the engine then prices a CDR by
summing its volumes, without evaluating anything per period (the fast path most real tariffs take).

Phases and reservations (spec: TariffRestrictions.reservation, ReservationRestrictionType): reservation time
is priced only by elements with a ``reservation`` restriction (FLAT and TIME components), the charging session
only
by elements without one. When the reservation expired (the CDR has reservation periods only), elements with
``RESERVATION_EXPIRES`` are preferred for each dimension, then ``RESERVATION`` elements (spec note under
ReservationRestrictionType); otherwise ``RESERVATION_EXPIRES`` elements do not apply.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from .localtime import to_us
from .model import (
    ENERGY,
    FLAT,
    PARKING_TIME,
    RESERVATION,
    RESERVATION_EXPIRES,
    TIME,
    Price,
    Tariff,
    TariffElement,
)
from .restrictions import CompiledRestrictions

_HUNDRED = Decimal(100)
_ONE = Decimal(1)


class CompiledComponent:
    """A price component with its VAT factor precomputed (``vat is None`` → factor 1: no VAT applicable)."""

    __slots__ = ("dimension", "element_index", "factor", "price", "step_size", "vat")

    def __init__(self, dimension: str, price: Decimal, vat: Decimal | None, step_size: int, element_index: int):
        self.dimension = dimension
        self.price = price
        self.vat = vat
        self.factor = _ONE if vat is None else (_HUNDRED + vat) / _HUNDRED
        self.step_size = step_size
        self.element_index = element_index


Candidate = tuple[CompiledRestrictions, CompiledComponent]


class PhasePlan:
    """Candidates and split boundaries of one phase. Immutable after construction."""

    __slots__ = (
        "absolute_cuts",
        "candidates",
        "daily_cuts",
        "dims",
        "duration_cuts",
        "energy_cuts",
        "flat",
        "needs_local",
        "needs_measured",
        "static",
        "static_components",
        "static_flat",
    )

    def __init__(self, dims: tuple[str, ...], candidates: dict[str, tuple[Candidate, ...]]) -> None:
        self.dims = dims
        self.candidates = candidates
        self.flat = candidates.get(FLAT, ())
        restrictions = [r for cands in candidates.values() for r, _ in cands]
        # Static: nothing can change which component prices a dimension.
        self.static = all(not cands or cands[0][0].always for cands in candidates.values())
        self.static_components = tuple(candidates[d][0][1] if candidates.get(d) else None for d in dims)
        self.static_flat = self.flat[0][1] if self.flat else None
        self.daily_cuts = tuple(sorted(set().union(*(r.daily_boundaries() for r in restrictions))))
        self.absolute_cuts = tuple(sorted(set().union(*(r.absolute_boundaries() for r in restrictions))))
        self.duration_cuts = tuple(sorted(set().union(*(r.duration_boundaries() for r in restrictions))))
        self.energy_cuts = tuple(sorted(set().union(*(r.energy_boundaries() for r in restrictions))))
        self.needs_local = any(r.has_local for r in restrictions)
        self.needs_measured = any(r.has_measured for r in restrictions)


class CompiledTariff:
    """A parsed Tariff ready for fast, repeated pricing. Build with :func:`compile_tariff`."""

    __slots__ = (
        "currency",
        "end_us",
        "expired",
        "id",
        "max_price",
        "min_price",
        "reserved",
        "session",
        "start_us",
        "tariff",
    )

    def __init__(self, tariff: Tariff) -> None:
        self.tariff = tariff
        self.id = tariff.id
        self.currency = tariff.currency
        self.min_price: Price | None = tariff.min_price
        self.max_price: Price | None = tariff.max_price
        self.start_us = None if tariff.start_date_time is None else to_us(tariff.start_date_time)
        self.end_us = None if tariff.end_date_time is None else to_us(tariff.end_date_time)
        compiled = [(i, CompiledRestrictions(e.restrictions), e) for i, e in enumerate(tariff.elements)]
        session = [c for c in compiled if c[1].reservation is None]
        reserved = [c for c in compiled if c[1].reservation == RESERVATION]
        expired = [c for c in compiled if c[1].reservation == RESERVATION_EXPIRES] + reserved
        self.session = _plan((ENERGY, TIME, PARKING_TIME), session)
        self.reserved = _plan((TIME,), reserved)
        self.expired = _plan((TIME,), expired)


def _plan(dims: tuple[str, ...], elements: list[tuple[int, CompiledRestrictions, TariffElement]]) -> PhasePlan:
    candidates: dict[str, tuple[Candidate, ...]] = {}
    for dim in (*dims, FLAT):
        cands: list[Candidate] = []
        for index, restrictions, element in elements:
            # Only the first component of a dimension in an element counts (one per dimension per element).
            comp = next((c for c in element.price_components if c.type == dim), None)
            if comp is None:
                continue
            cands.append((restrictions, CompiledComponent(dim, comp.price, comp.vat, comp.step_size, index)))
            if restrictions.always:
                break  # later elements can never be chosen for this dimension
        candidates[dim] = tuple(cands)
    return PhasePlan(dims, candidates)


@lru_cache(maxsize=4096)
def compile_tariff(tariff: Tariff) -> CompiledTariff:
    """Compile (and cache) a parsed tariff. Tariff objects are frozen and hashable, so caching is safe."""
    return CompiledTariff(tariff)
