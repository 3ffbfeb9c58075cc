"""Composing an account's invoice for a month: subscription lines, one line per session, credits; VAT per rate.

Rounding (DESIGN.md §5): every line is rounded half-up to cents once (excl. VAT); VAT is computed per rate on
the sum of that rate's lines and rounded once; totals are sums of rounded figures.

VAT: a session carries the VAT of the country where the charging took place (decided when it was rated). The
subscription fee carries the seller's country rate; for a business buyer with a VAT number in another EU
country it is reverse-charged (0 %, category AE) — the buyer accounts for the VAT, in their country. Every line
names the country whose VAT applies (``vat_country``), and the VAT is summed per rate, category *and* country:
Belgian and Dutch VAT at 21 % are two taxes, printed (and rounded) apart.

A session finance adjusted (a held outlier, ``runs.holds.adjust``) keeps what the CPO charged and our fees as
rated; the difference to finance's price is the line's ``correction_minor`` (negative when we lowered the price),
with a reason code for the driver (``CORRECTION_REVIEWED``), never finance's internal decision reason. So on every
line: CPO cost + fees + correction = amount, and the margin (amount - CPO cost) may be negative.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy import Select, Text, case, func, insert, select
from sqlalchemy.exc import DataError

from app.accounts.models import Account
from app.billing.invoicing.outliers import limits, outlier_reasons
from app.billing.invoicing.snapshot import CORRECTION_REVIEWED
from app.billing.models import HoldStatus, InvoiceLine, LineKind, SessionHold
from app.cards.models import Card, TokenType
from app.charging.models import Cdr
from app.db import utcnow
from app.extensions import db
from app.failures import failure_reason
from app.money import minor_unit_exponent, round_to_minor_units, round_to_whole, to_minor_units
from app.plans.services import ProratedFee, billing_zone, prorated_monthly_fees_many
from app.rating.models import SessionCharge
from app.roaming.models import Location

ZERO = Decimal(0)
# The largest amount (in minor units) an invoice, its lines and totals can hold: the amount columns are 32-bit
# integers on PostgreSQL (21,474,836.47 EUR). A composition beyond it fails for its account alone, on every
# database alike, instead of failing its whole batch when the row is written (or, on SQLite, going out).
MAX_INVOICE_MINOR = 2**31 - 1
# An invoice line's quantity (kWh) is Numeric(14, 4).
MAX_QUANTITY = Decimal(10) ** 10


class CompositionError(ValueError):
    """An account's month cannot be put on an invoice as it stands (figures out of range): finance looks."""


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
    session_fee: Decimal = ZERO  # our session fee in a session line (the invoice shows the month's total)
    plan_id: int | None = None  # the plan a session was rated under (the run preview's per-plan figures)
    # amount = cpo_cost + fees + correction: finance's correction of an adjusted session (negative: lowered).
    correction_minor: int = 0
    correction_reason: str | None = None  # a reason code for the customer (CORRECTION_REVIEWED), never free text
    vat_country: str = ""  # ISO alpha-2 of the country whose VAT applies (where the charging took place)


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
    """VAT per rate, category and country (the country whose VAT it is), each rounded once on its base."""
    bases: dict[tuple[Decimal, str, str], int] = {}
    for line in lines:
        key = (line.vat_rate, line.vat_category, line.vat_country)
        bases[key] = bases.get(key, 0) + line.amount_minor
    summary = []
    for (rate, category, country), base in sorted(bases.items(), key=lambda item: (-item[0][0], *item[0][1:])):
        vat = round_to_whole(Decimal(base) * rate / 100)
        summary.append({"rate": _rate_text(rate), "category": category, "country": country, "base": base, "vat": vat})
    return summary


def _rate_text(rate: Decimal) -> str:
    """``Decimal('21.000')`` → ``'21'``, ``Decimal('5.5')`` → ``'5.5'``."""
    return format(rate.normalize(), "f")


def _seller_country() -> str:
    country: str = current_app.config["SELLER"]["country"]
    return country


def subscription_vat(country: str, vat_number: str | None) -> tuple[Decimal, str]:
    """VAT rate and category of our subscription fee for a buyer: the seller's country rate, or reverse charge
    (0 %, "AE") for a business buyer with a VAT number in another EU country."""
    rates = current_app.config["VAT_RATES"]
    seller = _seller_country()
    if vat_number and country != seller:
        return ZERO, "AE"
    return Decimal(str(rates.get(seller, "21"))), "S"


def _subscription_vat(account: Account) -> tuple[Decimal, str]:
    return subscription_vat(account.country, account.vat_number)


def subscription_vat_country(account: Account, category: str) -> str:
    """Whose VAT the subscription fee carries: the seller's country's, or for a reverse charge the buyer's (the
    service is supplied where the business buyer is established, and they account for the VAT there)."""
    return account.country.upper() if category == "AE" else _seller_country().upper()


def subscription_lines(account: Account, period: str, fees: list[ProratedFee] | None = None) -> list[ComposedLine]:
    """The subscription lines of ``account`` for ``period``; ``fees`` when the caller loaded them for a batch."""
    year, month = (int(part) for part in period.split("-"))
    if fees is None:
        fees = prorated_monthly_fees_many([account.id], year, month).get(account.id, [])
    rate, category = _subscription_vat(account)
    vat_country = subscription_vat_country(account, category)
    days = calendar.monthrange(year, month)[1]
    lines = []
    for fee in fees:
        name = fee.plan.name_in(account.language)
        description = name if fee.days == days else f"{name}, {fee.days}/{days}"
        amount = to_minor_units(fee.amount, fee.plan.currency)
        lines.append(
            ComposedLine(
                kind=LineKind.SUBSCRIPTION,
                description=description,
                quantity=Decimal(1),
                unit="month",
                amount_minor=amount,
                fees_minor=amount,
                vat_rate=rate,
                vat_category=category,
                vat_country=vat_country,
                details={"plan": fee.plan.code, "version": fee.plan.version, "days": fee.days, "days_in_month": days},
            )
        )
    return lines


def _cdr_location(field: str) -> Any:
    return Cdr.data[("cdr_location", field)].as_string().label(f"cdr_location_{field}")


# PostgreSQL's JSON operators cannot read a document holding an escaped NUL (``\u0000``, possible in a CDR
# stored before intake refused control characters): "unsupported Unicode escape sequence", whichever field is
# asked for. Such a document's printed fields are read as missing (the line falls back to our Location row, then
# to the ids), so the CDR is billed like any other instead of failing its account on every retry.
_HOLDS_NUL = Cdr.data.cast(Text).contains("\\u0000", autoescape=True)


def _cdr_location_unless_nul(field: str) -> Any:
    return case((_HOLDS_NUL, None), else_=Cdr.data[("cdr_location", field)].as_string()).label(f"cdr_location_{field}")


def _cpo_cost_of(dimension: str) -> Any:
    """What the CPO charged for one dimension of the session, excl. VAT (a 4-decimal string of the rating's
    breakdown; None when the CPO part came from the CDR's total)."""
    return SessionCharge.breakdown[("cpo", dimension, "excl_vat")].as_string().label(dimension)


def _charge_columns(location_field: Callable[[str], Any]) -> tuple[Any, ...]:
    return (
        SessionCharge.id.label("charge_id"),
        SessionCharge.account_id,
        SessionCharge.kwh,
        SessionCharge.currency,
        SessionCharge.cpo_cost_excl_vat,
        SessionCharge.driver_excl_vat,
        SessionCharge.driver_incl_vat,
        SessionCharge.estimate_incl_vat,
        SessionCharge.vat_rate,
        SessionCharge.session_fee,
        SessionCharge.tariff_source,
        SessionCharge.plan_id,
        Cdr.ocpi_id.label("cdr_ocpi_id"),
        Cdr.start_date_time,
        Cdr.end_date_time,
        Cdr.total_time,
        Cdr.evse_uid,
        Cdr.location_ocpi_id,
        # Only the printed fields of the CDR's location, extracted in SQL: the rest of the CDR document (charging
        # periods, tariffs) is never parsed.
        location_field("name"),
        location_field("address"),
        location_field("city"),
        location_field("evse_id"),
        Location.name.label("location_name"),
        Location.city.label("location_city"),
        SessionHold.id.label("hold_id"),
        SessionHold.status.label("hold_status"),
        SessionHold.adjusted_incl_vat,
        SessionCharge.country.label("vat_country"),
        Card.visual_number.label("card_number"),
        Card.token_type.label("card_type"),
        _cpo_cost_of("total_time_cost"),
        _cpo_cost_of("total_parking_cost"),
    )


# The columns of a billable session, read as plain rows (no ORM objects: the run reads millions of them). The
# names match the attributes ``outliers.outlier_reasons`` reads from a SessionCharge and its Cdr.
_CHARGE_COLUMNS = _charge_columns(_cdr_location)
# The same columns, reading no field of a CDR document that holds a NUL (see ``_HOLDS_NUL``): the fallback of
# :func:`billable_charges` when PostgreSQL cannot read a document of the batch (looking for the NUL scans every
# document, so only a batch that needs it pays for that).
_CHARGE_COLUMNS_NUL_SAFE = _charge_columns(_cdr_location_unless_nul)


class BillableCharge(NamedTuple):
    """One row of :data:`_CHARGE_COLUMNS` (same names, same order): a plain tuple, cheap to read a million of."""

    charge_id: int
    account_id: int
    kwh: Decimal
    currency: str
    cpo_cost_excl_vat: Decimal
    driver_excl_vat: Decimal
    driver_incl_vat: Decimal
    estimate_incl_vat: Decimal | None
    vat_rate: Decimal
    session_fee: Decimal
    tariff_source: str
    plan_id: int | None
    cdr_ocpi_id: str
    start_date_time: dt.datetime
    end_date_time: dt.datetime
    total_time: Decimal
    evse_uid: str
    location_ocpi_id: str
    cdr_location_name: str | None
    cdr_location_address: str | None
    cdr_location_city: str | None
    cdr_location_evse_id: str | None
    location_name: str | None
    location_city: str | None
    hold_id: int | None
    hold_status: HoldStatus | None
    adjusted_incl_vat: Decimal | None
    vat_country: str
    card_number: str | None
    card_type: TokenType | None
    total_time_cost: str | None
    total_parking_cost: str | None


def billable_charges(account_ids: Iterable[int], period_end: dt.datetime) -> dict[int, list[BillableCharge]]:
    """Rated sessions of the accounts that started before the end of the period and are on no invoice yet,
    with their location name/city and hold, per account in start order (late CDRs of earlier months included:
    they go on this invoice). One query for the whole batch."""
    ids = list(account_ids)
    found: dict[int, list[BillableCharge]] = {account_id: [] for account_id in ids}
    if not ids:
        return found
    # "On no invoice yet" as a correlated LIMIT 1 probe of the unique index on the line's session: PostgreSQL
    # cannot turn it into a hash anti-join, which would scan every invoice line of the run (millions, growing
    # while the run goes) once per batch when the table statistics lag behind.
    invoiced = (
        select(InvoiceLine.id).where(InvoiceLine.session_charge_id == SessionCharge.id).limit(1).scalar_subquery()
    )

    def query(columns: tuple[Any, ...]) -> Select[Any]:
        return (
            select(*columns)
            .join(Cdr, Cdr.id == SessionCharge.cdr_id)
            .outerjoin(
                Location,
                (Location.country_code == Cdr.country_code)
                & (Location.party_id == Cdr.party_id)
                & (Location.ocpi_id_key == func.upper(Cdr.location_ocpi_id)),  # CiString, folded as ci_key
            )
            .outerjoin(SessionHold, SessionHold.session_charge_id == SessionCharge.id)
            .outerjoin(Card, Card.id == Cdr.card_id)
            .where(SessionCharge.account_id.in_(ids), Cdr.start_date_time < period_end, invoiced.is_(None))
            .order_by(SessionCharge.account_id, Cdr.start_date_time, Cdr.id)
        )

    try:
        with db.session.begin_nested():
            rows = db.session.execute(query(_CHARGE_COLUMNS)).all()
    except DataError:  # a CDR document PostgreSQL cannot read (see _HOLDS_NUL): read the batch without its fields
        rows = db.session.execute(query(_CHARGE_COLUMNS_NUL_SAFE)).all()
    make = BillableCharge._make
    for row in rows:
        charge = make(row)
        found[charge.account_id].append(charge)
    return found


def _minor(amount: Decimal, currency: str) -> int:
    """``to_minor_units`` for the amounts of rated sessions (already Decimal): the run rounds millions of them."""
    exponent = _EXPONENTS.get(currency)
    if exponent is None:
        exponent = _EXPONENTS[currency] = minor_unit_exponent(currency)
    return round_to_minor_units(amount, exponent)


_EXPONENTS: dict[str, int] = {}
# Enum members read as module constants: the composition loop runs a million times a month.
_SESSION, _CREDIT = LineKind.SESSION, LineKind.CREDIT
_HELD, _WRITTEN_OFF, _ADJUSTED = HoldStatus.HELD, HoldStatus.WRITTEN_OFF, HoldStatus.ADJUSTED


def _printable(text: str) -> str:
    """``text`` without control characters (a CDR stored before intake refused them may hold a NUL: PostgreSQL
    text cannot, a PDF should not)."""
    return text if text.isprintable() else "".join(char if char.isprintable() else " " for char in text).strip()


def _charges_time(cost: str | None) -> bool:
    """Whether a dimension's CPO cost (a decimal string of the rating's breakdown) charged anything."""
    return cost is not None and Decimal(cost) != 0


def _session_line(row: BillableCharge, adjusted_incl_vat: Decimal | None = None) -> ComposedLine:
    name = _printable(row.location_name or row.cdr_location_name or row.cdr_location_address or row.location_ocpi_id)
    city = _printable(row.location_city or row.cdr_location_city or "")
    evse_id = _printable(row.cdr_location_evse_id or row.evse_uid)
    currency = row.currency
    cpo = _minor(row.cpo_cost_excl_vat, currency)
    rated = amount = _minor(row.driver_excl_vat, currency)
    details: dict[str, Any] = {"session_fee": str(row.session_fee)}
    correction, reason = 0, None
    if adjusted_incl_vat is not None:
        # Finance adjusted the price (incl. VAT) of a held session: keep the VAT rate, derive the base. What the
        # CPO charged and our fees stay as rated; the difference is the line's own, visible correction.
        amount = to_minor_units(adjusted_incl_vat * 100 / (100 + row.vat_rate), currency)
        correction, reason = amount - rated, CORRECTION_REVIEWED
        details = {"adjusted": True, **details}
    if not (
        all(-MAX_INVOICE_MINOR <= figure <= MAX_INVOICE_MINOR for figure in (amount, cpo, rated, correction))
        and -MAX_QUANTITY < row.kwh < MAX_QUANTITY
    ):
        raise CompositionError(
            f"{row.kwh} kWh for {amount} minor units (CPO cost {cpo}) is more than an invoice line can hold"
        )
    start, end = row.start_date_time, row.end_date_time
    charge_id = row.charge_id
    card_type = row.card_type
    return ComposedLine(
        kind=_CREDIT if row.driver_excl_vat < 0 else _SESSION,
        description=f"{name}, {city}".strip(", "),
        quantity=row.kwh,
        unit="kWh",
        amount_minor=amount,
        cpo_cost_minor=cpo,
        fees_minor=rated - cpo,
        correction_minor=correction,
        correction_reason=reason if correction else None,
        vat_rate=row.vat_rate,
        vat_country=row.vat_country,
        session_charge_id=charge_id,
        session={
            "charge_id": charge_id,
            "cdr_id": row.cdr_ocpi_id,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "duration_minutes": int((end - start).total_seconds() // 60),
            "kwh": str(row.kwh),
            "location_name": name,
            "city": city,
            "evse_id": evse_id,
            "tariff_source": row.tariff_source,
            # The card the session was charged with: its printed number (an app token has none: "App").
            "card": _printable(row.card_number) if row.card_number else None,
            "card_type": card_type.value if card_type is not None else None,
            # Whether the CPO charged time (charging or parking): the invoice then shows a price per minute too.
            "time_charged": _charges_time(row.total_time_cost) or _charges_time(row.total_parking_cost),
        },
        details=details,
        session_fee=row.session_fee,
        plan_id=row.plan_id,
    )


def check_fits(composition: Composition) -> None:
    """Raise :class:`CompositionError` when the invoice's totals are more than an invoice can hold (each line was
    checked when it was made)."""
    if sum(abs(line.amount_minor) for line in composition.lines) * 2 <= MAX_INVOICE_MINOR:
        return  # with VAT below 100 %, nothing on it can come near the limit (the usual case: no VAT computed)
    for name, value in (
        ("subtotal", composition.subtotal_minor),
        ("VAT", composition.vat_minor),
        ("total", composition.total_minor),
    ):
        if not -MAX_INVOICE_MINOR <= value <= MAX_INVOICE_MINOR:
            raise CompositionError(f"the invoice {name} of {value} minor units is more than an invoice can hold")


def compose_many(
    accounts: Sequence[Account], period: str, *, hold_outliers: bool = True, failed: dict[int, str] | None = None
) -> list[Composition]:
    """The invoice content of each account for ``period`` (not stored), in the order given. New outliers get a
    hold row (in the caller's transaction).

    Everything a batch needs is read with a handful of set-based queries (plan history, billable sessions with
    their holds); composing is then pure Python. The invoice run calls this per chunk of accounts.

    An account whose month cannot be composed (a figure out of range, anything else that raises) raises, unless
    ``failed`` is given: then that account is left out of the result and ``failed`` gets its id → why (which
    session, what went wrong), so the other accounts of the batch go on."""
    _start, end = period_bounds(period)
    year, month = (int(part) for part in period.split("-"))
    ids = [account.id for account in accounts]
    fees = prorated_monthly_fees_many(ids, year, month)
    charges = billable_charges(ids, end)
    bounds = limits()
    new_holds: list[dict[str, Any]] = []
    compositions = []
    for account in accounts:
        row: BillableCharge | None = None
        try:
            lines = subscription_lines(account, period, fees.get(account.id, []))
            held: list[int] = []
            for row in charges[account.id]:
                status = row.hold_status
                if status is not None and status in (_HELD, _WRITTEN_OFF):
                    if status == _HELD:
                        held.append(row.charge_id)
                    continue
                if status is None and hold_outliers:
                    reasons = outlier_reasons(row, row, bounds)
                    if reasons:
                        new_holds.append(
                            {
                                "session_charge_id": row.charge_id,
                                "reasons": reasons,
                                "status": _HELD,
                                "created_at": utcnow(),
                            }
                        )
                        held.append(row.charge_id)
                        continue
                adjusted = row.adjusted_incl_vat if status == _ADJUSTED else None
                lines.append(_session_line(row, adjusted))
            row = None
            composed = Composition(account=account, period=period, currency="EUR", lines=lines, held=held)
            check_fits(composed)
        except Exception as error:
            if failed is None:
                raise
            where = f"session charge {row.charge_id} (CDR {_printable(row.cdr_ocpi_id)!r}): " if row else ""
            failed[account.id] = where + failure_reason(error)
            continue
        compositions.append(composed)
    if new_holds:
        db.session.execute(insert(SessionHold), new_holds)
    return compositions


def compose(account: Account, period: str, *, hold_outliers: bool = True) -> Composition:
    """The invoice content for ``account`` and ``period`` (not stored). New outliers get a hold row."""
    return compose_many([account], period, hold_outliers=hold_outliers)[0]
