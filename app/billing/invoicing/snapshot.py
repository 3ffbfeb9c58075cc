"""The frozen snapshot of an invoice: everything printed on it, as plain JSON.

PDF, Factur-X, UBL and ``flask billing show`` read only this. Version 1 looks like (amounts are integer
minor units, rates and quantities decimal strings, dates ISO 8601)::

    {
      "version": 1,
      "kind": "invoice" | "credit_note",
      "number": "INV-2026-000001", "issue_date": "2026-11-01", "due_date": "2026-11-15",
      "period": {"month": "2026-10", "start": "2026-10-01", "end": "2026-10-31"},
      "currency": "EUR", "language": "nl",
      "seller": {"name", "street", "postal_code", "city", "country", "vat_number", "iban", "email"},
      "buyer": {"customer_number", "name", "company_name", "street", "postal_code", "city", "country",
                "vat_number", "email"},
      "lines": [{
          "position": 1, "kind": "subscription" | "session" | "correction" | "credit",
          "description": "Comfort, 21/31 days",
          "quantity": "1", "unit": "month" | "session" | "kWh" | "item",
          "session": null | {"charge_id", "cdr_id", "start", "end", "duration_minutes", "kwh", "location_name",
                             "city", "evse_id", "tariff_source"},
          "cpo_cost": 650, "fees": 135, "amount": 785, "vat_rate": "21"
      }],
      "vat": [{"rate": "21", "base": 785, "vat": 165}],
      "totals": {"subtotal": 785, "vat": 165, "total": 950},
      "session_fees": {"charged": 35, "cap": null},
      "credits_invoice": null | {"number", "issue_date"},
      "payment": {"method": "card" | "sepa_debit" | null, "mandate_reference": null | "NXDSYREGC9PSMKWY",
                  "terms_days": 14, "reference": "INV-2026-000001"}
    }

``payment.mandate_reference`` (added without a version bump: readers treat a missing key as null) is the SEPA
Direct Debit mandate reference (UMR) of the account's active method when it is ``sepa_debit``, frozen at
finalization: Peppol BIS 3.0 rule R061 needs it as ``PaymentMeans/PaymentMandate/ID`` with payment means 59, and
Factur-X as ``DirectDebitMandateID``. Snapshots frozen before it existed have no such key.
"""

from __future__ import annotations

from typing import Any

SNAPSHOT_VERSION = 1

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
            },
            "cpo_cost": 650,
            "fees": 40,
            "amount": 690,
            "vat_rate": "21",
        },
    ],
    "vat": [{"rate": "21", "base": 1028, "vat": 216}],
    "totals": {"subtotal": 1028, "vat": 216, "total": 1244},
    "session_fees": {"charged": 0, "cap": None},
    "credits_invoice": None,
    "payment": {"method": "sepa_debit", "terms_days": 14, "reference": "INV-2026-000001"},
}


def is_business(snapshot: dict[str, Any]) -> bool:
    """A business buyer is one with a VAT number: they get the Factur-X PDF (and, in Belgium, the UBL)."""
    return bool((snapshot.get("buyer") or {}).get("vat_number"))


def receives_ubl(snapshot: dict[str, Any]) -> bool:
    """Belgian business customers must receive structured e-invoices (Peppol BIS 3.0 UBL) since 2026."""
    return is_business(snapshot) and (snapshot["buyer"].get("country") or "").upper() == "BE"
