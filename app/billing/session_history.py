"""A driver's rated charging sessions as their portal shows them: filtered by month and card, paged, as CSV, each
with the state billing gives it (invoiced, on the next invoice, under review, not charged).

The session's state and total depend on the rating (``SessionCharge``), the holds of the outlier guard and the
invoices, so they are billing's rules and stay here. A session finance adjusted keeps what the operator charged and
our fees as rated: the difference to finance's price is its own ``correction`` (excl. VAT, negative when lowered),
with a reason code the page prints in the driver's language, never finance's internal note. So operator price +
fees + correction = the total excl. VAT, as on the invoice; which CDRs the filters select and what a CDR says of its
place and duration are the charging records' own (``app.charging.services``).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask_babel import force_locale, gettext
from sqlalchemy import Select, and_, func, select

from app.billing.invoicing.composition import period_bounds
from app.billing.invoicing.invoices import BillingError
from app.billing.invoicing.snapshot import CORRECTION_REVIEWED
from app.billing.models import HoldStatus, Invoice, InvoiceLine, InvoiceStatus, SessionHold
from app.billing.runs.services import check_period
from app.cards import services as card_services
from app.charging.models import Cdr
from app.charging.services import cdr_filters, duration_minutes, place_in_cdr
from app.csv_export import csv_writer
from app.extensions import db
from app.i18n import N_
from app.money import round_to_cents
from app.plans.services import billing_zone
from app.rating.models import SessionCharge
from app.rating.notes import PricingNote, pricing_notes_of
from app.roaming.models import Location

PAGE_SIZE = 50
CSV_BATCH = 1000  # rows per streamed chunk and per fetch from the database


@dataclass(frozen=True)
class SessionFilters:
    month: str = ""  # "YYYY-MM", or empty for every month
    card: int | None = None  # one of the driver's cards, or None for all


def session_filters(month: str, card: str) -> SessionFilters:
    """The portal's filters checked: a month like 2026-10 and a card id, each optional. Raises ``BillingError``."""
    if month:
        check_period(month)
    if card and not card.isdigit():
        raise BillingError(f"card must be a card id, not {card!r}")
    return SessionFilters(month=month, card=int(card) if card else None)


@dataclass(frozen=True)
class SessionLine:
    """One session as the driver sees it; amounts excl. VAT except ``total``."""

    start: dt.datetime
    cdr_id: int  # the session's page: billing.session_detail
    card_id: int | None
    location: str
    city: str
    kwh: Decimal
    minutes: int
    cpo_price: Decimal
    fees: Decimal
    total: Decimal
    currency: str
    invoice: str | None
    state: str  # invoiced, to_invoice, under_review, not_charged
    pricing_notes: tuple[PricingNote, ...] = ()  # why the operator price is what it is (clamped periods)
    correction: Decimal = Decimal(0)  # excl. VAT: finance's correction of an adjusted session (negative: lowered)
    correction_reason: str | None = None  # a code (invoicing.snapshot.CORRECTION_REASONS), shown translated


@dataclass(frozen=True)
class SessionPage:
    sessions: list[SessionLine]
    page: int
    pages: int
    total: int


def _sessions_query(account_id: int, filters: SessionFilters) -> Select[*tuple[Any, ...]]:
    """The driver's rated sessions, newest first, with location, hold and the invoice they are on (if any)."""
    start, end = period_bounds(filters.month) if filters.month else (None, None)
    return (
        select(
            SessionCharge,
            Cdr,
            Location.name,
            Location.city,
            SessionHold.status,
            SessionHold.adjusted_incl_vat,
            Invoice.number,
        )
        .join(Cdr, Cdr.id == SessionCharge.cdr_id)
        .outerjoin(
            Location,
            and_(
                Location.country_code == Cdr.country_code,
                Location.party_id == Cdr.party_id,
                Location.ocpi_id_key == func.upper(Cdr.location_ocpi_id),  # CiString: the CPO may spell it otherwise
            ),
        )
        .outerjoin(SessionHold, SessionHold.session_charge_id == SessionCharge.id)
        .outerjoin(InvoiceLine, InvoiceLine.session_charge_id == SessionCharge.id)
        .outerjoin(Invoice, and_(Invoice.id == InvoiceLine.invoice_id, Invoice.status == InvoiceStatus.FINALIZED))
        .where(
            SessionCharge.account_id == account_id,
            *cdr_filters(started_from=start, started_before=end, card_id=filters.card),
        )
        .order_by(Cdr.start_date_time.desc(), Cdr.id.desc())
    )


def _line(row: Any) -> SessionLine:
    """A row of :func:`_sessions_query` with its state: a held session is under review until finance decides, a
    written-off one is not charged, an adjusted one costs what finance set."""
    charge, cdr, name, city, hold_status, adjusted, number = row
    place = place_in_cdr(cdr)
    total = charge.driver_incl_vat
    correction, reason = Decimal(0), None
    state = "invoiced" if number else "to_invoice"
    if hold_status == HoldStatus.HELD and not number:
        state = "under_review"
    elif hold_status == HoldStatus.WRITTEN_OFF:
        state, total = "not_charged", Decimal(0)
    elif hold_status == HoldStatus.ADJUSTED and adjusted is not None:
        total = adjusted
        # The same base the invoice line is billed at (finance's price without VAT, rounded to cents).
        adjusted_excl_vat = round_to_cents(adjusted * 100 / (100 + charge.vat_rate))
        correction = adjusted_excl_vat - round_to_cents(charge.driver_excl_vat)
        reason = CORRECTION_REVIEWED if correction else None
    return SessionLine(
        start=cdr.start_date_time,
        cdr_id=cdr.id,
        card_id=cdr.card_id,
        location=name or place.name,
        city=city or place.city,
        kwh=charge.kwh,
        minutes=duration_minutes(cdr),
        cpo_price=charge.cpo_cost_excl_vat,
        fees=charge.driver_excl_vat - charge.cpo_cost_excl_vat,
        total=total,
        currency=charge.currency,
        invoice=number,
        state=state,
        pricing_notes=pricing_notes_of(charge),
        correction=correction,
        correction_reason=reason,
    )


def session_page(account_id: int, filters: SessionFilters, page: int) -> SessionPage:
    """Page ``page`` (from 1) of the driver's sessions, ``PAGE_SIZE`` a page, with the count over all pages."""
    query = _sessions_query(account_id, filters)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = db.session.execute(query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    return SessionPage(
        sessions=[_line(row) for row in rows],
        page=page,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        total=total,
    )


# The export's columns: (msgid of the header, in the driver's language; the header of a time names the zone).
CSV_COLUMNS = (
    N_("Start (%(zone)s)"),
    N_("End (%(zone)s)"),
    N_("Location"),
    N_("City"),
    N_("Charge point (EVSE)"),
    N_("Charge card"),
    N_("kWh"),
    N_("Duration (minutes)"),
    N_("Currency"),
    N_("Operator price excl. VAT"),
    N_("Our fees excl. VAT"),
    N_("VAT rate (%%)"),
    N_("Total incl. VAT"),
    N_("Invoice"),
    N_("State"),
    N_("Correction excl. VAT"),
)
CSV_STATES = {
    "invoiced": N_("Invoiced"),
    "to_invoice": N_("On your next invoice"),
    "under_review": N_("Under review"),
    "not_charged": N_("Not charged"),
}
# Excel reads a CSV with the list separator and decimal mark of the computer's regional settings: in Dutch and
# French (Belgium, the Netherlands, France) that is ";" and ",", so a comma-separated file lands in one column and
# "6.50" is no number. We write each language's own convention ("sep=;" would also split the columns, but Excel
# then ignores the byte-order mark and garbles "Liège", and the amounts would still be text). The byte-order mark
# tells Excel the file is UTF-8; other programs skip it.
CSV_DIALECTS = {"nl": (";", ","), "fr": (";", ",")}
CSV_DEFAULT_DIALECT = (",", ".")
CSV_BOM = "\ufeff"
CSV_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # local time: a date and time Excel recognises in every language


def csv_dialect(language: str) -> tuple[str, str]:
    """(field separator, decimal mark) of the session export in ``language``."""
    return CSV_DIALECTS.get(language, CSV_DEFAULT_DIALECT)


def sessions_csv(account_id: int, filters: SessionFilters, language: str) -> Iterator[str]:
    """Every session the filters select as CSV text in ``language`` (headers, states, separator and decimal mark),
    times in the billing time zone, streamed in chunks of ``CSV_BATCH`` rows."""
    separator, decimal_mark = csv_dialect(language)
    zone = billing_zone()
    with force_locale(language):
        header = [gettext(column, zone=zone.key) for column in CSV_COLUMNS]
        states = {code: gettext(label) for code, label in CSV_STATES.items()}

    def number(value: Decimal) -> str:
        return format(value, "f").replace(".", decimal_mark)

    def money(value: Decimal) -> str:
        return number(round_to_cents(Decimal(value)))

    def local(moment: dt.datetime) -> str:
        return moment.astimezone(zone).strftime(CSV_TIME_FORMAT)

    cards = {card.id: card.visual_number or card.label or str(card.id) for card in card_services.cards_of(account_id)}
    buffer = io.StringIO()
    buffer.write(CSV_BOM)
    writer = csv_writer(buffer, delimiter=separator)
    writer.writerow(header)
    query = _sessions_query(account_id, filters).execution_options(yield_per=CSV_BATCH)
    for count, row in enumerate(db.session.execute(query), start=1):
        line = _line(row)
        charge, cdr = row[0], row[1]
        writer.writerow(
            [
                local(cdr.start_date_time),
                local(cdr.end_date_time),
                line.location,
                line.city,
                place_in_cdr(cdr).evse_id,
                cards.get(cdr.card_id, ""),
                number(Decimal(charge.kwh).normalize()),
                line.minutes,
                charge.currency,
                money(charge.cpo_cost_excl_vat),
                money(line.fees),
                number(Decimal(charge.vat_rate).normalize()),
                money(line.total),
                line.invoice or "",
                states[line.state],
                money(line.correction),
            ]
        )
        if count % CSV_BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
