"""Invoice documents rendered from the frozen snapshot (app/billing/invoicing/snapshot.py), never from live objects.

* :func:`render_invoice_pdf` — the PDF every customer gets, in the snapshot's language (nl/fr/en);
* :func:`render_facturx_pdf` — the same as PDF/A-3b with the Factur-X EN 16931 XML embedded (business);
* :func:`render_ubl` — UBL 2.1, Peppol BIS Billing 3.0 (Belgian business customers);
* :func:`documents_for` — which of these a customer receives, as ``{filename: bytes}``;
* :func:`render_customer_pdf` — the one PDF a customer gets (Factur-X for a business buyer): stored and downloaded;

All are pure functions of the snapshot: the same snapshot gives the same documents (up to the PDF's creation
timestamp), and a snapshot whose figures do not add up raises :class:`SnapshotError` instead of producing one.
"""

from __future__ import annotations

from typing import Any

from app.billing.documents.common import SnapshotError
from app.billing.documents.facturx import build_cii_xml, render_facturx_pdf
from app.billing.documents.fetcher import ResourceRefusedError, StaticOnlyFetcher
from app.billing.documents.pdf import render_invoice_pdf
from app.billing.documents.ubl import render_ubl
from app.billing.invoicing.snapshot import is_business, receives_ubl

__all__ = [
    "MEDIA_TYPES",
    "ResourceRefusedError",
    "SnapshotError",
    "StaticOnlyFetcher",
    "build_cii_xml",
    "documents_for",
    "render_customer_pdf",
    "render_facturx_pdf",
    "render_invoice_pdf",
    "render_ubl",
]

MEDIA_TYPES = {".pdf": "application/pdf", ".xml": "application/xml"}


def render_customer_pdf(snapshot: dict[str, Any]) -> bytes:
    """The PDF the customer receives and downloads: Factur-X PDF/A-3 for a business buyer, else the plain one."""
    return render_facturx_pdf(snapshot) if is_business(snapshot) else render_invoice_pdf(snapshot)


def documents_for(snapshot: dict[str, Any], *, business: bool) -> dict[str, bytes]:
    """The documents a customer receives for ``snapshot``, keyed by file name.

    * everyone: ``<number>.pdf`` — for a business account (``business=True``, i.e. the buyer has a VAT number)
      that PDF is the Factur-X PDF/A-3 with the XML embedded, not the plain one;
    * Belgian business customers (buyer country BE) also get ``<number>.ubl.xml`` (Peppol BIS Billing 3.0).
    """
    number = snapshot["number"]
    if not business:
        return {f"{number}.pdf": render_invoice_pdf(snapshot)}
    documents = {f"{number}.pdf": render_facturx_pdf(snapshot)}
    if receives_ubl(snapshot):
        documents[f"{number}.ubl.xml"] = render_ubl(snapshot)
    return documents
