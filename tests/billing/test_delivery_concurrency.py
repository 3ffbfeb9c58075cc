"""Two deliveries of the same invoice at the same time (a second click on "Send invoices", a task delivered
twice) send one email: the email step claims the invoice in the transaction that commits after sending. Runs
on committed data in the configured database, with real threads and connections (PostgreSQL in CI's second
run), and empties the tables afterwards like the live-server tests."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from app.billing.documents import delivery
from app.billing.models import Invoice, PaymentState
from app.extensions import db
from tests.billing.conftest import finalized_invoice
from tests.browser.conftest import _wipe_tables
from tests.factories import make_user


def test_two_deliveries_at_once_send_one_email(app, mailbox, monkeypatch):
    from app.plans.services import seed_default_plans

    with app.app_context():
        seed_default_plans()
        user = make_user(email="once@example.com")
        invoice = finalized_invoice(user.account.id, 0)  # nothing to collect: only documents and email
        invoice_id = invoice.id
        db.session.commit()
    sent: list[str] = []
    real_send = delivery.send_template

    def slow_send(to: str, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        time.sleep(0.3)  # the SMTP conversation: long enough for the other delivery to arrive meanwhile
        sent.append(to)
        real_send(to, *args, **kwargs)

    monkeypatch.setattr(delivery, "send_template", slow_send)
    monkeypatch.setattr(delivery, "_documents", lambda invoice: [("x.pdf", b"%PDF-1.7", "application/pdf")])
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def deliver() -> None:
        try:
            with app.app_context():
                start.wait(timeout=10)
                delivery.deliver_invoice(invoice_id)
                db.session.remove()
        except BaseException as error:  # reported by the test thread below
            errors.append(error)

    try:
        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        assert sent == ["once@example.com"]
        assert len(mailbox.to("once@example.com")) == 1
        with app.app_context():
            stored = db.session.scalar(select(Invoice).where(Invoice.id == invoice_id))
            assert stored.emailed_at is not None and stored.payment_state == PaymentState.NOT_DUE
    finally:
        _wipe_tables(app)
