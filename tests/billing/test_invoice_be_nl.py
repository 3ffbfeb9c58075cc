"""Belgian and Dutch invoices an accountant accepts (issue 16): a structured payment reference (Belgian OGM/VCS or
ISO 11649 RF) frozen at finalization and found by finance however it is typed, the EPC "scan to pay" QR code, the
seller's company register, the country whose VAT each VAT line is, average unit prices and the card of each
session, the session fees as a labelled line, a paid invoice marked as paid in the portal, and a credit note's
reason written for the customer (never finance's internal note). In nl, fr and en."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from decimal import Decimal

import facturx
import pytest
from babel.messages.pofile import read_po
from lxml import etree
from sqlalchemy import select

from app.backoffice.finance_invoices import CUSTOMER_REASON_CHOICES
from app.billing import reporting
from app.billing.documents import build_cii_xml, render_invoice_pdf, render_ubl
from app.billing.documents.epc_qr import epc_payload, qr_svg, transfer_payload
from app.billing.documents.i18n import INVOICE_CATALOG_DIR
from app.billing.documents.pdf import render_invoice_html
from app.billing.invoicing import invoices
from app.billing.invoicing.invoices import BillingError
from app.billing.invoicing.numbering import (
    PaymentReferenceError,
    compact_reference,
    invoice_payment_reference,
    is_valid_ogm,
    is_valid_rf,
    ogm_reference,
    printed_reference,
    rf_reference,
)
from app.billing.invoicing.snapshot import CORRECTION_REASONS, CREDIT_REASONS
from app.billing.models import Invoice, InvoiceKind, PaymentState
from app.cards.models import Card, CardStatus, TokenType
from app.extensions import db
from tests.billing.sessions import TARIFF, rated_session
from tests.billing.test_documents import CII_NS, UBL_NS, check_peppol_rules, pdf_pages, sample, with_totals
from tests.billing.test_finance_backoffice import FINANCE, OCT, _cli_run, _driver, _finance
from tests.factories import give_payment_method, login
from tests.helpers import submit_form

# --- structured payment references ---------------------------------------------------------------------------


def test_belgian_structured_communications_of_the_banks_examples_check():
    # Febelfin's layout: ten digits, then the ten-digit number modulo 97 (97 when that is 0).
    for valid in ("+++090/9337/55493+++", "+++123/4567/89002+++", "123456789002", " +++ 000 / 0000 / 09797 +++ "):
        assert is_valid_ogm(valid), valid
    for invalid in ("+++090/9337/55494+++", "+++123/4567/8900+++", "12345678900A", "+++000/0000/00000+++", ""):
        assert not is_valid_ogm(invalid), invalid
    assert ogm_reference(1234567890) == "123456789002"
    assert ogm_reference(97) == "000000009797"  # 97 mod 97 is 0: the check digits are 97
    with pytest.raises(PaymentReferenceError):
        ogm_reference(10**10)


def test_iso_11649_creditor_references_of_the_standards_examples_check():
    for valid in ("RF18 5390 0754 7034", "RF18539007547034", "rf45 g72u ur", "RF45G72UUR"):
        assert is_valid_rf(valid), valid
    for invalid in ("RF18 5390 0754 7035", "RF19539007547034", "RF18", "XX18539007547034", "RF18 5390 0754 7034 ☃"):
        assert not is_valid_rf(invalid), invalid
    assert rf_reference("539007547034") == "RF18539007547034"
    assert rf_reference("G72UUR") == "RF45G72UUR"
    with pytest.raises(PaymentReferenceError):
        rf_reference("1" * 22)  # at most 21 characters after RF and the check digits


def test_invoice_references_are_derived_from_the_number_unique_and_valid():
    belgian = [invoice_payment_reference(2026, sequence, "BE") for sequence in range(1, 2001)]
    assert len(set(belgian)) == 2000 and all(is_valid_ogm(reference) for reference in belgian)
    assert belgian[0] == "260000000170" and printed_reference(belgian[0]) == "+++260/0000/00170+++"
    assert invoice_payment_reference(2027, 1, "BE") != belgian[0]  # a new year's series, new references
    dutch = [invoice_payment_reference(2026, sequence, "NL") for sequence in (1, 2, 123456, 99_999_999)]
    assert all(is_valid_rf(reference) for reference in dutch) and len(set(dutch)) == 4
    assert dutch[0] == "RF422026000001" and printed_reference(dutch[0]) == "RF42 2026 0000 01"
    assert compact_reference(" +++260/0000/00170+++ ") == "260000000170" == compact_reference("260 0000 00170")
    with pytest.raises(PaymentReferenceError):
        invoice_payment_reference(2026, 10**8, "BE")  # more than a structured communication's eight digits
    with pytest.raises(PaymentReferenceError):
        invoice_payment_reference(2026, 0, "NL")


def test_finalizing_freezes_the_structured_reference_and_finance_finds_it_however_typed(app, client):
    user, card = _driver(full_name="Rita Reference")
    other, other_card = _driver(full_name="Otto Other")
    rated_session(user.account.id, card.id, OCT)
    rated_session(other.account.id, other_card.id, OCT)
    _cli_run(app)
    invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == user.account.id))
    printed = invoice.snapshot["payment"]["reference"]
    assert invoice.payment_reference == invoice_payment_reference(invoice.issue_date.year, invoice.sequence, "BE")
    assert printed == printed_reference(invoice.payment_reference) and re.fullmatch(
        r"\+{3}\d{3}/\d{4}/\d{5}\+{3}", printed
    )
    assert is_valid_ogm(printed)
    others = db.session.scalar(select(Invoice).where(Invoice.account_id == other.account.id))
    assert others.payment_reference != invoice.payment_reference and is_valid_ogm(others.payment_reference)
    # The PDF asks for the transfer with it; the UBL and Factur-X carry it as the payment reference.
    text = "".join(pdf_pages(render_invoice_pdf(invoice.snapshot)))
    assert printed in text
    ubl = etree.fromstring(render_ubl(invoice.snapshot))
    assert ubl.findtext("cac:PaymentMeans/cbc:PaymentID", namespaces=UBL_NS) == printed
    cii = etree.fromstring(build_cii_xml(invoice.snapshot))
    assert cii.findtext(".//ram:PaymentReference", namespaces=CII_NS) == printed

    _finance(client)

    def found(reference: str) -> set[str]:
        page = client.get("/backoffice/finance/invoices", query_string={"reference": reference})
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        return {number for number in (invoice.number, others.number) if f">{number}</a>" in html}

    digits = invoice.payment_reference
    for typed in (
        printed,
        digits,
        f"{digits[:3]}/{digits[3:7]}/{digits[7:]}",
        f" {digits[:3]} {digits[3:7]} {digits[7:]} ",
    ):
        assert found(typed) == {invoice.number}, typed
    assert found(digits[:-1]) == set()  # a reference matches whole, never as a prefix
    assert found("+++") == set() and found("x" * 500) == set()


def test_a_dutch_seller_issues_rf_references_and_its_kvk(app, db_session, monkeypatch):
    seller = {
        **app.config["SELLER"],
        "name": "Voltaro Nederland BV",
        "country": "NL",
        "vat_number": "NL859048490B01",
        "iban": "NL91ABNA0417164300",
        "company_register": "KvK 12345678",
    }
    monkeypatch.setitem(app.config, "SELLER", seller)
    user, card = _driver(full_name="Daan Dutch", country="NL", postal_code="3511 AA", city="Utrecht", language="nl")
    rated_session(user.account.id, card.id, OCT, country="NLD")
    _cli_run(app)
    invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == user.account.id))
    assert (
        invoice.payment_reference
        == f"RF{invoice.payment_reference[2:4]}{invoice.issue_date.year}{invoice.sequence:06d}"
    )
    assert is_valid_rf(invoice.payment_reference)
    assert invoice.snapshot["payment"]["reference"] == printed_reference(invoice.payment_reference)
    assert invoice.snapshot["seller"]["company_register"] == "KvK 12345678"
    text = "".join(pdf_pages(render_invoice_pdf(invoice.snapshot)))
    assert "Register KvK 12345678" in text and invoice.snapshot["payment"]["reference"] in text

    root = check_peppol_rules(render_ubl(invoice.snapshot))
    legal = root.find("cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity", UBL_NS)
    company = legal.find("cbc:CompanyID", UBL_NS)
    assert (company.text, company.get("schemeID")) == ("12345678", "0106")
    assert legal.findtext("cbc:CompanyLegalForm", namespaces=UBL_NS) == "KvK 12345678"
    xml = build_cii_xml(invoice.snapshot)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    cii = etree.fromstring(xml)
    organisation = cii.find(".//ram:SellerTradeParty/ram:SpecifiedLegalOrganization/ram:ID", CII_NS)
    assert (organisation.text, organisation.get("schemeID")) == ("12345678", "0106")
    assert cii.findtext(".//ram:SellerTradeParty/ram:Description", namespaces=CII_NS) == "KvK 12345678"


# --- company register ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("language", "label"), [("nl", "Register"), ("fr", "Registre"), ("en", "Company register")])
def test_a_belgian_seller_prints_its_rpr_with_the_enterprise_number(language: str, label: str):
    snapshot = sample(language=language)
    [text] = pdf_pages(render_invoice_pdf(snapshot))
    assert f"{label} RPR Brussel 0403.170.701" in text
    assert "RPR Brussel 0403.170.701 · IBAN" in text  # in the footer of every page too
    root = check_peppol_rules(render_ubl(snapshot))
    legal = root.find("cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity", UBL_NS)
    company = legal.find("cbc:CompanyID", UBL_NS)
    assert (company.text, company.get("schemeID")) == ("0403170701", "0208")
    assert legal.findtext("cbc:CompanyLegalForm", namespaces=UBL_NS) == "RPR Brussel 0403.170.701"
    xml = build_cii_xml(snapshot)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    description = etree.fromstring(xml).findtext(".//ram:SellerTradeParty/ram:Description", namespaces=CII_NS)
    assert description == "RPR Brussel 0403.170.701"


def test_a_snapshot_frozen_before_the_register_existed_still_renders():
    snapshot = sample()
    del snapshot["seller"]["company_register"]
    [text] = pdf_pages(render_invoice_pdf(snapshot))
    assert "RPR" not in text and "Register" not in text
    root = check_peppol_rules(render_ubl(snapshot))
    assert root.find(".//cac:PartyLegalEntity/cbc:CompanyLegalForm", UBL_NS) is None


# --- the EPC QR code ("scan to pay") ---------------------------------------------------------------------------


def test_the_epc_payload_of_a_belgian_structured_communication_is_remittance_text():
    payload = epc_payload(
        name="Voltaro BV", iban="BE71 0961 2345 6769", amount_minor=1244, reference="+++260/0000/00170+++"
    )
    assert payload == "BCD\n002\n1\nSCT\n\nVoltaro BV\nBE71096123456769\nEUR12.44\n\n\n+++260/0000/00170+++"


def test_the_epc_payload_of_an_rf_reference_uses_the_structured_field():
    payload = epc_payload(
        name="Voltaro Nederland BV",
        iban="NL91 ABNA 0417 1643 00",
        bic="ABNANL2A",
        amount_minor=999_999_999_99,
        reference="RF42 2026 0000 01",
    )
    assert (
        payload
        == "BCD\n002\n1\nSCT\nABNANL2A\nVoltaro Nederland BV\nNL91ABNA0417164300\nEUR999999999.99\n\nRF422026000001"
    )


def test_the_epc_payload_refuses_what_no_code_can_carry():
    base = {"name": "Voltaro BV", "iban": "BE71096123456769", "reference": "+++260/0000/00170+++"}
    for amount in (0, -100, 999_999_999_99 + 1):
        with pytest.raises(ValueError, match=r"0\.01 to 999999999\.99"):
            epc_payload(amount_minor=amount, **base)
    with pytest.raises(ValueError, match="euros"):
        epc_payload(amount_minor=100, currency="USD", **base)
    with pytest.raises(ValueError, match="331 bytes"):
        epc_payload(amount_minor=100, **{**base, "name": "€" * 70, "reference": "€" * 140})
    # The name is cut to the 70 characters the guidelines allow.
    long_name = epc_payload(amount_minor=100, **{**base, "name": "V" * 90})
    assert long_name.split("\n")[5] == "V" * 70


def test_only_an_invoice_the_customer_pays_by_transfer_gets_a_code():
    transfer = sample(payment={"method": None, "terms_days": 14, "reference": "+++260/0000/00170+++"})
    assert (
        transfer_payload(transfer)
        == "BCD\n002\n1\nSCT\n\nVoltaro BV\nBE71096123456769\nEUR12.44\n\n\n+++260/0000/00170+++"
    )
    assert transfer_payload(sample()) is None  # SEPA direct debit: we collect it, a scan would pay it twice
    assert transfer_payload(sample(payment={"method": "card", "terms_days": 14, "reference": "x"})) is None
    nothing_due = copy.deepcopy(transfer)
    for line in nothing_due["lines"]:
        line["cpo_cost"], line["fees"], line["amount"] = 0, 0, 0
    assert transfer_payload(with_totals(nothing_due)) is None
    assert transfer_payload({**transfer, "kind": "credit_note"}) is None


@pytest.mark.parametrize(
    ("language", "label"), [("nl", "Scan om te betalen"), ("fr", "Scannez pour payer"), ("en", "Scan to pay")]
)
def test_the_pdf_of_an_invoice_paid_by_transfer_carries_the_code(language: str, label: str):
    snapshot = sample(
        language=language, payment={"method": None, "terms_days": 14, "reference": "+++260/0000/00170+++"}
    )
    html = render_invoice_html(snapshot)
    svg = re.search(r'<svg viewBox="0 0 (\d+) \1" class="epc-qr"><path [^>]*d="M[^"]+"/></svg>', html)
    assert svg, "no inline QR code in the invoice"
    assert svg.group(0) == qr_svg(transfer_payload(snapshot))  # the code of exactly that payload
    pdf = render_invoice_pdf(snapshot)
    [text] = pdf_pages(pdf)
    assert label in text and "+++260/0000/00170+++" in text
    assert b"/Subtype /Image" not in pdf  # drawn as vectors, not a bitmap
    [collected] = pdf_pages(render_invoice_pdf(sample(language=language)))
    assert label not in collected and 'class="epc-qr"' not in render_invoice_html(sample(language=language))


# --- VAT per country, averages, cards, session fees -----------------------------------------------------------


def _rfid_card(account_id: int, number: str) -> Card:
    card = Card(
        account_id=account_id,
        token_type=TokenType.RFID,
        status=CardStatus.ACTIVE,
        uid=f"04{len(number):02X}AABBCC{account_id:04X}",
        contract_id=f"BE-VLT-C{account_id:08d}-0",
        visual_number=number,
        issuer="Voltaro",
    )
    db.session.add(card)
    db.session.flush()
    return card


TIME_TARIFF = {
    **TARIFF,
    "id": "T-TIME",
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.30, "vat": 21.0, "step_size": 1},
                {"type": "TIME", "price": 1.20, "vat": 21.0, "step_size": 60},
            ]
        }
    ],
}

VAT_WORDING = {
    "nl": ("Btw 21% (België)", "Btw 21% (Nederland)", "gem. € 0,3925/kWh", "Laadpas VLT-000123", "Laadpas App"),
    "fr": (
        "TVA 21% (Belgique)",
        "TVA 21% (Pays-Bas)",
        "moy. 0,3925 €/kWh",
        "Carte de recharge VLT-000123",
        "Carte de recharge Appli",
    ),
    "en": (
        "VAT 21% (Belgium)",
        "VAT 21% (Netherlands)",
        "avg. €0.3925/kWh",
        "Charge card VLT-000123",
        "Charge card App",
    ),
}


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_vat_lines_name_their_country_and_session_lines_their_card_and_average_prices(app, db_session, language):
    user, app_token = _driver(full_name="Vera Vat", language=language)
    rfid = _rfid_card(user.account.id, "VLT-000123")
    rated_session(user.account.id, rfid.id, OCT, kwh="20")  # Gent: Belgian VAT; 6.50 + 1.35 = 7.85 → 0.3925/kWh
    rated_session(user.account.id, app_token.id, OCT + dt.timedelta(days=1), kwh="10", country="NLD")  # Dutch VAT
    rated_session(user.account.id, rfid.id, OCT + dt.timedelta(days=2), kwh="10", hours=0.5, tariff=TIME_TARIFF)
    _cli_run(app)
    invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == user.account.id))
    snapshot = invoice.snapshot
    by_country = {row["country"]: row for row in snapshot["vat"]}
    assert set(by_country) == {"BE", "NL"} and {row["rate"] for row in snapshot["vat"]} == {"21"}
    assert sum(row["vat"] for row in snapshot["vat"]) == snapshot["totals"]["vat"] == invoice.vat_minor
    dutch_line = next(line for line in snapshot["lines"] if line["vat_country"] == "NL")
    assert dutch_line["session"]["card"] is None and dutch_line["session"]["card_type"] == "APP_USER"
    assert by_country["NL"]["base"] == dutch_line["amount"]
    timed = next(line for line in snapshot["lines"] if line["session"] and line["session"]["time_charged"])
    assert timed["session"]["card"] == "VLT-000123" and timed["session"]["duration_minutes"] == 30

    text = "".join(pdf_pages(render_invoice_pdf(snapshot)))
    belgian, dutch, average, card_text, app_text = VAT_WORDING[language]
    for shown in (belgian, dutch, average, card_text, app_text):
        assert shown in text, shown
    # The timed session: 10 kWh × 0.30 + 30 min at 1.20/h = 3.60, + our fees 0.85 = 4.45 → 0.4450/kWh, 0.1483/min.
    assert "0,4450" in text or "0.4450" in text
    assert "0,1483" in text or "0.1483" in text
    assert {"nl": "/min", "fr": "/min", "en": "/min"}[language] in text

    # The e-invoices have one VAT breakdown per category and rate (EN 16931): BE and NL 21 % added up.
    root = check_peppol_rules(render_ubl(snapshot))
    [subtotal] = root.findall("cac:TaxTotal/cac:TaxSubtotal", UBL_NS)
    assert subtotal.findtext("cbc:TaxAmount", namespaces=UBL_NS) == f"{Decimal(invoice.vat_minor) / 100:.2f}"
    assert facturx.xml_check_xsd(build_cii_xml(snapshot), flavor="factur-x", level="en16931")
    # Finance's VAT export splits the same way and adds up to the invoice.
    rows = [row for row in reporting.vat_per_rate("2026-10") if row.kind == "invoice"]
    assert {(row.country, row.base_minor, row.vat_minor) for row in rows} == {
        (row["country"], row["base"], row["vat"]) for row in snapshot["vat"]
    }


def test_session_fees_are_a_labelled_line_not_a_stray_sentence():
    snapshot = sample(language="nl", session_fees={"charged": 35, "cap": 500})
    [text] = pdf_pages(render_invoice_pdf(snapshot))
    assert "Sessiekosten deze periode" not in text and "Session fees this period" not in text
    assert "Waarvan sessiekosten · maandplafond € 5,00 € 0,35" in text
    [english] = pdf_pages(render_invoice_pdf(sample(language="en", session_fees={"charged": 35, "cap": None})))
    assert "Of which session fees €0.35" in english and "monthly cap" not in english


# --- paid in the portal -----------------------------------------------------------------------------------


def test_a_paid_invoice_is_marked_as_paid_in_the_portal(app, client):
    user, card = _driver(full_name="Paula Paid")
    rated_session(user.account.id, card.id, OCT)
    _cli_run(app)
    invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == user.account.id))
    invoice.payment_state = PaymentState.PAID
    invoice.paid_at = dt.datetime(2026, 11, 3, 9, tzinfo=dt.UTC)
    db.session.commit()
    login(client, user)
    listing = client.get("/invoices").get_data(as_text=True)
    assert f'href="/invoices/{invoice.number}"' in listing
    assert re.search(r"Paid</span>\s*<br><span class=\"muted\" data-paid-on>on 3 Nov 2026</span>", listing)
    page = client.get(f"/invoices/{invoice.number}").get_data(as_text=True)
    assert 'data-invoice-state="paid"' in page and "Paid</strong> · on 3 Nov 2026" in page
    assert "How to pay" not in page and "epc-qr" not in page
    assert client.get(f"/invoices/{invoice.number}.pdf").status_code == 200  # the download still works


def test_an_unpaid_invoice_page_says_how_to_pay_by_transfer_or_that_we_collect(app, client):
    transfer, transfer_card = _driver(full_name="Tom Transfer")
    collected, collected_card = _driver(full_name="Carl Collected")
    give_payment_method(collected.account, method_type="sepa_debit")
    rated_session(transfer.account.id, transfer_card.id, OCT)
    rated_session(collected.account.id, collected_card.id, OCT)
    _cli_run(app)
    mine = db.session.scalar(select(Invoice).where(Invoice.account_id == transfer.account.id))
    theirs = db.session.scalar(select(Invoice).where(Invoice.account_id == collected.account.id))
    login(client, transfer)
    page = client.get(f"/invoices/{mine.number}").get_data(as_text=True)
    reference = mine.snapshot["payment"]["reference"]
    assert 'data-invoice-state="open"' in page and "To be paid: €9.50" in page and "How to pay" in page
    assert reference in page and 'class="epc-qr"' in page and "BE71096123456769" in page
    assert client.get(f"/invoices/{theirs.number}").status_code == 404  # not theirs to see
    submit_form(client, "/logout", {}, form_url="/invoices")
    login(client, collected)
    page = client.get(f"/invoices/{theirs.number}").get_data(as_text=True)
    assert "We collect it with your saved payment method" in page
    assert "How to pay" not in page and "epc-qr" not in page  # a transfer on top would pay it twice


# --- a credit note's reason for the customer -------------------------------------------------------------------

INTERNAL = "Piet typed 200 kWh instead of 20, see ticket 8812"


@pytest.mark.parametrize(
    ("language", "shown"),
    [
        ("nl", "Reden: Correctie van een factuurfout"),
        ("fr", "Motif : Correction d’une erreur de facturation"),
        ("en", "Reason: Correction of a billing error"),
    ],
)
def test_a_credit_note_shows_the_customers_reason_never_the_internal_note(app, client, mailbox, language, shown):
    """The PDF in the driver's language (its own catalogue); the email and the portal through the app's catalogue,
    whose nl and fr texts come with the next catalogue update: they are checked in English here."""
    user, card = _driver(full_name="Cora Credit", language=language)
    rated_session(user.account.id, card.id, OCT)
    _cli_run(app)
    invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == user.account.id))
    _finance(client)
    page_url = f"/backoffice/finance/invoices/{invoice.number}"
    page = client.get(page_url).get_data(as_text=True)
    assert "Reason shown to the customer" in page and "Internal note" in page
    assert all(f'value="{code}"' in page for code in CREDIT_REASONS)
    response = submit_form(
        client,
        f"{page_url}/credit",
        {"scope": "amount", "amount": "1.00", "customer_reason": "billing_error", "reason": INTERNAL, "confirm": "y"},
        form_url=page_url,
    )
    assert response.status_code == 302
    note = db.session.scalar(select(Invoice).where(Invoice.kind == InvoiceKind.CREDIT_NOTE))
    assert note.snapshot["credit_reason"] == "billing_error"
    assert "8812" not in json.dumps(note.snapshot)
    [text] = pdf_pages(render_invoice_pdf(note.snapshot))
    assert shown in text and "8812" not in text
    assert b"8812" not in render_ubl(note.snapshot) and b"8812" not in build_cii_xml(note.snapshot)
    [email] = [
        message for message in mailbox.to(user.email) if note.number in message.get_body(("plain",)).get_content()
    ]
    body = email.get_body(("plain",)).get_content()
    assert "8812" not in body and note.number in body
    if language == "en":
        assert "Reason: Correction of a billing error" in body and "Credited: €1.21" in body
    # Finance's note is kept where it belongs: the audit log of the invoice.
    assert INTERNAL in client.get(page_url).get_data(as_text=True)
    submit_form(client, "/logout", {}, form_url=page_url)
    login(client, user)
    portal = client.get(f"/invoices/{note.number}").get_data(as_text=True)
    assert "8812" not in portal and 'data-invoice-state="credit_note"' in portal
    if language == "en":
        assert "Reason: Correction of a billing error" in portal


def test_a_credit_note_needs_a_known_customer_reason(app, client):
    user, card = _driver()
    rated_session(user.account.id, card.id, OCT)
    _cli_run(app)
    invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == user.account.id))
    _finance(client)
    page_url = f"/backoffice/finance/invoices/{invoice.number}"
    for chosen in ({}, {"customer_reason": ""}, {"customer_reason": "because"}):
        response = submit_form(
            client, f"{page_url}/credit", {"scope": "full", "reason": "x", "confirm": "y", **chosen}, form_url=page_url
        )
        assert response.status_code == 400, chosen
    assert db.session.scalar(select(Invoice).where(Invoice.kind == InvoiceKind.CREDIT_NOTE)) is None
    with pytest.raises(BillingError, match="Unknown reason"):
        invoices.credit_invoice(invoice, FINANCE, "x", customer_reason="because")


def test_every_reason_is_offered_and_translated_everywhere_it_is_shown():
    assert [code for code, _label in CUSTOMER_REASON_CHOICES] == list(CREDIT_REASONS)
    for language in ("nl", "fr"):
        with (INVOICE_CATALOG_DIR / language / "LC_MESSAGES" / "invoice.po").open("rb") as source:
            catalog = read_po(source)
        translated = {message.id for message in catalog if message.id and message.string}
        for text in (*CREDIT_REASONS.values(), *CORRECTION_REASONS.values()):
            assert text in translated, (language, text)
    for code, text in CREDIT_REASONS.items():
        snapshot = sample(
            kind="credit_note",
            number="CN-2026-000001",
            credits_invoice={"number": "INV-2026-000001", "issue_date": "2026-11-01"},
            credit_reason=code,
            language="en",
        )
        [page] = pdf_pages(render_invoice_pdf(snapshot))
        assert f"Reason: {text}" in page, code


def test_a_partial_credit_keeps_the_vat_country_and_category_of_the_line_it_corrects(app, db_session):
    user, card = _driver()
    rated_session(user.account.id, card.id, OCT, country="NLD")
    _cli_run(app)
    invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == user.account.id))
    note = invoices.credit_invoice(invoice, FINANCE, "x", amount_minor=100, customer_reason="goodwill")
    [line] = note.snapshot["lines"]
    assert (line["vat_country"], line["vat_category"], line["description"]) == ("NL", "S", "Goodwill gesture")
    assert note.snapshot["vat"] == [{"rate": "21", "category": "S", "country": "NL", "base": -100, "vat": -21}]
