"""The documents of a finalized invoice for download: the stored PDF, or rendered once from the frozen snapshot
and stored (the run normally renders it; this covers invoices whose PDF job has not run yet); the UBL of a
Belgian business customer; and the explicit, audited re-render by staff."""

from __future__ import annotations

from typing import Any, Protocol

from flask_babel import lazy_gettext as _l

from app.audit.services import Actor, record
from app.billing.invoicing.invoices import BillingError
from app.billing.invoicing.snapshot import receives_ubl
from app.billing.models import Invoice, InvoiceStatus
from app.db import utcnow
from app.extensions import db


class PdfUnavailableError(BillingError):
    pass


class _Documents(Protocol):
    """What this module uses of the documents package (:mod:`app.billing.documents`)."""

    def render_customer_pdf(self, snapshot: dict[str, Any]) -> bytes: ...

    def render_ubl(self, snapshot: dict[str, Any]) -> bytes: ...


def _documents() -> _Documents:
    """The documents package, imported lazily (WeasyPrint is heavy to load and only some requests need it)."""
    try:
        from app.billing import documents
    except ImportError as error:
        raise PdfUnavailableError(_l("Invoice documents are not available.")) from error
    return documents


def invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice's PDF bytes; renders and stores it (flush, the caller commits) when none is stored yet."""
    if invoice.status != InvoiceStatus.FINALIZED or not invoice.snapshot:
        raise PdfUnavailableError(_l("Only a finalized invoice has a PDF."))
    if invoice.pdf:
        return invoice.pdf
    invoice.pdf = _documents().render_customer_pdf(invoice.snapshot)
    invoice.pdf_rendered_at = utcnow()
    db.session.flush()
    return invoice.pdf


def invoice_ubl(invoice: Invoice) -> bytes | None:
    """The UBL (Peppol BIS 3.0) of the invoice when its buyer gets one (Belgian business), else None."""
    if not offers_ubl(invoice):
        return None
    assert invoice.snapshot is not None  # offers_ubl holds for a finalized invoice with a snapshot only
    return _documents().render_ubl(invoice.snapshot)


def offers_ubl(invoice: Invoice) -> bool:
    if invoice.status != InvoiceStatus.FINALIZED or not invoice.snapshot:
        return False
    return receives_ubl(invoice.snapshot)


def rerender_pdf(invoice: Invoice, actor: Actor, reason: str) -> bytes:
    """Render the stored PDF again from the frozen snapshot (after a template or font fix), replacing the one
    the customer got: only on purpose, with a reason, audited. The snapshot, and so every figure, stays."""
    if not reason.strip():
        raise BillingError(_l("Re-rendering the PDF needs a reason."))
    if invoice.status != InvoiceStatus.FINALIZED or not invoice.snapshot:
        raise PdfUnavailableError(_l("Only a finalized invoice has a PDF."))
    invoice.pdf = _documents().render_customer_pdf(invoice.snapshot)
    invoice.pdf_rendered_at = utcnow()
    record("invoice.rerender_pdf", "invoice", invoice.id, actor=actor, reason=reason.strip()[:1000])
    db.session.flush()
    return invoice.pdf
