"""Composing an account's invoice for a month: subscription lines, one line per session, credits; VAT per rate.

Rounding (DESIGN.md §5): every line is rounded half-up to cents once (excl. VAT); VAT is computed per rate on
the sum of that rate's lines and rounded once; totals are sums of rounded figures.

VAT: a session carries the VAT of the country where the charging took place (decided when it was rated). The
subscription fee carries the seller's country rate; for a business buyer with a VAT number in another EU
country it is reverse-charged (0 %, category AE) — the buyer accounts for the VAT.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.accounts.models import Account
from app.billing.models import HoldStatus, InvoiceLine, LineKind, SessionHold
from app.billing.outliers import limits, outlier_reasons
from app.extensions import db
from app.money import to_minor_units
from app.plans.services import billing_zone, prorated_monthly_fees
from app.rating.models import SessionCharge
from app.roaming.models import Cdr, Location

ZERO = Decimal(0)


@dataclass
class ComposedLine:
    kind: LineKind
    description: str
    quantity: Decimal
    unit: str
    amount_minor: int
    vat_rate: Decimal
    cpo_cost_minor: int = 0
    fees_minor: int = 0
    vat_category: str = "S"
    session_charge_id: int | None = None
    session: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Composition:
    account: Account
    period: str
    currency: str
    lines: list[ComposedLine]
    held: list[int]  # session charge ids held by the outlier guard in this composition

    @property
    def vat(self) -> list[dict[str, Any]]:
        return vat_summary(self.lines)

    @property
    def subtotal_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)

    @property
    def vat_minor(self) -> int:
        return sum(entry["vat"] for entry in self.vat)

    @property
    def total_minor(self) -> int:
        return self.subtotal_minor + self.vat_minor


def period_bounds(period: str) -> tuple[dt.datetime, dt.datetime]:
    """UTC start and end of a ``YYYY-MM`` month in the billing time zone."""
    year, month = (int(part) for part in period.split("-"))
    zone = billing_zone()
    start = dt.datetime(year, month, 1, tzinfo=zone)
    end = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def vat_summary(lines: list[ComposedLine]) -> list[dict[str, Any]]:
    bases: dict[tuple[Decimal, str], int] = {}
    for line in lines:
        key = (line.vat_rate, line.vat_category)
        bases[key] = bases.get(key, 0) + line.amount_minor
    summary = []
    for (rate, category), base in sorted(bases.items(), key=lambda item: (-item[0][0], item[0][1])):
        vat = int((Decimal(base) * rate / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        summary.append({"rate": _rate_text(rate), "category": category, "base": base, "vat": vat})
    return summary


def _rate_text(rate: Decimal) -> str:
    """``Decimal('21.000')`` → ``'21'``, ``Decimal('5.5')`` → ``'5.5'``."""
    return format(rate.normalize(), "f")


def _seller_country() -> str:
    return current_app.config["SELLER"]["country"]


def _subscription_vat(account: Account) -> tuple[Decimal, str]:
    rates = current_app.config["VAT_RATES"]
    seller = _seller_country()
    if account.vat_number and account.country != seller:
        return ZERO, "AE"
    return Decimal(str(rates.get(seller, "21"))), "S"


def subscription_lines(account: Account, period: str) -> list[ComposedLine]:
    year, month = (int(part) for part in period.split("-"))
    rate, category = _subscription_vat(account)
    lines = []
    for fee in prorated_monthly_fees(account.id, year, month):
        name = fee.plan.name_in(account.language)
        days = calendar.monthrange(year, month)[1]
        description = name if fee.days == days else f"{name}, {fee.days}/{days}"
        amount = to_minor_units(fee.amount, fee.plan.currency)
        lines.append(ComposedLine(
            kind=LineKind.SUBSCRIPTION, description=description, quantity=Decimal(1), unit="month",
            amount_minor=amount, fees_minor=amount, vat_rate=rate, vat_category=category,
            details={"plan": fee.plan.code, "version": fee.plan.version, "days": fee.days, "days_in_month": days},
        ))
    return lines


def billable_charges(account_id: int, period_end: dt.datetime) -> list[tuple[SessionCharge, Cdr, str | None,
                                                                             str | None, SessionHold | None]]:
    """Rated sessions of the account that started before the end of the period and are on no invoice yet,
    with their location name/city and hold (late CDRs of earlier months included: they go on this invoice)."""
    rows = db.session.execute(
        select(SessionCharge, Cdr, Location.name, Location.city, SessionHold)
        .join(Cdr, Cdr.id == SessionCharge.cdr_id)
        .outerjoin(Location, (Location.country_code == Cdr.country_code) & (Location.party_id == Cdr.party_id)
                   & (Location.ocpi_id == Cdr.location_ocpi_id))
        .outerjoin(InvoiceLine, InvoiceLine.session_charge_id == SessionCharge.id)
        .outerjoin(SessionHold, SessionHold.session_charge_id == SessionCharge.id)
        .where(SessionCharge.account_id == account_id, Cdr.start_date_time < period_end,
               InvoiceLine.id.is_(None))
        .order_by(Cdr.start_date_time, Cdr.id)
    )
    return list(rows)


def _session_line(charge: SessionCharge, cdr: Cdr, name: str | None, city: str | None,
                  adjusted_incl_vat: Decimal | None = None) -> ComposedLine:
    location = cdr.data.get("cdr_location") or {}
    name = name or location.get("name") or location.get("address") or cdr.location_ocpi_id
    city = city or location.get("city") or ""
    cpo = to_minor_units(charge.cpo_cost_excl_vat, charge.currency)
    amount = to_minor_units(charge.driver_excl_vat, charge.currency)
    details: dict[str, Any] = {}
    if adjusted_incl_vat is not None:
        # Finance adjusted the price (incl. VAT) of a held session: keep the VAT rate, derive the base.
        amount = to_minor_units(adjusted_incl_vat * 100 / (100 + charge.vat_rate), charge.currency)
        cpo = min(cpo, amount)
        details["adjusted"] = True
    minutes = int((cdr.end_date_time - cdr.start_date_time).total_seconds() // 60)
    return ComposedLine(
        kind=LineKind.CREDIT if charge.driver_excl_vat < 0 else LineKind.SESSION,
        description=f"{name}, {city}".strip(", "), quantity=charge.kwh, unit="kWh", amount_minor=amount,
        cpo_cost_minor=cpo, fees_minor=amount - cpo, vat_rate=charge.vat_rate, session_charge_id=charge.id,
        session={"charge_id": charge.id, "cdr_id": cdr.ocpi_id, "start": cdr.start_date_time.isoformat(),
                 "end": cdr.end_date_time.isoformat(), "duration_minutes": minutes, "kwh": str(charge.kwh),
                 "location_name": name, "city": city, "evse_id": location.get("evse_id") or cdr.evse_uid,
                 "tariff_source": charge.tariff_source},
        details={**details, "session_fee": str(charge.session_fee)},
    )


def compose(account: Account, period: str, *, hold_outliers: bool = True) -> Composition:
    """The invoice content for ``account`` and ``period`` (not stored). New outliers get a hold row."""
    _start, end = period_bounds(period)
    lines = subscription_lines(account, period)
    held: list[int] = []
    bounds = limits()
    for charge, cdr, name, city, hold in billable_charges(account.id, end):
        if hold is not None and hold.status in (HoldStatus.HELD, HoldStatus.WRITTEN_OFF):
            if hold.status == HoldStatus.HELD:
                held.append(charge.id)
            continue
        if hold is None and hold_outliers:
            reasons = outlier_reasons(charge, cdr, bounds)
            if reasons:
                db.session.add(SessionHold(session_charge_id=charge.id, reasons=reasons))
                held.append(charge.id)
                continue
        adjusted = hold.adjusted_incl_vat if hold is not None and hold.status == HoldStatus.ADJUSTED else None
        lines.append(_session_line(charge, cdr, name, city, adjusted))
    currency = "EUR"
    db.session.flush()
    return Composition(account=account, period=period, currency=currency, lines=lines, held=held)
