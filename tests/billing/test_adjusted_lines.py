"""A session finance adjusted tells the truth (issue 16, Money 3): the invoice keeps what the CPO charged and our
fees as rated, and shows finance's change as the line's own correction with a reason written for the driver (never
finance's internal note); margins follow (what we charge - what the CPO charges, negative here). Checked on the
invoice's snapshot and PDF, UBL and Factur-X, the driver's session history, finance's invoice page, the lines
export, the margin report, the run preview and a credit note of the whole invoice."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import facturx
from sqlalchemy import select

from app.billing import reporting
from app.billing.documents import build_cii_xml, render_invoice_pdf, render_ubl
from app.billing.documents.common import check_snapshot
from app.billing.invoicing import invoices
from app.billing.models import HoldStatus, Invoice, InvoiceKind, SessionHold
from app.billing.runs import holds
from app.billing.runs import services as runs
from app.extensions import db
from app.money import round_to_cents
from tests.billing.sessions import rated_session
from tests.billing.test_documents import UBL_NS, check_peppol_rules, pdf_pages
from tests.billing.test_finance_backoffice import FINANCE, OCT, _cli_run, _csv, _driver, _finance
from tests.factories import login
from tests.helpers import submit_form

INTERNAL_NOTE = "charger fault, CPO ticket 4711 - Piet"


def _adjusted_month(app, *, adjusted_to: str = "50.00", language: str = "en"):  # type: ignore[no-untyped-def]
    """A driver's October: one session as rated and one of 162 kWh held and adjusted by finance, invoiced."""
    user, card = _driver(full_name="Ada Adjusted", language=language)
    normal = rated_session(user.account.id, card.id, OCT, kwh="20")
    # CPO 162 × 0.30 + 0.50 = 49.10; our fees 162 × 0.05 + 0.35 = 8.45: rated at 57.55 excl. VAT.
    big = rated_session(user.account.id, card.id, OCT + dt.timedelta(days=1), kwh="162")
    hold = SessionHold(session_charge_id=big.id, reasons=["energy"], status=HoldStatus.HELD)
    db.session.add(hold)
    db.session.flush()
    holds.adjust(hold, FINANCE, INTERNAL_NOTE, adjusted_to)
    _cli_run(app)
    invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == user.account.id))
    return user, invoice, normal, big


def test_the_adjusted_line_keeps_the_cpo_price_and_our_fees_and_shows_the_correction(app, db_session):
    _user, invoice, normal, big = _adjusted_month(app)
    line = next(line for line in invoice.lines if line.session_charge_id == big.id)
    # €50.00 incl. 21 % VAT → 41.32 excl.; rated 57.55 → the correction is -16.23.
    assert (line.cpo_cost_minor, line.fees_minor, line.amount_minor) == (4910, 845, 4132)
    frozen = next(entry for entry in invoice.snapshot["lines"] if entry["session"]["charge_id"] == big.id)
    assert (frozen["cpo_cost"], frozen["fees"], frozen["correction"], frozen["amount"]) == (4910, 845, -1623, 4132)
    assert frozen["correction_reason"] == "reviewed"
    untouched = next(entry for entry in invoice.snapshot["lines"] if entry["session"]["charge_id"] == normal.id)
    assert "correction" not in untouched and untouched["cpo_cost"] + untouched["fees"] == untouched["amount"]
    check_snapshot(invoice.snapshot)  # CPO price + fees + correction = amount, line by line
    # Finance's reason is for the audit log: not a word of it reaches the invoice.
    assert "4711" not in json.dumps(invoice.snapshot) and "4711" not in json.dumps([ln.details for ln in invoice.lines])

    text = "".join(pdf_pages(render_invoice_pdf(invoice.snapshot)))
    for shown in ("€49.10", "€8.45", "-€16.23", "€41.32", "CORRECTION", "Price corrected after review"):
        assert shown in text, shown
    assert "4711" not in text
    nl = "".join(pdf_pages(render_invoice_pdf({**invoice.snapshot, "language": "nl"})))
    assert "Prijs gecorrigeerd na controle" in nl and "€ -16,23" in nl and "CORRECTIE" in nl
    fr = "".join(pdf_pages(render_invoice_pdf({**invoice.snapshot, "language": "fr"})))
    assert "Prix corrigé après vérification" in fr and "-16,23 €" in fr

    # The e-invoices state the line's net amount (correction included) and stay valid.
    ubl = check_peppol_rules(render_ubl(invoice.snapshot))
    ns = UBL_NS
    properties = {
        prop.findtext("cbc:Name", namespaces=ns): prop.findtext("cbc:Value", namespaces=ns)
        for prop in ubl.findall(
            f"cac:InvoiceLine[cbc:ID='{frozen['position']}']/cac:Item/cac:AdditionalItemProperty", ns
        )
    }
    assert properties["CPO price"] == "49.10" and properties["Fees"] == "8.45" and properties["Correction"] == "-16.23"
    xml = build_cii_xml(invoice.snapshot)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert b"<ram:Value>-16.23</ram:Value>" in xml


def test_margins_are_what_we_charge_minus_what_the_cpo_charges(app, db_session):
    _user, invoice, _normal, big = _adjusted_month(app)
    line = next(line for line in invoice.lines if line.session_charge_id == big.id)
    assert line.amount_minor - line.cpo_cost_minor == -778  # we charge 41.32, the CPO charges 49.10
    # The run preview adds up amount - CPO cost per line: the same figures as the invoice.
    preview = runs.run_for("2026-10").preview
    previewed = sum(Decimal(row["margin"]) for row in preview["per_vat_rate"])
    assert previewed == Decimal(sum(ln.amount_minor - ln.cpo_cost_minor for ln in invoice.lines)) / 100
    # The margin report per CPO: revenue after finance's decision minus the CPO's real cost.
    [row] = reporting.margin_month("2026-10")
    assert row.cpo_cost == Decimal("55.60")  # 6.50 + 49.10: the CPO's price, never finance's
    assert round_to_cents(row.revenue) == Decimal("49.17")  # 7.85 + 41.32
    assert round_to_cents(row.margin) == Decimal("-6.43") and row.margin_percent is not None and row.margin_percent < 0


def test_the_driver_and_finance_see_the_correction_and_its_reason(app, client):
    user, invoice, _normal, _big = _adjusted_month(app)
    login(client, user)
    page = client.get("/sessions").get_data(as_text=True)
    for shown in ("€49.10", "€8.45", "-€16.23", "€50.00", "Correction", "Price corrected after review"):
        assert shown in page, shown
    assert "4711" not in page
    rows = _csv(client.get("/sessions.csv"))
    adjusted = next(row for row in rows if row["kWh"] == "162")
    assert (adjusted["Operator price excl. VAT"], adjusted["Our fees excl. VAT"]) == ("49.10", "8.45")
    assert (adjusted["Correction excl. VAT"], adjusted["Total incl. VAT"]) == ("-16.23", "50.00")

    submit_form(client, "/logout", {}, form_url="/invoices")
    _finance(client)
    page = client.get(f"/backoffice/finance/invoices/{invoice.number}").get_data(as_text=True)
    assert "€49.10" in page and "-€16.23" in page and "Price corrected after review" in page
    lines = _csv(client.get("/backoffice/finance/exports/lines.csv", query_string={"period": "2026-10"}))
    assert {line["correction_excl_vat"] for line in lines} == {"0.00", "-16.23"}
    assert all(
        Decimal(line["cpo_cost_excl_vat"]) + Decimal(line["fees_excl_vat"]) + Decimal(line["correction_excl_vat"])
        == Decimal(line["amount_excl_vat"])
        for line in lines
    )


def test_crediting_an_invoice_with_a_corrected_line_credits_it_as_it_was(app, db_session):
    _user, invoice, _normal, big = _adjusted_month(app)
    note = invoices.credit_invoice(invoice, FINANCE, "wrong customer", customer_reason="not_your_session")
    assert note.kind == InvoiceKind.CREDIT_NOTE and note.subtotal_minor == -invoice.subtotal_minor
    credited = next(entry for entry in note.snapshot["lines"] if (entry["session"] or {}).get("charge_id") == big.id)
    assert (credited["cpo_cost"], credited["fees"], credited["correction"], credited["amount"]) == (
        -4910,
        -845,
        1623,
        -4132,
    )
    check_snapshot(note.snapshot)
    text = "".join(pdf_pages(render_invoice_pdf(note.snapshot)))
    assert "Price corrected after review" in text and "A charging session that was not yours" in text
    assert "wrong customer" not in text
