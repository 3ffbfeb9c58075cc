"""The frozen snapshot of an invoice: everything printed on it, as plain JSON.

PDF, Factur-X, UBL and ``flask billing show`` read only this. Version 1 looks like (amounts are integer
minor units, rates and quantities decimal strings, dates ISO 8601)::

    {
      "version": 1,
      "kind": "invoice" | "credit_note",
      "number": "INV-2026-000001", "issue_date": "2026-11-01", "due_date": "2026-11-15",
      "period": {"month": "2026-10", "start": "2026-10-01", "end": "2026-10-31"},
      "currency": "EUR", "language": "nl",
      "seller": {"name", "street", "postal_code", "city", "country", "vat_number", "iban", "email",
                 "company_register"},
      "buyer": {"customer_number", "name", "company_name", "street", "postal_code", "city", "country",
                "vat_number", "email"},
      "lines": [{
          "position": 1, "kind": "subscription" | "session" | "correction" | "credit",
          "description": "Comfort, 21/31 days",
          "quantity": "1", "unit": "month" | "session" | "kWh" | "item",
          "session": null | {"charge_id", "cdr_id", "start", "end", "duration_minutes", "kwh", "location_name",
                             "city", "evse_id", "tariff_source", "card", "card_type", "time_charged"},
          "cpo_cost": 650, "fees": 135, "amount": 785, "vat_rate": "21", "vat_category": "S", "vat_country": "BE",
          "correction": -120, "correction_reason": "reviewed"
      }],
      "vat": [{"rate": "21", "category": "S", "country": "BE", "base": 785, "vat": 165}],
      "totals": {"subtotal": 785, "vat": 165, "total": 950},
      "session_fees": {"charged": 35, "cap": null},
      "credits_invoice": null | {"number", "issue_date"},
      "credit_reason": "billing_error",
      "payment": {"method": "card" | "sepa_debit" | null, "mandate_reference": null | "NXDSYREGC9PSMKWY",
                  "terms_days": 14, "reference": "+++260/0000/00170+++"}
    }

``payment.mandate_reference`` (added without a version bump: readers treat a missing key as null) is the SEPA
Direct Debit mandate reference (UMR) of the account's active method when it is ``sepa_debit``, frozen at
finalization: Peppol BIS 3.0 rule R061 needs it as ``PaymentMeans/PaymentMandate/ID`` with payment means 59, and
Factur-X as ``DirectDebitMandateID``. Snapshots frozen before it existed have no such key.

Added the same way (issue 16; a snapshot frozen before has none of them, and readers treat a missing key as
absent):

* ``seller.company_register``: the seller's register entry as configured (``SELLER_COMPANY_REGISTER``: "RPR
  Brussel" for a Belgian seller, whose enterprise number is the one in its VAT number; "KvK 12345678" for a Dutch
  one).
* ``payment.reference``: the invoice's structured payment reference as printed (``+++260/0000/00170+++`` for a
  Belgian seller, ``RF42 2026 0000 01`` otherwise; ``invoicing.numbering``); it was the invoice number before.
  A credit note's stays its number (nobody pays it).
* per line ``vat_country`` (ISO alpha-2: whose VAT applies, the country of charging for a session), and per
  ``vat`` entry ``category`` and ``country``: VAT is summed and rounded per rate, category and country.
* per line ``correction`` and ``correction_reason`` (only on a corrected line): finance adjusted the price of a
  held session. ``cpo_cost`` stays what the CPO charged and ``fees`` our fees as rated; ``cpo_cost + fees +
  correction = amount``. The reason is a code of :data:`CORRECTION_REASONS`, printed in the customer's language.
* per session ``card`` (the printed number of the card it was charged with, None for an app token or a card we
  no longer know), ``card_type`` (``RFID`` | ``APP_USER``) and ``time_charged`` (the CPO charged time or parking:
  the invoice shows an average price per minute besides the one per kWh).
* ``credit_reason`` (credit notes): the reason for the customer, a code of :data:`CREDIT_REASONS`. Finance's own
  note stays in the audit log; it is never printed.
"""

from __future__ import annotations

from typing import Any

SNAPSHOT_VERSION = 1

# Reason codes printed on a document in the customer's language, with their English text (the msgid the invoice
# catalogue, the portal and the back office translate, each where it shows them).
CORRECTION_REVIEWED = "reviewed"
CORRECTION_REASONS = {CORRECTION_REVIEWED: "Price corrected after review"}

DEFAULT_CREDIT_REASON = "invoice_correction"
CREDIT_REASONS = {
    DEFAULT_CREDIT_REASON: "Correction of your invoice",
    "billing_error": "Correction of a billing error",
    "session_price": "Correction of the price of a charging session",
    "not_your_session": "A charging session that was not yours",
    "subscription": "Correction of your subscription fee",
    "charged_twice": "Amount charged twice",
    "goodwill": "Goodwill gesture",
    "contract_ended": "Refund after the end of your contract",
}

SAMPLE_SNAPSHOT: dict[str, Any] = {
    "version": 1,
    "kind": "invoice",
    "number": "INV-2026-000001",
    "issue_date": "2026-11-01",
    "due_date": "2026-11-15",
    "period": {"month": "2026-10", "start": "2026-10-01", "end": "2026-10-31"},
    "currency": "EUR",
    "language": "nl",
    "seller": {
        "name": "Voltaro BV",
        "street": "Kunstlaan 1",
        "postal_code": "1000",
        "city": "Brussel",
        "country": "BE",
        "vat_number": "BE0403170701",
        "iban": "BE71096123456769",
        "email": "billing@voltaro.example",
        "company_register": "RPR Brussel",
    },
    "buyer": {
        "customer_number": "00000042",
        "name": "Eva Peeters",
        "company_name": "Peeters Logistiek BV",
        "street": "Grote Markt 1",
        "postal_code": "2000",
        "city": "Antwerpen",
        "country": "BE",
        "vat_number": "BE0403170701",
        "email": "eva@example.com",
    },
    "lines": [
        {
            "position": 1,
            "kind": "subscription",
            "description": "Comfort, 21/31 days",
            "quantity": "1",
            "unit": "month",
            "session": None,
            "cpo_cost": 0,
            "fees": 338,
            "amount": 338,
            "vat_rate": "21",
            "vat_category": "S",
            "vat_country": "BE",
        },
        {
            "position": 2,
            "kind": "session",
            "description": "Gent Zuid, Gent",
            "quantity": "20.0000",
            "unit": "kWh",
            "session": {
                "charge_id": 7,
                "cdr_id": "CDR1",
                "start": "2026-10-14T18:00:00+00:00",
                "end": "2026-10-14T19:00:00+00:00",
                "duration_minutes": 60,
                "kwh": "20.0000",
                "location_name": "Gent Zuid",
                "city": "Gent",
                "evse_id": "BE*BEC*E041503003",
                "tariff_source": "frozen_tariff",
                "card": "BE-VOL-C00012345-6",
                "card_type": "RFID",
                "time_charged": False,
            },
            "cpo_cost": 650,
            "fees": 40,
            "amount": 690,
            "vat_rate": "21",
            "vat_category": "S",
            "vat_country": "BE",
        },
    ],
    "vat": [{"rate": "21", "category": "S", "country": "BE", "base": 1028, "vat": 216}],
    "totals": {"subtotal": 1028, "vat": 216, "total": 1244},
    "session_fees": {"charged": 0, "cap": None},
    "credits_invoice": None,
    "payment": {"method": "sepa_debit", "terms_days": 14, "reference": "+++260/0000/00170+++"},
}


def is_business(snapshot: dict[str, Any]) -> bool:
    """A business buyer is one with a VAT number: they get the Factur-X PDF (and, in Belgium, the UBL)."""
    return bool((snapshot.get("buyer") or {}).get("vat_number"))


def receives_ubl(snapshot: dict[str, Any]) -> bool:
    """Belgian business customers must receive structured e-invoices (Peppol BIS 3.0 UBL) since 2026."""
    return is_business(snapshot) and (snapshot["buyer"].get("country") or "").upper() == "BE"
