"""The EPC QR code ("scan to pay") printed on an invoice the customer pays by transfer, from the snapshot only.

The payload follows the European Payments Council's *Quick Response Code: Guidelines to Enable Data Capture for
the Initiation of a SEPA Credit Transfer* (EPC069-12), version 002, one element a line (LF), nothing after the
last element that has a value:

    BCD                      service tag
    002                      version (002: the BIC may be left empty inside the EEA)
    1                        character set: UTF-8
    SCT                      SEPA credit transfer
    <BIC>                    the seller's BIC when the snapshot has one (``seller.bic``), else empty
    <name>                   the seller's name, at most 70 characters
    <IBAN>                   the seller's IBAN, without spaces
    EUR12.44                 the amount due, "EUR" and at most two decimals
    <purpose>                empty
    <structured reference>   an ISO 11649 RF creditor reference, compact (``RF422026000001``)
    <unstructured text>      otherwise the remittance text: a Belgian structured communication goes here as
                             printed (``+++260/0000/00170+++``): the EPC's structured field is for RF references
                             only, and Belgian banking apps read the +++ form from the text and turn it into the
                             structured communication, as they do when the customer types it

At most 331 bytes. Which invoices get one is :func:`transfer_payload`'s rule: an invoice with an amount due that we
will not collect ourselves (no card or SEPA mandate on file when it was issued). An invoice we collect gets no
code: a customer who scans it pays twice, and the second payment has to be found and refunded. When a collection
fails, the reminders link to paying online.

The code is drawn by segno (pure Python) as inline SVG, which WeasyPrint renders: error correction level M, the
smallest version that holds the payload (the guidelines allow up to version 13).
"""

from __future__ import annotations

from typing import Any

import segno

from app.billing.invoicing.numbering import compact_reference, is_valid_rf
from app.money import from_minor_units

MAX_PAYLOAD_BYTES = 331
MAX_NAME = 70
MAX_AMOUNT_MINOR = 999_999_999_99
MAX_TEXT = 140


def epc_payload(
    *, name: str, iban: str, amount_minor: int, reference: str, bic: str | None = None, currency: str = "EUR"
) -> str:
    """The EPC069-12 v002 payload of a transfer of ``amount_minor`` cents to ``iban`` quoting ``reference``.

    Raises ``ValueError`` for what no EPC QR code can carry (another currency than EUR, an amount out of
    0.01..999,999,999.99, no name or IBAN, a payload over 331 bytes)."""
    if currency != "EUR":
        raise ValueError(f"an EPC QR code transfers euros, not {currency}")
    if not 0 < amount_minor <= MAX_AMOUNT_MINOR:
        raise ValueError(f"an EPC QR code carries 0.01 to 999999999.99 EUR, not {amount_minor} cents")
    name = " ".join(name.split())[:MAX_NAME]
    account = "".join(iban.split()).upper()
    if not name or not account:
        raise ValueError("an EPC QR code needs the beneficiary's name and IBAN")
    reference = reference.strip()
    structured, text = (compact_reference(reference), "") if is_valid_rf(reference) else ("", reference[:MAX_TEXT])
    elements = [
        "BCD",
        "002",
        "1",
        "SCT",
        "".join((bic or "").split()).upper(),
        name,
        account,
        f"EUR{from_minor_units(amount_minor, 'EUR'):.2f}",
        "",
        structured,
        text,
    ]
    while not elements[-1]:  # nothing may follow the last element with a value
        elements.pop()
    payload = "\n".join(elements)
    if len(payload.encode("utf-8")) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"the EPC QR payload is over {MAX_PAYLOAD_BYTES} bytes")
    return payload


def transfer_payload(snapshot: dict[str, Any]) -> str | None:
    """The payload of the invoice's EPC QR code, or None when the invoice gets none: a credit note, nothing due,
    a currency other than EUR, no seller IBAN, or an invoice we collect by card or SEPA direct debit."""
    payment = snapshot.get("payment") or {}
    seller = snapshot["seller"]
    total = snapshot["totals"]["total"]
    if snapshot["kind"] != "invoice" or total <= 0 or payment.get("method") is not None:
        return None
    if snapshot["currency"] != "EUR" or not seller.get("iban"):
        return None
    return epc_payload(
        name=seller["name"],
        iban=seller["iban"],
        bic=seller.get("bic"),
        amount_minor=total,
        reference=payment.get("reference") or snapshot["number"],
    )


def qr_svg(payload: str, *, scale: int | None = None) -> str:
    """The QR code of ``payload`` as an inline ``<svg>`` element: byte mode, UTF-8 as the payload's character set
    1 says, error correction level M. Sized by its ``viewBox`` only (a stylesheet sets the printed size, as the
    invoice's does), or ``scale`` pixels a module (a web page)."""
    code = segno.make(payload.encode("utf-8"), error="m", boost_error=False, micro=False)
    svg: str = code.svg_inline(
        omitsize=scale is None, scale=scale or 1, border=2, dark="#111827", svgclass="epc-qr", lineclass=None
    )
    return svg
