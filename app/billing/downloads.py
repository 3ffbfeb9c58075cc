"""The PDF of a finalized invoice for download: the stored one, or rendered once from the frozen snapshot and
stored (the run normally renders it; this covers invoices whose PDF job has not run yet)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from app.billing.invoices import BillingError
from app.billing.models import Invoice, InvoiceStatus
from app.db import utcnow
from app.extensions import db


class PdfUnavailableError(BillingError):
    pass


def _renderer() -> Callable[[dict], bytes] | None:
    """``render_invoice_pdf`` of the documents package, imported lazily (WeasyPrint is heavy to load)."""
    for module_name in ("app.billing.documents", "app.billing.documents.pdf"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        render = getattr(module, "render_invoice_pdf", None)
        if render is not None:
            return render
    return None


def invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice's PDF bytes; renders and stores it (flush, the caller commits) when none is stored yet."""
    if invoice.status != InvoiceStatus.FINALIZED or not invoice.snapshot:
        raise PdfUnavailableError("only a finalized invoice has a PDF")
    if invoice.pdf:
        return invoice.pdf
    render = _renderer()
    if render is None:
        raise PdfUnavailableError("invoice PDFs are not available yet")
    invoice.pdf = render(invoice.snapshot)
    invoice.pdf_rendered_at = utcnow()
    db.session.flush()
    return invoice.pdf
