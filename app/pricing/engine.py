"""The OCPI 2.2.1 tariff engine: price one session (CDR) with one tariff.

Rules implemented (mod_tariffs, mod_cdrs "step_size"), and why the code is shaped as it is:

* Per dimension (ENERGY, TIME, PARKING_TIME, FLAT) the first element with a component for it whose
  restrictions all hold is used; no such element → that dimension is free.
* A period is split wherever a restriction of some candidate element can change inside it: local time of day
  (wrapping past midnight, DST aware), local dates and midnights (day_of_week), session duration, and
  cumulative kWh. Volumes are interpolated linearly over the period's wall time (a kWh boundary thus falls at
  the proportional time). Each piece is evaluated at its midpoint (see ``restrictions``).
* FLAT is billed once per phase, in the first piece where some FLAT component is active.
* step_size is applied once per session to the total of a dimension (see ``steps``).
* min_price/max_price bound the total, excl. and incl. VAT independently.
* Periods that do not fit the session (hour-aligned periods starting before it, periods out of order or after
  its end) are counted from where they fit, their dimensions kept, and each such move is a note in the result
  (see ``periods``).
* Reported quantities mean what OCPI says: ``total_time`` is the whole session (end - start, charging or not),
  ``total_parking_time`` the time not charging (see :func:`_parking_hours`). They never change a price: prices
  come from the periods' dimensions.

Time is handled as integer microseconds since the epoch (UTC) so that the hot loop does no datetime
arithmetic; local time is UTC plus the zone offset of the stretch (``localtime.local_chunks``).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Collection
from contextlib import nullcontext
from datetime import datetime, tzinfo
from decimal import Decimal, getcontext, localcontext
from typing import Any

from app.ocpi_ids import ci_key

from .compiled import Candidate, CompiledComponent, CompiledTariff, PhasePlan, compile_tariff
from .errors import CurrencyMismatchError, PricingInputError, TariffNotValidError
from .localtime import local_chunks, offset_us, resolve_zone, to_us
from .model import ENERGY, FLAT, PARKING_TIME, TIME, ZERO, CdrInput, ChargingPeriod, Tariff
from .periods import PeriodNote, fit_periods
from .restrictions import DAY_US
from .result import ZERO_COST, CostLine, DimensionCost, PriceBreakdown, q4
from .steps import SECONDS_PER_HOUR, WH_PER_KWH, billed_quantity

_US_PER_HOUR = Decimal(3_600_000_000)
_ONE = Decimal(1)
_TWO = Decimal(2)
RES_TIME = "RESERVATION_TIME"
RES_FLAT = "RESERVATION_FLAT"
_DIM_ORDER = {FLAT: 0, ENERGY: 1, TIME: 2, PARKING_TIME: 3, RES_FLAT: 4, RES_TIME: 5}
# A period of a phase: its start and end (UTC µs) and the CDR's charging period.
_Span = tuple[int, int, ChargingPeriod]
# A cost line being summed: (dimension, element index) and [quantity (Decimal), its CompiledComponent], a list
# that is updated in place.
_LineItem = tuple[tuple[str, int], list[Any]]


def _phase_cuts(plan: PhasePlan, chunks: list[tuple[int, int, int]], origin: int) -> list[int]:
    """All instants strictly inside the phase where a candidate element may switch (UTC µs, sorted)."""
    a, b = chunks[0][0], chunks[-1][1]
    cuts: set[int] = set()
    for d in plan.duration_cuts:
        if a < origin + d < b:
            cuts.add(origin + d)
    if plan.needs_local:
        daily, absolute = plan.daily_cuts, plan.absolute_cuts
        for c0, c1, off in chunks:
            if c0 > a:
                cuts.add(c0)  # local time jumps: re-evaluate
            w0, w1 = c0 + off, c1 + off
            for day in range(w0 // DAY_US, w1 // DAY_US + 1):
                base = day * DAY_US - off
                for s in daily:
                    t = base + s
                    if c0 < t < c1:
                        cuts.add(t)
            for w in absolute:
                t = w - off
                if c0 < t < c1:
                    cuts.add(t)
    return sorted(cuts)


def _choose(
    cands: tuple[Candidate, ...],
    wall: int,
    dur: int,
    energy: Decimal,
    plo: Decimal,
    phi: Decimal,
    clo: Decimal | None,
    chi: Decimal | None,
) -> CompiledComponent | None:
    for restrictions, comp in cands:
        if restrictions.holds(wall, dur, energy, plo, phi, clo, chi):
            return comp
    return None


class _Acc:
    """Accumulates billed quantities per (dimension, element) and remembers the last priced component."""

    __slots__ = ("last", "lines", "totals")

    def __init__(self) -> None:
        self.lines: dict[tuple[str, int], list[Any]] = {}
        self.totals: dict[str, Decimal] = {}
        self.last: dict[str, tuple[int, CompiledComponent]] = {}

    def add(self, dim: str, comp: CompiledComponent, qty: Decimal, seq: int) -> None:
        key = (dim, comp.element_index)
        line = self.lines.get(key)
        if line is None:
            self.lines[key] = [qty, comp]
        else:
            line[0] += qty
        self.totals[dim] = self.totals.get(dim, ZERO) + qty
        self.last[dim] = (seq, comp)

    def round_up(self, dim: str, units: Decimal) -> None:
        """Apply step_size of the last component priced for ``dim`` to the dimension's total."""
        last = self.last.get(dim)
        if last is None:
            return
        comp = last[1]
        total = self.totals[dim]
        extra = billed_quantity(total, comp.step_size, units) - total
        if extra > 0:
            self.lines[(dim, comp.element_index)][0] += extra
            self.totals[dim] = total + extra


def _price_phase(
    plan: PhasePlan,
    spans: list[tuple[int, int, ChargingPeriod]],
    zone: tzinfo | None,
    acc: _Acc,
    reservation: bool,
) -> None:
    dims = (RES_TIME,) if reservation else plan.dims
    flat_dim = RES_FLAT if reservation else FLAT
    if plan.static:
        # Fast path: constant components; a dimension's quantity is simply the sum of its volumes.
        for seq, (_a, _b, p) in enumerate(spans):
            vols = (p.reservation_time,) if reservation else (p.energy, p.time, p.parking_time)
            for dim, vol, comp in zip(dims, vols, plan.static_components, strict=True):
                if vol and comp is not None:
                    acc.add(dim, comp, vol, seq)
        if plan.static_flat is not None:
            acc.add(flat_dim, plan.static_flat, _ONE, 0)
        return

    origin = spans[0][0]
    chunks = local_chunks(zone if plan.needs_local else None, origin, spans[-1][1])
    cuts = _phase_cuts(plan, chunks, origin)
    energy_cuts = plan.energy_cuts
    candidates = [plan.candidates[d] for d in plan.dims]
    flat_cands = plan.flat
    flat_done = not flat_cands
    energy_cum = ZERO
    seq = 0
    for a, b, p in spans:
        vols = (p.reservation_time,) if reservation else (p.energy, p.time, p.parking_time)
        energy = ZERO if reservation else p.energy
        width = b - a
        # Power for power restrictions: MIN/MAX_POWER when the CDR gives them, else the period's average.
        plo = phi = ZERO
        if plan.needs_measured:
            if p.time > 0:
                avg = energy / p.time
            elif width > 0:
                avg = energy * _US_PER_HOUR / width
            else:
                avg = ZERO
            plo = avg if p.min_power is None else p.min_power
            phi = avg if p.max_power is None else p.max_power
        clo, chi = p.min_current, p.max_current
        # Fractions of the period where something may switch.
        fracs: list[Decimal] = []
        if width > 0:
            i0, i1 = bisect_right(cuts, a), bisect_left(cuts, b)
            if i1 > i0:
                dwidth = Decimal(width)
                fracs = [Decimal(c - a) / dwidth for c in cuts[i0:i1]]
            if energy_cuts and energy > 0:
                top = energy_cum + energy
                extra = [(k - energy_cum) / energy for k in energy_cuts if energy_cum < k < top]
                if extra:
                    fracs = sorted(set(fracs).union(extra))
        if not fracs:
            # One piece: no boundary inside the period (the usual case), no interpolation needed.
            t_mid = a + width // 2
            off = offset_us(zone, t_mid) if zone is not None and plan.needs_local else 0
            wall = t_mid + off
            dur = t_mid - origin
            e_mid = energy_cum + energy / _TWO if energy else energy_cum
            for j, vol in enumerate(vols):
                if vol:
                    comp = _choose(candidates[j], wall, dur, e_mid, plo, phi, clo, chi)
                    if comp is not None:
                        acc.add(dims[j], comp, vol, seq)
            if not flat_done:
                comp = _choose(flat_cands, wall, dur, e_mid, plo, phi, clo, chi)
                if comp is not None:
                    acc.add(flat_dim, comp, _ONE, seq)
                    flat_done = True
            seq += 1
            energy_cum += energy
            continue
        bounds = [ZERO, *fracs, _ONE]
        allocated = [ZERO] * len(vols)
        last_piece = len(bounds) - 2
        for k in range(len(bounds) - 1):
            f0, f1 = bounds[k], bounds[k + 1]
            fm = (f0 + f1) / _TWO
            t_mid = a + int(fm * width) if width > 0 else a
            off = 0
            if zone is not None and plan.needs_local:
                for _c0, c1, coff in chunks:
                    if t_mid < c1 or c1 == chunks[-1][1]:
                        off = coff
                        break
            wall = t_mid + off
            dur = t_mid - origin
            e_mid = energy_cum + energy * fm
            for j, vol in enumerate(vols):
                if not vol:
                    continue
                if k == last_piece:
                    qty = vol - allocated[j]  # remainder: the pieces add up to the volume exactly
                else:
                    qty = vol * (f1 - f0)
                    allocated[j] += qty
                comp = _choose(candidates[j], wall, dur, e_mid, plo, phi, clo, chi)
                if comp is not None:
                    acc.add(dims[j], comp, qty, seq)
            if not flat_done:
                comp = _choose(flat_cands, wall, dur, e_mid, plo, phi, clo, chi)
                if comp is not None:
                    acc.add(flat_dim, comp, _ONE, seq)
                    flat_done = True
            seq += 1
        energy_cum += energy


def price_session(
    tariff: Tariff | CompiledTariff, cdr: CdrInput, timezone_name: str | tzinfo | None = None
) -> PriceBreakdown:
    """Price one session. ``timezone_name`` is the location's time zone (default UTC) for local restrictions.

    Raises :class:`PricingInputError` (or a subclass) when the inputs do not fit together.
    """
    ct = tariff if isinstance(tariff, CompiledTariff) else compile_tariff(tariff)
    if cdr.currency != ct.currency:
        raise CurrencyMismatchError(
            "currency", f"CDR currency {cdr.currency} differs from tariff currency {ct.currency}"
        )
    zone = resolve_zone(timezone_name)
    start_us = to_us(cdr.start)
    if (ct.start_us is not None and start_us < ct.start_us) or (ct.end_us is not None and start_us > ct.end_us):
        raise TariffNotValidError(
            "start_date_time",
            f"session start {cdr.start.isoformat()} is outside the tariff's validity "
            f"({_iso(ct.tariff.start_date_time)} .. {_iso(ct.tariff.end_date_time)})",
        )
    if not cdr.periods:
        raise PricingInputError("charging_periods", "at least one charging period is required")
    if cdr.end < cdr.start:
        raise PricingInputError("end_date_time", "is before start_date_time")
    end_us = to_us(cdr.end)
    periods = cdr.periods
    notes: tuple[PeriodNote, ...] = ()
    starts = [to_us(p.start) for p in periods]
    if starts[0] < start_us or starts[-1] > end_us or starts != sorted(starts):
        # Not as OCPI wants it (hour-aligned periods, say): count each period from where it fits, with a note.
        periods, notes = fit_periods(cdr.start, cdr.end, cdr.periods, zone)
        starts = [to_us(p.start) for p in periods]
    starts.append(end_us)
    session: list[tuple[int, int, ChargingPeriod]] = []
    reserved: list[tuple[int, int, ChargingPeriod]] = []
    for i, p in enumerate(periods):
        # Tariff ids are CiStrings: a period naming "t1" refers to the tariff "T1".
        if p.tariff_id is not None and ct.id is not None and ci_key(p.tariff_id) != ci_key(ct.id):
            raise PricingInputError(
                f"charging_periods[{i}].tariff_id",
                f"period refers to tariff {p.tariff_id!r} but tariff {ct.id!r} was given",
            )
        span = (starts[i], starts[i + 1], p)
        (reserved if p.reservation_time > 0 else session).append(span)
    acc = _Acc()
    # The engine needs 28 significant digits (the default); use a local context only if a caller lowered it.
    with localcontext() if getcontext().prec < 28 else nullcontext() as ctx:
        if ctx is not None:
            ctx.prec = 28
        if reserved:
            _price_phase(ct.reserved if session else ct.expired, reserved, zone, acc, reservation=True)
            acc.round_up(RES_TIME, SECONDS_PER_HOUR)
        if session:
            _price_phase(ct.session, session, zone, acc, reservation=False)
            acc.round_up(ENERGY, WH_PER_KWH)
            # TIME and PARKING_TIME share one step: the one priced last in the session gets rounded.
            t, pk = acc.last.get(TIME), acc.last.get(PARKING_TIME)
            if t is not None or pk is not None:
                later = TIME if pk is None or (t is not None and t[0] > pk[0]) else PARKING_TIME
                acc.round_up(later, SECONDS_PER_HOUR)
        return _result(ct, acc, session, reserved, _hours(end_us - start_us), notes)


def _iso(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat()


def _line_order(item: _LineItem) -> tuple[int, int]:
    return _DIM_ORDER[item[0][0]], item[0][1]


def _hours(microseconds: int) -> Decimal:
    return Decimal(microseconds) / _US_PER_HOUR


def _parking_hours(session: list[_Span]) -> Decimal:
    """OCPI's ``total_parking_time``: the time of the session when no energy was transferred. A period that
    carries time dimensions (TIME, PARKING_TIME) says it itself: its PARKING_TIME. A period with neither (real CPOs
    often send ENERGY only) is not charging for its whole length when it transferred no energy, and charging
    otherwise."""
    parking = ZERO
    for a, b, p in session:
        if p.time or p.parking_time:  # volumes are never negative (parse refuses them)
            parking += p.parking_time
        elif not p.energy:
            parking += _hours(b - a)
    return parking


def _result(
    ct: CompiledTariff,
    acc: _Acc,
    session: list[_Span],
    reserved: list[_Span],
    session_hours: Decimal,
    notes: tuple[PeriodNote, ...],
) -> PriceBreakdown:
    lines = []
    sums: dict[str, list[Decimal]] = {}
    vat_unknown = False
    items: Collection[_LineItem] = acc.lines.items()
    if len(items) > 1:
        items = sorted(items, key=_line_order)
    for (dim, index), (qty, comp) in items:
        excl = qty * comp.price
        incl = excl * comp.factor
        excl_r, incl_r = q4(excl), q4(incl)
        if comp.vat is None:
            vat_unknown = True
        lines.append(CostLine(dim, index, comp.price, comp.vat, comp.step_size, qty, excl_r, incl_r))
        s = sums.get(dim)
        if s is None:
            sums[dim] = [qty, excl_r, incl_r]
        else:
            s[0] += qty
            s[1] += excl_r
            s[2] += incl_r

    def cost(dim: str) -> DimensionCost:
        s = sums.get(dim)
        return ZERO_COST if s is None else DimensionCost(s[0], s[1], s[2])

    sub_excl = sub_incl = ZERO
    for s in sums.values():
        sub_excl += s[1]
        sub_incl += s[2]
    total_excl, total_incl, bound = apply_bounds(ct, sub_excl, sub_incl)
    energy = res_time = ZERO
    for _a, _b, p in session:
        energy += p.energy
    for _a, _b, p in reserved:
        res_time += p.reservation_time
    return PriceBreakdown(
        currency=ct.currency,
        energy=cost(ENERGY),
        time=cost(TIME),
        parking_time=cost(PARKING_TIME),
        flat=cost(FLAT),
        reservation_time=cost(RES_TIME),
        reservation_flat=cost(RES_FLAT),
        subtotal_excl_vat=sub_excl,
        subtotal_incl_vat=sub_incl,
        total_excl_vat=total_excl,
        total_incl_vat=total_incl,
        bound_applied=bound,
        vat_unknown=vat_unknown,
        total_energy=energy,
        total_time=session_hours,
        total_parking_time=_parking_hours(session),
        total_reservation_time=res_time,
        lines=tuple(lines),
        notes=notes,
    )


def apply_bounds(ct: CompiledTariff, excl: Decimal, incl: Decimal) -> tuple[Decimal, Decimal, str | None]:
    """Bound the subtotal by min_price then max_price; excl. and incl. VAT are bounded independently.

    When a bound has no ``incl_vat`` (it is optional in OCPI) and the excl. bound changes the total, incl. VAT
    is scaled by the same factor (keeping the session's VAT mix); from a zero subtotal it becomes the excl.
    bound (no VAT known to add).
    """
    bound = None
    for name, price, clamp in (("MIN_PRICE", ct.min_price, max), ("MAX_PRICE", ct.max_price, min)):
        if price is None:
            continue
        new_excl = clamp(excl, price.excl_vat)
        if price.incl_vat is not None:
            new_incl = clamp(incl, price.incl_vat)
        elif new_excl != excl:
            new_incl = q4(incl * new_excl / excl) if excl > 0 else new_excl
        else:
            new_incl = incl
        if new_excl != excl or new_incl != incl:
            bound = name
        excl, incl = new_excl, new_incl
    return excl, incl, bound


def active_components(
    tariff: Tariff | CompiledTariff,
    instant: datetime,
    timezone_name: str | tzinfo | None,
    power_kw: Decimal = ZERO,
) -> dict[str, CompiledComponent]:
    """The component each session dimension would use at the start of a session at ``instant``.

    Evaluated with zero energy and zero duration, at ``power_kw``; current restrictions cannot be verified
    before charging and therefore do not hold. Used to publish prices before charging (see ``estimate``).
    """
    ct = tariff if isinstance(tariff, CompiledTariff) else compile_tariff(tariff)
    zone = resolve_zone(timezone_name)
    t = to_us(instant)
    wall = t + offset_us(zone, t)
    plan = ct.session
    out = {}
    for dim in (*plan.dims, FLAT):
        comp = _choose(plan.candidates.get(dim, ()), wall, 0, ZERO, power_kw, power_kw, None, None)
        if comp is not None:
            out[dim] = comp
    return out
