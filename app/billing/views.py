"""Portal pages of a driver's billing: their invoices (PDF download) and their charging sessions (filters, CSV).

A driver reaches only their own invoices and sessions: anything else answers 404, as if it did not exist.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal

from flask import Blueprint, Response, abort, render_template, request, stream_with_context
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import Select, and_, func, select

from app.accounts.access import driver_required, owned_or_404
from app.billing.documents.downloads import PdfUnavailableError, invoice_pdf, invoice_ubl, offers_ubl
from app.billing.invoicing import invoices
from app.billing.invoicing.composition import period_bounds
from app.billing.models import HoldStatus, Invoice, InvoiceLine, InvoiceStatus, SessionHold
from app.cards import services as card_services
from app.charging.models import Cdr
from app.extensions import db
from app.rating.models import SessionCharge
from app.roaming.models import Location

bp = Blueprint("billing", __name__)

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
PAGE_SIZE = 50


@bp.get("/invoices")
@driver_required
def invoice_list():  # type: ignore[no-untyped-def]
    rows = invoices.invoices_of(current_user.account_id)
    return render_template("portal/billing/invoices.html", invoices=rows,
                           with_ubl={invoice.number for invoice in rows if offers_ubl(invoice)})


@bp.get("/invoices/<number>.pdf")
@driver_required
def invoice_pdf_download(number: str):  # type: ignore[no-untyped-def]
    invoice = owned_or_404(invoices.invoice_by_number(number))
    if invoice.status != InvoiceStatus.FINALIZED:
        abort(404)
    try:
        data = invoice_pdf(invoice)
    except PdfUnavailableError:
        db.session.rollback()
        body = render_template("errors/error.html", code=404, title=_("PDF not available yet"),
                               explanation=_("The PDF of this invoice is not ready yet. Please try again later."))
        return Response(body, status=404)
    db.session.commit()  # a PDF rendered on first download is stored (rendered once, then served as stored)
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{invoice.number}.pdf"'})


@bp.get("/invoices/<number>.ubl.xml")
@driver_required
def invoice_ubl_download(number: str):  # type: ignore[no-untyped-def]
    """The structured e-invoice (Peppol BIS 3.0 UBL) of a Belgian business customer, for their accounting."""
    invoice = owned_or_404(invoices.invoice_by_number(number))
    data = invoice_ubl(invoice)
    if data is None:
        abort(404)
    return Response(data, mimetype="application/xml",
                    headers={"Content-Disposition": f'attachment; filename="{invoice.number}.ubl.xml"'})


# --- sessions --------------------------------------------------------------------------------------------------

def _filters() -> dict[str, object]:
    month = request.args.get("month") or ""
    if month and not MONTH.match(month):
        abort(400)
    card = request.args.get("card") or ""
    if card and not card.isdigit():
        abort(400)
    return {"month": month, "card": int(card) if card else None}


def _sessions_query(account_id: int, month: str, card_id: int | None) -> Select:
    """The driver's rated sessions, newest first, with location, hold and the invoice they are on (if any)."""
    query = (
        select(SessionCharge, Cdr, Location.name, Location.city, SessionHold.status, SessionHold.adjusted_incl_vat,
               Invoice.number)
        .join(Cdr, Cdr.id == SessionCharge.cdr_id)
        .outerjoin(Location, and_(Location.country_code == Cdr.country_code, Location.party_id == Cdr.party_id,
                                  Location.ocpi_id == Cdr.location_ocpi_id))
        .outerjoin(SessionHold, SessionHold.session_charge_id == SessionCharge.id)
        .outerjoin(InvoiceLine, InvoiceLine.session_charge_id == SessionCharge.id)
        .outerjoin(Invoice, and_(Invoice.id == InvoiceLine.invoice_id, Invoice.status == InvoiceStatus.FINALIZED))
        .where(SessionCharge.account_id == account_id)
        .order_by(Cdr.start_date_time.desc(), Cdr.id.desc())
    )
    if month:
        start, end = period_bounds(month)
        query = query.where(Cdr.start_date_time >= start, Cdr.start_date_time < end)
    if card_id is not None:
        query = query.where(Cdr.card_id == card_id)
    return query


def _session_view(row) -> dict[str, object]:  # type: ignore[no-untyped-def]
    charge, cdr, name, city, hold_status, adjusted, number = row
    location = cdr.data.get("cdr_location") or {}
    total = charge.driver_incl_vat
    state = "invoiced" if number else "to_invoice"
    if hold_status == HoldStatus.HELD and not number:
        state = "under_review"
    elif hold_status == HoldStatus.WRITTEN_OFF:
        state, total = "not_charged", Decimal(0)
    elif hold_status == HoldStatus.ADJUSTED and adjusted is not None:
        total = adjusted
    return {
        "start": cdr.start_date_time, "card_id": cdr.card_id,
        "location": name or location.get("name") or location.get("address") or cdr.location_ocpi_id,
        "city": city or location.get("city") or "", "kwh": charge.kwh,
        "minutes": int((cdr.end_date_time - cdr.start_date_time).total_seconds() // 60),
        "cpo_price": charge.cpo_cost_excl_vat, "fees": charge.driver_excl_vat - charge.cpo_cost_excl_vat,
        "total": total, "currency": charge.currency, "invoice": number, "state": state,
    }


@bp.get("/sessions")
@driver_required
def session_history():  # type: ignore[no-untyped-def]
    filters = _filters()
    page = request.args.get("page", "1")
    page_number = max(int(page), 1) if page.isdigit() else 1
    query = _sessions_query(current_user.account_id, filters["month"], filters["card"])  # type: ignore[arg-type]
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = db.session.execute(query.limit(PAGE_SIZE).offset((page_number - 1) * PAGE_SIZE)).all()
    return render_template("portal/billing/sessions.html", sessions=[_session_view(row) for row in rows],
                           cards=card_services.cards_of(current_user.account_id), filters=filters,
                           page=page_number, pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1), total=total)


CSV_COLUMNS = ["start", "end", "location", "city", "evse_id", "card", "kwh", "duration_minutes", "currency",
               "cpo_price_excl_vat", "our_fees_excl_vat", "vat_rate", "total_incl_vat", "invoice", "state"]


def _money(value: Decimal) -> str:
    return str(Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _session_csv(account_id: int, month: str, card_id: int | None) -> Iterator[str]:
    cards = {card.id: card.visual_number or card.label or str(card.id) for card in card_services.cards_of(account_id)}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    query = _sessions_query(account_id, month, card_id).execution_options(yield_per=1000)
    for count, row in enumerate(db.session.execute(query), start=1):
        view = _session_view(row)
        charge, cdr = row[0], row[1]
        writer.writerow([cdr.start_date_time.isoformat(), cdr.end_date_time.isoformat(), view["location"],
                         view["city"], (cdr.data.get("cdr_location") or {}).get("evse_id") or cdr.evse_uid,
                         cards.get(cdr.card_id, ""), format(Decimal(charge.kwh).normalize(), "f"), view["minutes"],
                         charge.currency, _money(charge.cpo_cost_excl_vat), _money(view["fees"]),
                         format(Decimal(charge.vat_rate).normalize(), "f"), _money(view["total"]),
                         view["invoice"] or "", view["state"]])
        if count % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@bp.get("/sessions.csv")
@driver_required
def session_csv():  # type: ignore[no-untyped-def]
    filters = _filters()
    name = "sessions" + (f"-{filters['month']}" if filters["month"] else "") + ".csv"
    chunks = _session_csv(current_user.account_id, filters["month"], filters["card"])  # type: ignore[arg-type]
    return Response(stream_with_context(chunks), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
