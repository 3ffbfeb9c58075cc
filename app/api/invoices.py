"""``/api/v1/invoices``: the driver's invoices and credit notes, their PDF and, for a Belgian business customer,
their UBL e-invoice, through ``billing`` (the documents come from the frozen snapshot, as the portal's)."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate

from app.api.auth import current_account_id
from app.api.blueprints import ID, ApiBlueprint
from app.api.pagination import PageArgs, page_of, page_schema
from app.api.problems import ApiProblem
from app.api.reads import writes_on_get
from app.api.schemas import MoneyOut, minor
from app.billing.collection.services import amount_due_minor
from app.billing.documents.downloads import PdfUnavailableError, invoice_pdf, invoice_ubl, offers_ubl
from app.billing.invoicing import invoices
from app.billing.models import Invoice, InvoiceKind, InvoiceStatus, PaymentState
from app.extensions import db

blp = ApiBlueprint(
    "api_invoices", __name__, tag="Invoices", url_prefix="/api/v1/invoices", description="Invoices and credit notes"
)

_BINARY = {"type": "string", "format": "binary"}


class InvoiceOut(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True, metadata={"example": "INV-2026-000123"})
    kind = fields.String(required=True, validate=validate.OneOf([kind.value for kind in InvoiceKind]))
    period = fields.String(required=True, metadata={"description": "The month supplied, YYYY-MM."})
    issue_date = fields.Date(required=True)
    due_date = fields.Date(required=True, allow_none=True)
    subtotal = fields.Nested(MoneyOut, required=True, metadata={"description": "Excl. VAT."})
    vat = fields.Nested(MoneyOut, required=True)
    total = fields.Nested(MoneyOut, required=True)
    amount_due = fields.Nested(MoneyOut, required=True, metadata={"description": "Still to pay now."})
    payment_state = fields.String(required=True, validate=validate.OneOf([state.value for state in PaymentState]))
    paid_at = fields.DateTime(required=True, allow_none=True)
    payment_reference = fields.String(required=True, allow_none=True, metadata={"description": "For a transfer."})
    credits_invoice_id = fields.Integer(required=True, allow_none=True)
    has_ubl = fields.Boolean(required=True, metadata={"description": "A UBL e-invoice can be downloaded."})


InvoicePage = page_schema(InvoiceOut, "InvoicePage")


def present(invoice: Invoice) -> dict[str, Any]:
    currency = invoice.currency
    due = amount_due_minor(invoice) if invoice.kind == InvoiceKind.INVOICE else 0
    payment = (invoice.snapshot or {}).get("payment") or {}
    return {
        "id": invoice.id,
        "number": invoice.number,
        "kind": invoice.kind.value,
        "period": invoice.period,
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "subtotal": minor(invoice.subtotal_minor, currency),
        "vat": minor(invoice.vat_minor, currency),
        "total": minor(invoice.total_minor, currency),
        "amount_due": minor(max(due, 0), currency),
        "payment_state": invoice.payment_state.value,
        "paid_at": invoice.paid_at,
        "payment_reference": payment.get("reference"),
        "credits_invoice_id": invoice.credits_invoice_id,
        "has_ubl": offers_ubl(invoice),
    }


def own_invoice(invoice_id: int) -> Invoice:
    """A finalized invoice of the driver's account; anything else (a draft, somebody else's) is a 404."""
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or invoice.account_id != current_account_id() or invoice.status != InvoiceStatus.FINALIZED:
        raise ApiProblem(404, "invoice_not_found", _l("This invoice does not exist or is not yours."))
    return invoice


def _download(data: bytes, mimetype: str, filename: str) -> Response:
    return Response(data, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _position(invoice: Invoice) -> tuple[str, int]:
    # The order of invoices_of: issue date, then id, newest first.
    return (invoice.issue_date.isoformat() if invoice.issue_date else "", invoice.id)


@blp.route("", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, InvoicePage)
def invoice_list(args: dict[str, Any]) -> dict[str, Any]:
    """The driver's invoices and credit notes, newest first."""
    found = invoices.invoices_of(current_account_id())
    page = page_of(found, _position, "invoices", args)
    return page.answer("invoices", present)


@blp.route(f"/<{ID}:invoice_id>", methods=["GET"])
@blp.response(200, InvoiceOut)
def invoice_detail(invoice_id: int) -> dict[str, Any]:
    """One invoice or credit note with its payment state now (the PDF stays as issued)."""
    return present(own_invoice(invoice_id))


@blp.route(f"/<{ID}:invoice_id>/pdf", methods=["GET"])
@blp.response(200, _BINARY, content_type="application/pdf", description="The invoice as issued.")
@writes_on_get  # a PDF rendered on first download is stored
def invoice_pdf_download(invoice_id: int) -> Response:
    """The PDF of the invoice."""
    invoice = own_invoice(invoice_id)
    try:
        data = invoice_pdf(invoice)
    except PdfUnavailableError:
        db.session.rollback()
        raise ApiProblem(
            404, "pdf_not_ready", _l("The PDF of this invoice is not ready yet. Please try again later.")
        ) from None
    db.session.commit()  # a PDF rendered on first download is stored, then served as stored
    return _download(data, "application/pdf", f"{invoice.number}.pdf")


@blp.route(f"/<{ID}:invoice_id>/ubl", methods=["GET"])
@blp.response(200, _BINARY, content_type="application/xml", description="Peppol BIS 3.0 UBL.")
def invoice_ubl_download(invoice_id: int) -> Response:
    """The structured e-invoice of a Belgian business customer (`has_ubl`); other invoices have none (404)."""
    invoice = own_invoice(invoice_id)
    data = invoice_ubl(invoice)
    if data is None:
        raise ApiProblem(404, "ubl_not_offered", _l("This invoice has no UBL e-invoice."))
    return _download(data, "application/xml", f"{invoice.number}.ubl.xml")
