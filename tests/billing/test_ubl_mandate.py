"""UBL (Peppol BIS Billing 3.0): the SEPA direct debit mandate, PEPPOL-EN16931-R061.

Payment means 59 must carry ``cac:PaymentMandate/cbc:ID`` (BT-89) and, when known, the debited account
``cac:PaymentMandate/cac:PayerFinancialAccount/cbc:ID`` (BT-91); nothing of the sort for a card or a transfer.
Every document also goes through the UBL 2.1 XSD (element order included) via ``check_peppol_rules``.
"""

from __future__ import annotations

import pytest
from lxml import etree

from app.billing.documents import render_ubl
from tests.billing.test_documents import UBL_NS, check_peppol_rules, credit_note, sample

MANDATE = "NXDSYREGC9PSMKWY"


def payment_means(root: etree._Element) -> etree._Element:
    [means] = root.findall("cac:PaymentMeans", UBL_NS)
    return means


def children(element: etree._Element) -> list[str]:
    return [etree.QName(child).localname for child in element]


def sepa_snapshot(**payment: object) -> dict:
    snapshot = sample()
    snapshot["payment"] = {"method": "sepa_debit", "terms_days": 14, "reference": "INV-2026-000001", **payment}
    return snapshot


def test_sepa_invoice_names_the_mandate_last_in_payment_means() -> None:
    root = check_peppol_rules(render_ubl(sepa_snapshot(mandate_reference=MANDATE)))
    means = payment_means(root)
    assert means.findtext("cbc:PaymentMeansCode", namespaces=UBL_NS) == "59"
    assert children(means) == ["PaymentMeansCode", "PaymentID", "PaymentMandate"]
    assert means.findtext("cac:PaymentMandate/cbc:ID", namespaces=UBL_NS) == MANDATE
    # The debited account is not in the snapshot: no empty PayerFinancialAccount.
    assert means.find("cac:PaymentMandate/cac:PayerFinancialAccount", UBL_NS) is None


def test_sepa_mandate_with_the_debited_account() -> None:
    snapshot = sepa_snapshot(mandate_reference=f"  {MANDATE} ", debited_account="be68 5390 0754 7034")
    means = payment_means(check_peppol_rules(render_ubl(snapshot)))
    mandate = means.find("cac:PaymentMandate", UBL_NS)
    assert children(mandate) == ["ID", "PayerFinancialAccount"]
    assert mandate.findtext("cbc:ID", namespaces=UBL_NS) == MANDATE
    assert mandate.findtext("cac:PayerFinancialAccount/cbc:ID", namespaces=UBL_NS) == "BE68539007547034"


def test_sepa_credit_note_names_the_mandate() -> None:
    snapshot = credit_note()
    snapshot["payment"]["mandate_reference"] = MANDATE
    root = check_peppol_rules(render_ubl(snapshot))
    assert etree.QName(root).localname == "CreditNote"
    means = payment_means(root)
    assert means.findtext("cbc:PaymentMeansCode", namespaces=UBL_NS) == "59"
    assert means.findtext("cac:PaymentMandate/cbc:ID", namespaces=UBL_NS) == MANDATE


@pytest.mark.parametrize(("method", "means_code"), [("card", "48"), (None, "58")])
def test_no_mandate_unless_direct_debit(method: str | None, means_code: str) -> None:
    # A stale mandate reference next to another method must not turn up in the e-invoice.
    snapshot = sepa_snapshot(method=method, mandate_reference=MANDATE, debited_account="BE68539007547034")
    means = payment_means(check_peppol_rules(render_ubl(snapshot)))
    assert means.findtext("cbc:PaymentMeansCode", namespaces=UBL_NS) == means_code
    assert means.find("cac:PaymentMandate", UBL_NS) is None
    assert MANDATE.encode() not in render_ubl(snapshot)


@pytest.mark.parametrize(
    "payment",
    [{}, {"mandate_reference": None}, {"mandate_reference": "  "}],
    ids=["snapshot-before-the-field", "null", "blank"],
)
def test_sepa_without_a_mandate_reference_has_no_empty_mandate(payment: dict) -> None:
    means = payment_means(check_peppol_rules(render_ubl(sepa_snapshot(**payment))))
    assert means.findtext("cbc:PaymentMeansCode", namespaces=UBL_NS) == "59"
    assert means.find("cac:PaymentMandate", UBL_NS) is None
