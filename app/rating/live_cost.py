"""The session under way with its cost so far: what a driver sees while charging (portal dashboard, app API).

Every figure is *as of the CPO's last update* (``ChargingSession.last_updated``), not "now": the kWh, the
charging periods and the CPO's own ``total_cost`` describe that moment. So the figures change only when a PUT or
PATCH arrives (``roaming.receive.sessions``), which makes :attr:`LiveCost.version` a cheap, stable ETag; the
clock of a page may tick on from ``started_at`` by itself.

The cost so far is priced the way :func:`app.rating.services.rate_cdr` will price the session's CDR, so that the
figure the driver watches is the figure on the invoice:

- the CPO part from the tariff frozen when the session started (``frozen_tariff_id``, the price promise), by the
  same engine (``pricing.price_session``), over the charging periods the CPO sent so far, the last one running to
  the update; without a frozen tariff, from the CPO's own ``total_cost`` (rating's last source too);
- our fees under the plan in force at the start (``plan_at``) and VAT of the location's country
  (``pricing.driver_price``), with the session fee reduced by the month's cap exactly as rating does (the fees
  of sessions started earlier that billing month).

The charging periods are used when they account for the session's kWh (:data:`PERIOD_KWH_TOLERANCE`): a CPO
that sends none, sends them late, or in Wh (the official examples do) would otherwise show a cost far from the
kWh beside it. The session's totals are then priced instead, as one period at constant power from the start
(``basis`` says which). When the CDR comes, its own periods decide (the session page tells the difference).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from app.charging.models import Cdr, ChargingSession
from app.charging.services import LIVE_SESSION_MAX_AGE, LIVE_STATUSES, LocationKey
from app.countries import alpha2
from app.db import utcnow
from app.extensions import db
from app.money import quantize
from app.ocpi_ids import ci_key
from app.ocpi_values import NotANumberError, exact_decimal
from app.plans.models import Plan
from app.plans.services import plan_at, terms_of
from app.pricing import (
    CdrInput,
    ChargingPeriod,
    DriverPrice,
    PricingError,
    compile_tariff,
    driver_price,
    parse_cdr,
    parse_tariff,
    price_session,
)
from app.rating.countries import DEFAULT_ZONES
from app.rating.models import SessionCharge
from app.rating.services import billing_month
from app.roaming.models import Location, TariffVersion
from app.timestamps import ocpi_timestamp

ZERO = Decimal(0)
HOUR = Decimal(3600)
# The charging periods price the cost so far when their ENERGY adds up to the session's kWh within this share
# (or 0.05 kWh, for the first minutes): CPOs round the two differently, but not by more.
PERIOD_KWH_TOLERANCE = Decimal("0.01")
PERIOD_KWH_SLACK = Decimal("0.05")
POWER_PLACES = 2  # average power in kW, to 10 W

# Where the CPO part of the cost so far comes from (as rating's ``tariff_source``).
FROZEN_TARIFF = "frozen_tariff"
CPO_TOTAL_COST = "cpo_total_cost"
# What was priced: the CPO's charging periods, or the session's kWh and duration as one period.
CHARGING_PERIODS = "charging_periods"
SESSION_TOTALS = "session_totals"
# Why there is no cost so far (stable codes: the app and the portal say them in words).
NO_PLAN = "no_plan"  # the account had no plan at the start: rating could not price it either
NO_TARIFF = "no_tariff"  # no tariff frozen and no total_cost from the CPO yet
NOT_PRICEABLE = "not_priceable"  # the engine refused what we hold (currency, a country without VAT rate, ...)


@dataclass(frozen=True)
class CostSoFar:
    """The driver's price of the session so far (4 decimals, as rating keeps it; pages round to cents)."""

    source: str  # FROZEN_TARIFF or CPO_TOTAL_COST
    basis: str  # CHARGING_PERIODS, SESSION_TOTALS, or CPO_TOTAL_COST
    price: DriverPrice

    @property
    def currency(self) -> str:
        return self.price.currency


@dataclass(frozen=True)
class CpoTotal:
    """The ``total_cost`` the CPO put in the session, as it sent it (its own price, not what the driver pays)."""

    excl_vat: Decimal
    incl_vat: Decimal | None
    currency: str


@dataclass(frozen=True)
class LiveCost:
    """One session under way, as of the CPO's last update."""

    session_id: int
    ocpi_id: str
    partner_id: int | None  # who delivered the session: where a stop request goes
    status: str
    location: LocationKey
    evse_uid: str
    connector_id: str
    card_id: int | None
    started_at: dt.datetime
    as_of: dt.datetime  # the CPO's last update: every figure below describes this moment
    kwh: Decimal
    duration: dt.timedelta  # from the start to ``as_of``
    average_power_kw: Decimal | None  # kWh over the duration; None before a whole second passed
    current_power_kw: Decimal | None  # the POWER of the last charging period, when the CPO sends it
    state_of_charge: Decimal | None  # percent, when the CPO sends it
    cost: CostSoFar | None
    cost_missing: str | None  # NO_PLAN, NO_TARIFF or NOT_PRICEABLE when ``cost`` is None
    cpo_total: CpoTotal | None
    version: str  # changes whenever anything above changes (ETag material)


def live_costs_of(account_id: int, now: dt.datetime | None = None) -> list[LiveCost]:
    """The account's sessions under way (the statuses and age limit of ``charging.services.live_sessions_of``),
    newest first, each with its cost so far."""
    now = now or utcnow()
    sessions = db.session.scalars(
        select(ChargingSession)
        .where(
            ChargingSession.account_id == account_id,
            ChargingSession.status.in_(LIVE_STATUSES),
            ChargingSession.start_date_time > now - LIVE_SESSION_MAX_AGE,
        )
        .order_by(ChargingSession.start_date_time.desc(), ChargingSession.id.desc())
    ).all()
    return [live_cost(session) for session in sessions]


def live_cost(session: ChargingSession) -> LiveCost:
    """The session's figures and cost so far, as of its last update (any status: a completed one shows its last)."""
    as_of = _as_of(session)
    duration = max(as_of - session.start_date_time, dt.timedelta(0))
    location = _location(session)
    cost, missing = _cost_so_far(session, as_of, location)
    last_period = _last_period(session.data)
    found = LiveCost(
        session_id=session.id,
        ocpi_id=session.ocpi_id,
        partner_id=session.partner_id,
        status=session.status,
        location=LocationKey(session.country_code, session.party_id, session.location_ocpi_id),
        evse_uid=session.evse_uid,
        connector_id=session.connector_id,
        card_id=session.card_id,
        started_at=session.start_date_time,
        as_of=as_of,
        kwh=session.kwh,
        duration=duration,
        average_power_kw=_average_power(session.kwh, duration),
        current_power_kw=_dimension(last_period, "POWER"),
        state_of_charge=_dimension(last_period, "STATE_OF_CHARGE"),
        cost=cost,
        cost_missing=missing,
        cpo_total=_cpo_total(session),
        version="",
    )
    return _with_version(found)


def versions_tag(costs: Iterable[LiveCost]) -> str:
    """One tag for a list of live sessions (the ETag of the app's ``GET /sessions/active``)."""
    digest = hashlib.sha256()
    for cost in costs:
        digest.update(cost.version.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:32]


# --- figures ---------------------------------------------------------------------------------------------------


def _as_of(session: ChargingSession) -> dt.datetime:
    """The moment the figures describe: the end once the CPO sent one, else its last update (never before the
    start: a CPO's clock may lag its own start time)."""
    moment = session.end_date_time or session.last_updated
    return max(moment, session.start_date_time)


def _average_power(kwh: Decimal, duration: dt.timedelta) -> Decimal | None:
    seconds = int(duration.total_seconds())
    if seconds <= 0:
        return None
    return quantize(max(kwh, ZERO) * HOUR / Decimal(seconds), POWER_PLACES)


def _last_period(data: dict[str, Any]) -> dict[str, Any] | None:
    periods = data.get("charging_periods")
    if isinstance(periods, list) and periods and isinstance(periods[-1], dict):
        return periods[-1]
    return None


def _dimension(period: dict[str, Any] | None, kind: str) -> Decimal | None:
    """A measured dimension of a charging period (``POWER``, ``STATE_OF_CHARGE``), None when not sent."""
    for dimension in (period or {}).get("dimensions") or []:
        if isinstance(dimension, dict) and dimension.get("type") == kind:
            try:
                return exact_decimal(dimension.get("volume"))
            except NotANumberError:
                return None
    return None


def _cpo_total(session: ChargingSession) -> CpoTotal | None:
    total = session.data.get("total_cost")
    if not isinstance(total, dict):
        return None
    try:
        excl = exact_decimal(total.get("excl_vat"))
        incl = exact_decimal(total["incl_vat"]) if total.get("incl_vat") is not None else None
    except NotANumberError:
        return None
    return CpoTotal(excl, incl, session.currency)


# --- the cost so far ---------------------------------------------------------------------------------------------


def _location(session: ChargingSession) -> Location | None:
    return db.session.scalar(
        select(Location).where(
            Location.country_code == session.country_code,
            Location.party_id == session.party_id,
            Location.ocpi_id_key == ci_key(session.location_ocpi_id),
        )
    )


def _country_and_zone(session: ChargingSession, location: Location | None) -> tuple[str, str]:
    """Where the charging takes place (VAT) and its time zone (tariff restrictions), as rating reads them from
    the CDR's location. A location we do not hold: the CPO's country, as the CDR will most likely say."""
    country = alpha2(location.country) if location is not None else session.country_code
    zone = (location.time_zone if location is not None else None) or DEFAULT_ZONES.get(country, "UTC")
    return country, zone


def _cost_so_far(
    session: ChargingSession, as_of: dt.datetime, location: Location | None
) -> tuple[CostSoFar | None, str | None]:
    if session.account_id is None:
        return None, NO_PLAN
    plan = plan_at(session.account_id, session.start_date_time)
    if plan is None:
        return None, NO_PLAN
    country, zone = _country_and_zone(session, location)
    tariff = db.session.get(TariffVersion, session.frozen_tariff_id) if session.frozen_tariff_id else None
    try:
        if tariff is not None:
            compiled = compile_tariff(parse_tariff(tariff.data))
            priced, basis = _priced_input(session, as_of)
            cpo_cost = price_session(compiled, priced, zone).total_excl_vat
            source = FROZEN_TARIFF
        else:
            total = _cpo_total(session)
            if total is None:
                return None, NO_TARIFF
            cpo_cost, source, basis = total.excl_vat, CPO_TOTAL_COST, CPO_TOTAL_COST
        price = _driver_price(session, plan, cpo_cost, country)
    except PricingError:
        return None, NOT_PRICEABLE
    return CostSoFar(source, basis, price), None


def _driver_price(session: ChargingSession, plan: Plan, cpo_cost: Decimal, country: str) -> DriverPrice:
    vat_table = {code: Decimal(str(rate)) for code, rate in current_app.config["VAT_RATES"].items()}
    return driver_price(
        terms_of(plan),
        cpo_cost,
        session.kwh,
        _session_fees_before(session),
        country,
        vat_table,
        currency=session.currency,
    )


def _session_fees_before(session: ChargingSession) -> Decimal:
    """Session fees already charged this billing month for sessions started before this one: the rule
    ``rating.services`` applies when the CDR is rated (the monthly cap counts them in start order)."""
    start, _end = billing_month(session.start_date_time)
    total = db.session.execute(
        select(func.coalesce(func.sum(SessionCharge.session_fee), 0))
        .join(Cdr, Cdr.id == SessionCharge.cdr_id)
        .where(
            SessionCharge.account_id == session.account_id,
            Cdr.start_date_time >= start,
            Cdr.start_date_time < session.start_date_time,
        )
    ).scalar_one()
    return max(Decimal(total), ZERO)


def _priced_input(session: ChargingSession, as_of: dt.datetime) -> tuple[CdrInput, str]:
    """What the engine prices: the CPO's charging periods up to ``as_of`` when they account for the session's
    kWh, else the session's totals as one period (see the module docstring)."""
    periods = session.data.get("charging_periods")
    if isinstance(periods, list) and periods:
        try:
            sent = parse_cdr(
                {
                    "start_date_time": ocpi_timestamp(session.start_date_time),
                    "end_date_time": ocpi_timestamp(as_of),
                    "currency": session.currency,
                    "charging_periods": periods,
                }
            )
        except PricingError:
            sent = None
        if sent is not None and _accounts_for(sent.periods, session.kwh):
            return sent, CHARGING_PERIODS
    return _totals_as_one_period(session, as_of), SESSION_TOTALS


def _accounts_for(periods: tuple[ChargingPeriod, ...], kwh: Decimal) -> bool:
    energy = sum((period.energy for period in periods), ZERO)
    return abs(energy - kwh) <= max(PERIOD_KWH_SLACK, abs(kwh) * PERIOD_KWH_TOLERANCE)


def _totals_as_one_period(session: ChargingSession, as_of: dt.datetime) -> CdrInput:
    """The kWh so far charged at constant power since the start: the way ``pricing.estimate`` builds its
    example session. A session not started yet (PENDING) has charged no time."""
    seconds = Decimal(max(int((as_of - session.start_date_time).total_seconds()), 0))
    hours = seconds / HOUR if session.status == "ACTIVE" else ZERO
    period = ChargingPeriod(start=session.start_date_time, energy=max(session.kwh, ZERO), time=hours)
    return CdrInput(start=session.start_date_time, end=as_of, currency=session.currency, periods=(period,))


def _with_version(found: LiveCost) -> LiveCost:
    """``found`` with its version: a digest of every figure a page or the app shows."""
    cost = found.cost
    material = {
        "session": found.session_id,
        "status": found.status,
        "as_of": found.as_of.isoformat(),
        "kwh": str(found.kwh),
        "power": str(found.current_power_kw),
        "soc": str(found.state_of_charge),
        "cost": None
        if cost is None
        else [cost.source, cost.basis, str(cost.price.excl_vat), str(cost.price.incl_vat), str(cost.price.vat_rate)],
        "missing": found.cost_missing,
        "cpo": None if found.cpo_total is None else [str(found.cpo_total.excl_vat), str(found.cpo_total.incl_vat)],
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:32]
    return replace(found, version=digest)
