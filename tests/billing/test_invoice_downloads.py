"""Invoice documents on the doors: the PDF a business buyer downloads is the Factur-X one (the same file the
email carries), Belgian business customers download their UBL, and finance re-renders a PDF only on purpose."""

from __future__ import annotations

import facturx
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.billing.models import Invoice
from app.extensions import db
from tests.billing.sessions import rated_session
from tests.billing.test_finance_backoffice import OCT, _cli_run, _driver, _finance
from tests.factories import login
from tests.helpers import submit_form

BUSINESS = {"company_name": "Peeters Logistiek BV", "vat_number": "BE0403170701", "email": "fleet@example.com"}


def _invoice_of(user) -> Invoice:  # type: ignore[no-untyped-def]
    return db.session.scalar(select(Invoice).where(Invoice.account_id == user.account.id))


def test_a_business_buyer_downloads_the_facturx_pdf_and_the_ubl(app, client):
    business, business_card = _driver(**BUSINESS)
    consumer, consumer_card = _driver(email="private@example.com")
    rated_session(business.account.id, business_card.id, OCT)
    rated_session(consumer.account.id, consumer_card.id, OCT)
    _cli_run(app)  # finalized, not delivered: the first download renders and stores the PDF
    invoice = _invoice_of(business)

    login(client, business)
    listing = client.get("/invoices").get_data(as_text=True)
    assert f"/invoices/{invoice.number}.ubl.xml" in listing
    pdf = client.get(f"/invoices/{invoice.number}.pdf")
    assert pdf.status_code == 200
    filename, xml = facturx.get_facturx_xml_from_pdf(pdf.data)
    assert filename == "factur-x.xml" and invoice.number.encode() in xml
    ubl = client.get(f"/invoices/{invoice.number}.ubl.xml")
    assert ubl.status_code == 200 and ubl.mimetype == "application/xml"
    assert b"urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0" in ubl.data

    consumer_invoice = _invoice_of(consumer)
    assert client.get(f"/invoices/{consumer_invoice.number}.ubl.xml").status_code == 404  # not theirs
    submit_form(client, "/logout", {}, form_url="/invoices")
    login(client, consumer)
    assert "ubl.xml" not in client.get("/invoices").get_data(as_text=True)
    assert client.get(f"/invoices/{consumer_invoice.number}.ubl.xml").status_code == 404  # no UBL for them


def test_finance_re_renders_a_pdf_only_with_a_reason_and_it_is_audited(app, client):
    user, card = _driver(**BUSINESS)
    rated_session(user.account.id, card.id, OCT)
    _cli_run(app)
    invoice = _invoice_of(user)
    _finance(client)
    page_url = f"/backoffice/finance/invoices/{invoice.number}"
    assert client.get(f"{page_url}.pdf").data.startswith(b"%PDF")  # rendered and stored on first download
    assert "UBL (Peppol)" in client.get(page_url).get_data(as_text=True)
    assert client.get(f"{page_url}.ubl.xml").status_code == 200
    rendered_at = db.session.get(Invoice, invoice.id).pdf_rendered_at

    refused = submit_form(client, f"{page_url}/rerender", {"reason": ""}, form_url=page_url)
    assert refused.status_code == 302
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).pdf_rendered_at == rendered_at

    done = submit_form(client, f"{page_url}/rerender", {"reason": "logo fixed"}, form_url=page_url)
    assert done.status_code == 302
    db.session.expire_all()
    again = db.session.get(Invoice, invoice.id)
    # Rendered again (its time moved on; the bytes may be identical: same snapshot, same templates).
    assert again.pdf_rendered_at > rendered_at and again.pdf.startswith(b"%PDF")
    assert facturx.get_facturx_xml_from_pdf(again.pdf)[0] == "factur-x.xml"
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "invoice.rerender_pdf"))
    assert entry.reason == "logo fixed" and entry.subject_id == str(invoice.id)
