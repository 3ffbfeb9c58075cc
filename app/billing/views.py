"""Portal pages of a driver's billing: their invoices (PDF download) and their charging sessions (filters, CSV).

A driver reaches only their own invoices and sessions: anything else answers 404, as if it did not exist.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request, stream_with_context
from flask_babel import gettext as _
from flask_login import current_user

from app.accounts.access import driver_required, owned_or_404
from app.billing import session_history as history
from app.billing.documents.downloads import PdfUnavailableError, invoice_pdf, invoice_ubl, offers_ubl
from app.billing.invoicing import invoices
from app.billing.invoicing.invoices import BillingError
from app.billing.models import InvoiceStatus
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


@bp.get("/sessions.csv")
@driver_required
def session_csv() -> Response:
    filters = _filters()
    name = "sessions" + (f"-{filters.month}" if filters.month else "") + ".csv"
    chunks = history.sessions_csv(current_user.account_id, filters)
    return Response(
        stream_with_context(chunks),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
