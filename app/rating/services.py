"""Rating a CDR: the CPO cost from the right tariff, our fees under the plan in force, VAT, margin; and the
reconciliation of our CPO cost with the CPO's own ``total_cost``.

Which tariff prices the CPO part (the price promise, in this order):
1. ``frozen_tariff``: the tariff version in force when the session started, frozen with the session;
2. ``cdr_tariffs``: the tariff the CPO put in the CDR itself;
3. ``cdr_total_cost``: the CDR's ``total_cost`` as sent, when we hold no tariff at all.
The source is stored with the charge and shown on the invoice line.

Each charge also keeps its *estimate* (``estimate_incl_vat``): the price promise for the session's own kWh and
duration, from the tariff published for its connector when it started (see :func:`_promised_price`). The invoice
run holds a session billed far from it for finance (``app.billing.invoicing.outliers``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, select

from app.charging.models import Cdr, ChargingSession
from app.countries import alpha2
from app.extensions import db
from app.ocpi_ids import ci_key
from app.plans.models import Plan
from app.plans.services import billing_zone, plan_at, terms_of
from app.pricing import (
    PeriodNote,
    PricingError,
    compile_tariff,
    driver_price,
    parse_cdr,
    parse_tariff,
    price_session,
)
from app.rating.countries import DEFAULT_ZONES
from app.rating.models import ReconciliationFinding, SessionCharge
from app.rating.problems import CREDIT_BEFORE_ORIGINAL, NO_ACCOUNT, NO_PLAN
from app.rating.problems import RatingError as RatingError  # defined with the problem kinds; callers know it here
from app.roaming.models import Location, TariffVersion
from app.roaming.receive.locations import get_location
from app.roaming.receive.tariffs import tariffs_for_connector

ZERO = Decimal(0)


@dataclass(frozen=True)
class CpoCost:
    source: str
    excl_vat: Decimal
    incl_vat: Decimal | None
    breakdown: dict[str, Any]
    tariff_version_id: int | None
    # The charging periods the engine counted from elsewhere than the CDR said (hour-aligned periods...).
    notes: tuple[PeriodNote, ...] = ()


def _time_zone(cdr: Cdr) -> str:
    location = db.session.scalar(
        select(Location.time_zone).where(
            Location.country_code == cdr.country_code,
            Location.party_id == cdr.party_id,
            Location.ocpi_id_key == ci_key(cdr.location_ocpi_id),
        )
    )
    return location or DEFAULT_ZONES.get(alpha2(cdr.country), "UTC")


def _frozen_tariff(cdr: Cdr) -> TariffVersion | None:
    if not cdr.session_ocpi_id:
        return None
    # The CDR's session_id is a CiString: the session is found by its folded key, in whatever case it came.
    tariff_id = db.session.scalar(
        select(ChargingSession.frozen_tariff_id).where(
            ChargingSession.country_code == cdr.country_code,
            ChargingSession.party_id == cdr.party_id,
            ChargingSession.ocpi_id_key == ci_key(cdr.session_ocpi_id),
        )
    )
    return db.session.get(TariffVersion, tariff_id) if tariff_id else None


def _cdr_tariff(data: dict[str, Any]) -> dict[str, Any] | None:
    tariffs: list[dict[str, Any]] = data.get("tariffs") or []
    if not tariffs:
        return None
    wanted = next(
        (period.get("tariff_id") for period in data.get("charging_periods") or [] if period.get("tariff_id")), None
    )
    if not isinstance(wanted, str):
        return tariffs[0]
    # Tariff ids are CiStrings: a period's "t1" names the CDR's tariff "T1".
    key = ci_key(wanted)
    return next((t for t in tariffs if isinstance(t.get("id"), str) and ci_key(t["id"]) == key), tariffs[0])


def cpo_cost(cdr: Cdr) -> CpoCost:
    """The CPO part of the price from the best source we have (see the module docstring)."""
    cdr_input = parse_cdr(cdr.data)
    frozen = _frozen_tariff(cdr)
    if frozen is not None:
        breakdown = price_session(compile_tariff(parse_tariff(frozen.data)), cdr_input, _time_zone(cdr))
        return CpoCost(
            "frozen_tariff",
            breakdown.total_excl_vat,
            breakdown.total_incl_vat,
            breakdown.to_json_dict(),
            frozen.id,
            breakdown.notes,
        )
    tariff = _cdr_tariff(cdr.data)
    if tariff is not None:
        breakdown = price_session(parse_tariff(tariff), cdr_input, _time_zone(cdr))
        return CpoCost(
            "cdr_tariffs",
            breakdown.total_excl_vat,
            breakdown.total_incl_vat,
            breakdown.to_json_dict(),
            None,
            breakdown.notes,
        )
    return CpoCost(
        "cdr_total_cost",
        cdr.total_cost_excl_vat,
        cdr.total_cost_incl_vat,
        {"total_cost": cdr.data.get("total_cost")},
        None,
    )


def _published_tariff_at_start(cdr: Cdr) -> TariffVersion | None:
    """The tariff version the CPO published for the CDR's connector when the session started (what the
    connector's estimate showed the driver), or None when we do not know the location, connector or tariff."""
    connector_id = (cdr.data.get("cdr_location") or {}).get("connector_id")
    if not connector_id:
        return None
    location = get_location(cdr.country_code, cdr.party_id, cdr.location_ocpi_id)
    if location is None:
        return None
    try:
        versions = tariffs_for_connector(location, cdr.evse_uid, str(connector_id), cdr.start_date_time)
    except LookupError:  # the CPO never told us about this EVSE or connector
        return None
    return versions[0] if versions else None


def _promised_price(cdr: Cdr, plan: Plan, fees_before: Decimal) -> Decimal | None:
    """The session's estimate: its own kWh and duration priced (incl. VAT, our fees included) at the tariff in
    force at its connector when it started — the price promise of ``rating.estimates``, made exact for what was
    really consumed. Stored with the charge so the invoice run can hold a session billed far from it
    (``billing.invoicing.outliers``). Only needed when the CPO part did *not* come from the frozen tariff (then the
    estimate is the billed price by construction); None when we know no tariff for the connector."""
    tariff = _published_tariff_at_start(cdr)
    if tariff is None:
        return None
    try:
        breakdown = price_session(compile_tariff(parse_tariff(tariff.data)), parse_cdr(cdr.data), _time_zone(cdr))
        return driver_price(
            terms_of(plan),
            breakdown.total_excl_vat,
            cdr.total_energy,
            fees_before,
            alpha2(cdr.country),
            _vat_table(),
            currency=cdr.currency,
        ).incl_vat
    except PricingError:
        return None  # no estimate rather than no rating: the other outlier limits still apply


def billing_month(moment: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Start and end (UTC) of the calendar month containing ``moment`` in the billing time zone."""
    zone: ZoneInfo = billing_zone()
    local = moment.astimezone(zone)
    start = dt.datetime(local.year, local.month, 1, tzinfo=zone)
    end = dt.datetime(local.year + (local.month == 12), local.month % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _session_fees_before(account_id: int, cdr: Cdr) -> Decimal:
    """Session fees already charged this billing month, sessions in start order (the cap applies to the month)."""
    start, _end = billing_month(cdr.start_date_time)
    total = db.session.execute(
        select(func.coalesce(func.sum(SessionCharge.session_fee), 0))
        .join(Cdr, Cdr.id == SessionCharge.cdr_id)
        .where(
            SessionCharge.account_id == account_id,
            Cdr.start_date_time >= start,
            Cdr.start_date_time < cdr.start_date_time,
        )
    ).scalar_one()
    return max(Decimal(total), ZERO)


def _vat_table() -> dict[str, Decimal]:
    return {country: Decimal(str(rate)) for country, rate in current_app.config["VAT_RATES"].items()}


def rate_cdr(cdr: Cdr) -> SessionCharge:
    """Price one CDR for the driver and record the charge (idempotent: a CDR is rated once)."""
    existing = db.session.scalar(select(SessionCharge).where(SessionCharge.cdr_id == cdr.id))
    if existing is not None:
        return existing
    if cdr.account_id is None:
        raise RatingError(f"CDR {cdr.ocpi_id} has no account (unknown token)", NO_ACCOUNT)
    if cdr.credit:
        return _rate_credit(cdr)
    plan = plan_at(cdr.account_id, cdr.start_date_time)
    if plan is None:
        raise RatingError(f"account {cdr.account_id} had no plan at {cdr.start_date_time.isoformat()}", NO_PLAN)
    try:
        cost = cpo_cost(cdr)
        fees_before = _session_fees_before(cdr.account_id, cdr)
        price = driver_price(
            terms_of(plan),
            cost.excl_vat,
            cdr.total_energy,
            fees_before,
            alpha2(cdr.country),
            _vat_table(),
            currency=cdr.currency,
        )
    except PricingError as error:
        raise RatingError(f"CDR {cdr.ocpi_id}: {error}") from error
    # The same as estimate_of(), without asking again for what is at hand.
    estimate = price.incl_vat if cost.source == "frozen_tariff" else _promised_price(cdr, plan, fees_before)
    charge = SessionCharge(
        cdr_id=cdr.id,
        account_id=cdr.account_id,
        plan_id=plan.id,
        tariff_version_id=cost.tariff_version_id,
        tariff_source=cost.source,
        country=alpha2(cdr.country),
        currency=price.currency,
        kwh=cdr.total_energy,
        cpo_cost_excl_vat=price.cpo_cost,
        cpo_cost_incl_vat=cost.incl_vat,
        markup_percent_amount=price.percent_markup,
        markup_per_kwh_amount=price.kwh_markup,
        session_fee=price.session_fee,
        driver_excl_vat=price.excl_vat,
        vat_rate=price.vat_rate,
        vat_amount=price.vat,
        driver_incl_vat=price.incl_vat,
        margin=price.margin,
        estimate_incl_vat=estimate,
        breakdown={"cpo": cost.breakdown, "plan": {"code": plan.code, "version": plan.version}},
        pricing_notes=[note.to_json_dict() for note in cost.notes] or None,
    )
    db.session.add(charge)
    db.session.flush()
    if cost.source != "cdr_total_cost":
        reconcile(cdr, cost)
    return charge


def estimate_of(charge: SessionCharge, cdr: Cdr) -> Decimal | None:
    """The estimate ``rate_cdr`` stores for a charge (see :func:`_promised_price`)."""
    if charge.tariff_source == "frozen_tariff":
        return charge.driver_incl_vat
    plan = db.session.get(Plan, charge.plan_id)
    if plan is None or charge.account_id is None:
        return None
    return _promised_price(cdr, plan, _session_fees_before(charge.account_id, cdr))


@dataclass
class BackfillBatch:
    filled: int
    unknown: int  # no tariff known for the connector: stays without estimate
    last_charge_id: int | None  # where the next batch starts; None when there was nothing left


def backfill_estimates(since: dt.datetime, after_charge_id: int = 0, batch_size: int = 1000) -> BackfillBatch:
    """Store the estimate of up to ``batch_size`` charges rated before estimates were kept (migration
    c41e7d2b9a10), for sessions started at or after ``since`` (the months not invoiced yet are what the outlier
    guard still reads), in charge id order after ``after_charge_id``. Flushes; the caller commits each batch,
    so a long backfill keeps what it did. Credit charges have no estimate."""
    rows = db.session.execute(
        select(SessionCharge, Cdr)
        .join(Cdr, Cdr.id == SessionCharge.cdr_id)
        .where(
            SessionCharge.estimate_incl_vat.is_(None),
            Cdr.credit.is_(False),
            Cdr.start_date_time >= since,
            SessionCharge.id > after_charge_id,
        )
        .order_by(SessionCharge.id)
        .limit(batch_size)
    ).all()
    filled = unknown = 0
    for charge, cdr in rows:
        estimate = estimate_of(charge, cdr)
        if estimate is None:
            unknown += 1
            continue
        charge.estimate_incl_vat = estimate
        filled += 1
    db.session.flush()
    return BackfillBatch(filled, unknown, rows[-1][0].id if rows else None)


def _rate_credit(cdr: Cdr) -> SessionCharge:
    """A credit CDR reverses exactly what we charged for the original (same terms, negative amounts)."""
    original = (
        db.session.scalar(select(SessionCharge).where(SessionCharge.cdr_id == cdr.original_cdr_id))
        if cdr.original_cdr_id
        else None
    )
    if original is None:
        raise RatingError(f"credit CDR {cdr.ocpi_id}: the original CDR is unknown or not rated", CREDIT_BEFORE_ORIGINAL)
    charge = SessionCharge(
        cdr_id=cdr.id,
        account_id=original.account_id,
        plan_id=original.plan_id,
        tariff_version_id=original.tariff_version_id,
        tariff_source=original.tariff_source,
        country=original.country,
        currency=original.currency,
        kwh=-original.kwh,
        cpo_cost_excl_vat=-original.cpo_cost_excl_vat,
        cpo_cost_incl_vat=-original.cpo_cost_incl_vat if original.cpo_cost_incl_vat is not None else None,
        markup_percent_amount=-original.markup_percent_amount,
        markup_per_kwh_amount=-original.markup_per_kwh_amount,
        session_fee=-original.session_fee,
        driver_excl_vat=-original.driver_excl_vat,
        vat_rate=original.vat_rate,
        vat_amount=-original.vat_amount,
        driver_incl_vat=-original.driver_incl_vat,
        margin=-original.margin,
        breakdown={"credit_of_cdr_id": original.cdr_id},
    )
    db.session.add(charge)
    db.session.flush()
    return charge


def reconcile(cdr: Cdr, cost: CpoCost) -> ReconciliationFinding | None:
    """Compare the CPO's ``total_cost`` (excl. VAT) with our own calculation; record a finding over tolerance."""
    tolerance = Decimal(str(current_app.config["RECONCILIATION_TOLERANCE"]))
    difference = cdr.total_cost_excl_vat - cost.excl_vat
    if abs(difference) <= tolerance:
        return None
    local_start = cdr.start_date_time.astimezone(billing_zone())
    finding = ReconciliationFinding(
        cdr_id=cdr.id,
        country_code=cdr.country_code,
        party_id=cdr.party_id,
        month=f"{local_start.year:04d}-{local_start.month:02d}",
        currency=cdr.currency,
        cpo_total_excl_vat=cdr.total_cost_excl_vat,
        our_total_excl_vat=cost.excl_vat,
        difference=difference,
        cpo_breakdown=_cpo_breakdown(cdr.data),
        our_breakdown=cost.breakdown,
    )
    db.session.add(finding)
    db.session.flush()
    return finding


def _cpo_breakdown(data: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "total_cost",
        "total_fixed_cost",
        "total_energy",
        "total_energy_cost",
        "total_time",
        "total_time_cost",
        "total_parking_time",
        "total_parking_cost",
        "total_reservation_cost",
    )
    return {key: _jsonable(data[key]) for key in keys if key in data}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value
