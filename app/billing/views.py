"""Portal pages of a driver's billing: their invoices (list, one invoice's page, PDF download) and their charging
sessions (filters, CSV).

A driver reaches only their own invoices and sessions: anything else answers 404, as if it did not exist. The
invoice's page shows its live payment state (paid and when, or what is still due and how to pay it: online, or by
transfer with the structured reference and the EPC "scan to pay" code); the PDF stays as it was issued.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, abort, render_template, request, stream_with_context
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from app.accounts.access import driver_required, owned_or_404
from app.billing import session_detail as session_details
from app.billing import session_history as history
from app.billing.collection.services import amount_due_minor
from app.billing.documents.downloads import PdfUnavailableError, invoice_pdf, invoice_ubl, offers_ubl
from app.billing.documents.epc_qr import epc_payload, qr_svg
from app.billing.invoicing import invoices
from app.billing.invoicing.invoices import BillingError
from app.billing.models import Invoice, InvoiceKind, InvoiceStatus, PaymentState
from app.cards import services as card_services
from app.extensions import db

bp = Blueprint("billing", __name__)


@bp.get("/invoices")
@driver_required
def invoice_list() -> str:
    rows = invoices.invoices_of(current_user.account_id)
    return render_template(
        "portal/billing/invoices.html",
        invoices=rows,
        with_ubl={invoice.number for invoice in rows if offers_ubl(invoice)},
    )


def _transfer(invoice: Invoice, due_minor: int) -> dict[str, Any] | None:
    """How to pay what is due by transfer (IBAN, reference, the EPC QR code for that amount), or None when the
    driver has nothing to transfer: nothing due, a SEPA debit under way, or an invoice we are collecting with
    their saved method (a transfer on top would pay it twice) unless that collection failed."""
    snapshot = invoice.snapshot or {}
    seller, payment = snapshot.get("seller") or {}, snapshot.get("payment") or {}
    collected = payment.get("method") is not None and invoice.payment_state == PaymentState.OPEN
    if due_minor <= 0 or invoice.payment_state == PaymentState.PROCESSING or collected or not seller.get("iban"):
        return None
    reference = payment.get("reference") or invoice.number or ""
    try:
        payload = epc_payload(
            name=seller.get("name") or "",
            iban=seller["iban"],
            bic=seller.get("bic"),
            amount_minor=due_minor,
            reference=reference,
            currency=invoice.currency,
        )
    except ValueError:  # not in euros, or nothing an EPC code can carry: the transfer details alone
        payload = None
    return {
        "iban": seller["iban"],
        "name": seller.get("name") or "",
        "reference": reference,
        # segno's SVG of our own payload (digits, letters and the seller's name, which segno does not embed).
        "qr": Markup(qr_svg(payload, scale=4)) if payload else None,  # noqa: S704 - SVG made by segno
    }


def _line_views(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """The snapshot's lines for the page, each session's start read back as a datetime."""
    views = []
    for line in sorted(snapshot.get("lines") or [], key=lambda line: line["position"]):
        session = line.get("session") or {}
        start = dt.datetime.fromisoformat(session["start"]) if session.get("start") else None
        views.append({**line, "start": start, "kwh": session.get("kwh")})
    return views


@bp.get("/invoices/<number>")
@driver_required
def invoice_detail(number: str) -> str:
    """One invoice or credit note with its live payment state: paid (and when), or what is due and how to pay."""
    invoice = owned_or_404(invoices.invoice_by_number(number))
    if invoice.status != InvoiceStatus.FINALIZED:
        abort(404)
    due = amount_due_minor(invoice) if invoice.kind == InvoiceKind.INVOICE else 0
    return render_template(
        "portal/billing/invoice.html",
        invoice=invoice,
        snapshot=invoice.snapshot or {},
        due=due,
        transfer=_transfer(invoice, due),
        lines=_line_views(invoice.snapshot or {}),
        has_ubl=offers_ubl(invoice),
    )


@bp.get("/invoices/<number>.pdf")
@driver_required
def invoice_pdf_download(number: str) -> Response:
    invoice = owned_or_404(invoices.invoice_by_number(number))
    if invoice.status != InvoiceStatus.FINALIZED:
        abort(404)
    try:
        data = invoice_pdf(invoice)
    except PdfUnavailableError:
        db.session.rollback()
        body = render_template(
            "errors/error.html",
            code=404,
            title=_("PDF not available yet"),
            explanation=_("The PDF of this invoice is not ready yet. Please try again later."),
        )
        return Response(body, status=404)
    db.session.commit()  # a PDF rendered on first download is stored (rendered once, then served as stored)
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{invoice.number}.pdf"'},
    )


@bp.get("/invoices/<number>.ubl.xml")
@driver_required
def invoice_ubl_download(number: str) -> Response:
    """The structured e-invoice (Peppol BIS 3.0 UBL) of a Belgian business customer, for their accounting."""
    invoice = owned_or_404(invoices.invoice_by_number(number))
    data = invoice_ubl(invoice)
    if data is None:
        abort(404)
    return Response(
        data,
        mimetype="application/xml",
        headers={"Content-Disposition": f'attachment; filename="{invoice.number}.ubl.xml"'},
    )


# --- sessions --------------------------------------------------------------------------------------------------


def _filters() -> history.SessionFilters:
    try:
        return history.session_filters(request.args.get("month") or "", request.args.get("card") or "")
    except BillingError:
        abort(400)


@bp.get("/sessions")
@driver_required
def session_history() -> str:
    filters = _filters()
    page = request.args.get("page", "1")
    found = history.session_page(current_user.account_id, filters, max(int(page), 1) if page.isdigit() else 1)
    return render_template(
        "portal/billing/sessions.html",
        sessions=found.sessions,
        cards=card_services.cards_of(current_user.account_id),
        filters=filters,
        page=found.page,
        pages=found.pages,
        total=found.total,
    )


@bp.get("/sessions/<int:cdr_id>")
@driver_required
def session_detail(cdr_id: int) -> str:
    """One session with its price built up: the operator's parts and tariff, our fees, VAT, total, card, invoice.
    Another driver's session (or one not priced yet) is a 404."""
    detail = session_details.session_detail(current_user.account_id, cdr_id)
    if detail is None:
        abort(404)
    return render_template("portal/billing/session.html", s=detail, line=detail.line)


@bp.get("/sessions.csv")
@driver_required
def session_csv() -> Response:
    filters = _filters()
    name = "sessions" + (f"-{filters.month}" if filters.month else "") + ".csv"
    # In the page's language (the driver's, or the one chosen in this browser): headers, states, separator.
    chunks = history.sessions_csv(current_user.account_id, filters, str(get_locale()))
    return Response(
        stream_with_context(chunks),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
