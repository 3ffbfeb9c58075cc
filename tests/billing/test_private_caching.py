"""Pen test, issue 12 (6): what carries a driver's private data (invoice PDF, sessions CSV, data export, the
pages of a logged-in driver) is sent with ``Cache-Control: no-store``, so neither the browser's disk cache of a
shared computer nor a proxy keeps it. Public pages and static files stay cacheable."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app.audit.services import Actor
from app.billing.models import Invoice, InvoiceKind
from app.cards import services as card_services
from app.extensions import db
from app.plans import services as plan_services
from tests.billing.sessions import rated_session
from tests.factories import login, make_user

OCT = dt.datetime(2026, 10, 10, 12, tzinfo=dt.UTC)


def _not_stored(response) -> bool:  # type: ignore[no-untyped-def]
    return response.headers.get("Cache-Control") == "no-store" and response.headers.get("Pragma") == "no-cache"


def _driver_with_an_invoice(app):  # type: ignore[no-untyped-def]
    user = make_user()
    for stretch in plan_services.history(user.account.id):
        db.session.delete(stretch)
    db.session.flush()
    plan_services.subscribe(
        user.account,
        plan_services.current_version("payg"),
        Actor.system("test"),
        at=dt.datetime(2026, 9, 1, tzinfo=dt.UTC),
    )
    card = card_services.issue_app_token(user.account, Actor.of(user))
    rated_session(user.account.id, card.id, OCT)
    db.session.commit()
    cli = app.test_cli_runner()
    for args in (
        ["run", "--period", "2026-10", "--dry-run"],
        ["approve", "--period", "2026-10"],
        ["run", "--period", "2026-10", "--no-deliver"],
    ):
        assert cli.invoke(args=["billing", *args]).exit_code == 0
    invoice = db.session.scalar(
        select(Invoice).where(Invoice.account_id == user.account.id, Invoice.kind == InvoiceKind.INVOICE)
    )
    return user, invoice


def test_invoice_pdf_and_sessions_csv_are_not_stored(app, client):
    user, invoice = _driver_with_an_invoice(app)
    login(client, user)
    pdf = client.get(f"/invoices/{invoice.number}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert _not_stored(pdf)
    csv = client.get("/sessions.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert _not_stored(csv)


def test_data_export_and_the_logged_in_pages_are_not_stored(client):
    login(client, make_user())
    for url in ("/account/export.json", "/dashboard", "/profile", "/invoices", "/sessions"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert _not_stored(response), url


def test_public_pages_and_static_files_stay_cacheable(client):
    assert not _not_stored(client.get("/login"))
    login(client, make_user())
    assert not _not_stored(client.get("/static/css/app.css"))
