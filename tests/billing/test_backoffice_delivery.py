"""Finance back office, after finalization: the invoices are sent (PDF, email) and collected through Stripe, and
a credit note issued on a paid invoice is sent to the driver and refunded through Stripe."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.billing.documents.delivery import deliver_invoice
from app.billing.models import Invoice, InvoiceKind, InvoiceRun, Payment, PaymentState, RunStatus
from app.billing.runs import services as runs
from app.extensions import db
from app.payments.stripe_client import reset_stripe_client
from tests.billing.conftest import save_method
from tests.billing.sessions import rated_session
from tests.billing.test_finance_backoffice import OCT, RUNS, _driver, _finance, _post
from tests.helpers import submit_form
from tests.payments import stripe_js

pytestmark = pytest.mark.usefixtures("stripe_app")


def _subjects(mailbox, address: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [message["Subject"] for message in mailbox.to(address)]


def _actions() -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_finalizing_in_the_back_office_sends_and_collects_every_invoice(client, mailbox, localstripe):
    card_payer, card_token = _driver(full_name="Karel Kaart", email="karel@example.com")
    save_method(card_payer.account, localstripe, stripe_js.card())
    no_method, no_method_token = _driver(full_name="Nora Niks", email="nora@example.com")
    rated_session(card_payer.account.id, card_token.id, OCT, kwh="20")
    rated_session(no_method.account.id, no_method_token.id, OCT, kwh="12")
    _finance(client)
    _post(client, RUNS, {"period": "2026-10"})
    run = runs.run_for("2026-10")
    _post(client, f"{RUNS}/{run.id}/approve", {}, form_url=f"{RUNS}/{run.id}")

    _post(client, f"{RUNS}/{run.id}/finalize", {"confirm": "y"}, form_url=f"{RUNS}/{run.id}")

    db.session.expire_all()
    assert db.session.get(InvoiceRun, run.id).status == RunStatus.FINALIZED
    by_account = {invoice.account_id: invoice for invoice in db.session.scalars(select(Invoice))}
    paid, unpaid = by_account[card_payer.account.id], by_account[no_method.account.id]
    for invoice in (paid, unpaid):
        assert invoice.pdf and invoice.pdf.startswith(b"%PDF") and invoice.emailed_at is not None
    assert _subjects(mailbox, "karel@example.com") == ["Your invoice", "We received your payment"]
    assert paid.payment_state == PaymentState.PAID
    assert db.session.scalar(select(Payment).where(Payment.invoice_id == paid.id)).status == "succeeded"
    assert unpaid.payment_state == PaymentState.FAILED  # no method on file: dunning takes over
    # Each email says what is true for its reader: Karel's is collected; Nora is told how to pay, by when, and
    # gets no "payment failed" in the same second (her first reminder comes with dunning).
    karel = mailbox.to("karel@example.com")[0].get_body(("plain",)).get_content()
    assert "We collect it with your saved payment method" in karel and "no payment method" not in karel
    assert _subjects(mailbox, "nora@example.com") == ["Your invoice"]
    nora = mailbox.to("nora@example.com")[0].get_body(("plain",)).get_content()
    assert "We collect it" not in nora and "you have no payment method on file" in nora
    assert "Please pay it by " in nora and str(unpaid.due_date.year) in nora
    assert "http://localhost/balance" in nora  # absolute, on PUBLIC_BASE_URL
    # The structured payment reference the invoice prints (a Belgian seller's +++ communication), not its number.
    reference = unpaid.snapshot["payment"]["reference"]
    assert re.fullmatch(r"\+\+\+\d{3}/\d{4}/\d{5}\+\+\+", reference)
    assert f"with the reference {reference}" in nora and client.application.config["SELLER"]["iban"] in nora
    assert "billing.deliver" in _actions()
    page = client.get(f"{RUNS}/{run.id}").get_data(as_text=True)
    assert "Every invoice of the run is sent" in page and "Send invoices and collect payments" not in page

    # Delivering the same invoice again (a second click, a redelivered task) repeats nothing.
    assert deliver_invoice(paid.id) == {"invoice": paid.number, "documents": f"{paid.number}.pdf"}
    assert _subjects(mailbox, "karel@example.com") == ["Your invoice", "We received your payment"]
    assert len(db.session.scalars(select(Payment).where(Payment.invoice_id == paid.id)).all()) == 1


def test_an_invoice_stripe_could_not_be_asked_for_is_collected_by_sending_again(app, client, mailbox, localstripe):
    payer, token = _driver(full_name="Karel Kaart", email="karel@example.com")
    save_method(payer.account, localstripe, stripe_js.card())
    rated_session(payer.account.id, token.id, OCT, kwh="20")
    _finance(client)
    _post(client, RUNS, {"period": "2026-10"})
    run = runs.run_for("2026-10")
    _post(client, f"{RUNS}/{run.id}/approve", {}, form_url=f"{RUNS}/{run.id}")
    stripe_base = app.config["STRIPE_API_BASE"]
    app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"  # Stripe unreachable while the run is sent
    reset_stripe_client(app)
    try:
        _post(client, f"{RUNS}/{run.id}/finalize", {"confirm": "y"}, form_url=f"{RUNS}/{run.id}")
    finally:
        app.config["STRIPE_API_BASE"] = stripe_base
        reset_stripe_client(app)
    db.session.expire_all()
    invoice = db.session.scalar(select(Invoice))
    assert invoice.emailed_at is not None and invoice.payment_state == PaymentState.OPEN
    assert "1 invoice is not sent yet" in client.get(f"{RUNS}/{run.id}").get_data(as_text=True)

    _post(client, f"{RUNS}/{run.id}/deliver", {}, form_url=f"{RUNS}/{run.id}")

    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).payment_state == PaymentState.PAID
    assert _subjects(mailbox, "karel@example.com") == ["Your invoice", "We received your payment"]


def test_sending_is_refused_before_the_run_is_finalized(client):
    payg, token = _driver()
    rated_session(payg.account.id, token.id, OCT)
    _finance(client)
    _post(client, RUNS, {"period": "2026-10"})
    run = runs.run_for("2026-10")
    _post(client, f"{RUNS}/{run.id}/deliver", {}, form_url=f"{RUNS}/{run.id}")
    assert "The run is not finalized yet" in client.get(f"{RUNS}/{run.id}").get_data(as_text=True)
    assert "billing.deliver" not in _actions()


def test_a_credit_note_on_a_paid_invoice_is_sent_and_refunded(client, mailbox, localstripe):
    user, token = _driver(full_name="Greet Goodwill", email="greet@example.com")
    save_method(user.account, localstripe, stripe_js.card())
    rated_session(user.account.id, token.id, OCT)
    _finance(client)
    _post(client, RUNS, {"period": "2026-10"})
    run = runs.run_for("2026-10")
    _post(client, f"{RUNS}/{run.id}/approve", {}, form_url=f"{RUNS}/{run.id}")
    _post(client, f"{RUNS}/{run.id}/finalize", {"confirm": "y"}, form_url=f"{RUNS}/{run.id}")
    invoice = db.session.scalar(select(Invoice))
    assert invoice.payment_state == PaymentState.PAID
    page_url = f"/backoffice/finance/invoices/{invoice.number}"

    response = submit_form(
        client,
        f"{page_url}/credit",
        {
            "scope": "amount",
            "amount": "1.00",
            "customer_reason": "session_price",
            "reason": "late start",
            "confirm": "y",
        },
        form_url=page_url,
    )

    assert response.status_code == 302
    db.session.expire_all()
    note = db.session.scalar(select(Invoice).where(Invoice.kind == InvoiceKind.CREDIT_NOTE))
    assert note.emailed_at is not None and note.pdf.startswith(b"%PDF")
    sent = _subjects(mailbox, "greet@example.com")
    assert sent.count("Your credit note") == 1 and sent.count("Your invoice") == 1
    refund = db.session.scalar(select(Payment).where(Payment.invoice_id == note.id))
    assert (refund.kind, refund.amount_minor, refund.status) == ("refund", 121, "succeeded")

    # Finishing the delivery again changes nothing: one email, one refund.
    submit_form(
        client,
        f"/backoffice/finance/invoices/{note.number}/deliver",
        {},
        form_url=f"/backoffice/finance/invoices/{note.number}",
    )
    assert _subjects(mailbox, "greet@example.com") == sent
    assert len(db.session.scalars(select(Payment).where(Payment.invoice_id == note.id)).all()) == 1
    assert "invoice.deliver" in _actions()
