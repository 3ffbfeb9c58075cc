"""The driver's billing pages: their invoices with PDF download, their session history with filters and CSV.
A driver reaches only their own invoices and sessions (404 otherwise)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select

from app.accounts.models import Role
from app.audit.services import Actor
from app.billing.invoicing import invoices
from app.billing.models import HoldStatus, Invoice, InvoiceKind, SessionHold
from app.cards import services as card_services
from app.extensions import db
from app.plans import services as plan_services
from tests.billing.sessions import rated_session
from tests.factories import login, make_user

FINANCE = Actor.system("test-finance")
OCT = dt.datetime(2026, 10, 10, 12, tzinfo=dt.UTC)


def _driver(**profile):  # type: ignore[no-untyped-def]
    user = make_user(**profile)
    for stretch in plan_services.history(user.account.id):
        db.session.delete(stretch)
    db.session.flush()
    plan_services.subscribe(
        user.account, plan_services.current_version("payg"), FINANCE, at=dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    )
    card = card_services.issue_app_token(user.account, Actor.of(user))
    return user, card


def _run(app, period: str = "2026-10") -> None:  # type: ignore[no-untyped-def]
    db.session.commit()
    cli = app.test_cli_runner()
    for args in (
        ["run", "--period", period, "--dry-run"],
        ["approve", "--period", period],
        ["run", "--period", period, "--no-deliver"],
    ):
        result = cli.invoke(args=["billing", *args])
        assert result.exit_code == 0, result.output


def _own_invoice(user) -> Invoice:  # type: ignore[no-untyped-def]
    return db.session.scalar(
        select(Invoice).where(Invoice.account_id == user.account.id, Invoice.kind == InvoiceKind.INVOICE)
    )


def test_invoice_list_shows_only_own_invoices(app, client):
    me, my_card = _driver(full_name="Mia Mine")
    other, other_card = _driver(full_name="Otto Other")
    rated_session(me.account.id, my_card.id, OCT)
    rated_session(other.account.id, other_card.id, OCT)
    _run(app)
    mine, theirs = _own_invoice(me), _own_invoice(other)
    note = invoices.credit_invoice(mine, FINANCE, "goodwill", amount_minor=100)
    login(client, me)
    page = client.get("/invoices").get_data(as_text=True)
    assert mine.number in page and note.number in page and theirs.number not in page
    assert "2026-10" in page and "To be paid" in page and "Credit note" in page
    assert f"/invoices/{mine.number}.pdf" in page
    assert "€9.50" in page  # 7.85 + 21 % VAT (1.65), formatted for the English locale
    assert mine.total_minor == 950
    assert 'href="/invoices"' in page and 'href="/sessions"' in page  # in the driver's navigation


def test_pdf_download_is_own_only_rendered_once_and_stored(app, client):
    me, my_card = _driver()
    other, other_card = _driver()
    rated_session(me.account.id, my_card.id, OCT)
    rated_session(other.account.id, other_card.id, OCT)
    _run(app)
    mine, theirs = _own_invoice(me), _own_invoice(other)
    login(client, me)
    assert client.get(f"/invoices/{theirs.number}.pdf").status_code == 404
    assert client.get("/invoices/INV-1999-999999.pdf").status_code == 404
    response = client.get(f"/invoices/{mine.number}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    db.session.expire_all()
    stored = db.session.get(Invoice, mine.id)
    assert stored.pdf == response.data and stored.pdf_rendered_at is not None
    assert db.session.get(Invoice, theirs.id).pdf is None
    assert client.get(f"/invoices/{mine.number}.pdf").data == response.data  # served as stored


def test_billing_pages_are_for_drivers(client):
    for url in ("/invoices", "/sessions", "/sessions.csv", "/invoices/INV-2026-000001.pdf"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    login(client, make_user(Role.FINANCE))
    assert client.get("/invoices").status_code == 302  # staff are sent to the back office


def test_session_history_filters_and_csv(app, client):
    me, app_card = _driver()
    second_card = card_services.issue_app_token(me.account, Actor.of(me))
    other, other_card = _driver()
    rated_session(me.account.id, app_card.id, dt.datetime(2026, 9, 20, 8, tzinfo=dt.UTC), kwh="10")
    _run(app, "2026-09")
    october_first = rated_session(me.account.id, app_card.id, OCT, kwh="20")
    rated_session(me.account.id, second_card.id, OCT + dt.timedelta(days=2), kwh="30", hours=2)
    held = rated_session(me.account.id, second_card.id, OCT + dt.timedelta(days=3), kwh="180", hours=2)
    db.session.add(SessionHold(session_charge_id=held.id, reasons=["energy"], status=HoldStatus.HELD))
    rated_session(other.account.id, other_card.id, OCT, kwh="77")
    login(client, me)

    page = client.get("/sessions").get_data(as_text=True)
    assert "4 sessions" in page and "77.00" not in page
    assert "Gent Zuid" in page and "Under review" in page and "On your next invoice" in page
    september_invoice = _own_invoice(me)
    assert september_invoice.number in page

    october = client.get("/sessions", query_string={"month": "2026-10"}).get_data(as_text=True)
    assert "3 sessions" in october and september_invoice.number not in october
    on_second = client.get("/sessions", query_string={"month": "2026-10", "card": second_card.id})
    assert "2 sessions" in on_second.get_data(as_text=True)
    foreign_card = client.get("/sessions", query_string={"card": other_card.id}).get_data(as_text=True)
    assert "0 sessions" in foreign_card
    assert client.get("/sessions", query_string={"month": "10-2026"}).status_code == 400
    for out_of_range in ("0000-01", "0001-01", "9999-12"):  # the month's bounds overflowed: a 500 before
        assert client.get("/sessions", query_string={"month": out_of_range}).status_code == 400
        assert client.get("/sessions.csv", query_string={"month": out_of_range}).status_code == 400
    assert client.get("/sessions", query_string={"card": "x"}).status_code == 400

    response = client.get("/sessions.csv", query_string={"month": "2026-10", "card": app_card.id})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 1
    row = rows[0]
    # CPO 20 × 0.30 + 0.50 = 6.50 excl. VAT; our fees 20 × 0.05 + 0.35 = 1.35; total 7.85 × 1.21 = 9.4985.
    # The driver's language is English: English headers and states, "," and "." (tests/billing/test_session_csv.py).
    assert (row["kWh"], row["Operator price excl. VAT"], row["Our fees excl. VAT"], row["VAT rate (%)"]) == (
        "20",
        "6.50",
        "1.35",
        "21",
    )
    assert row["Total incl. VAT"] == str(
        october_first.driver_incl_vat.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    )
    assert row["Duration (minutes)"] == "60" and row["Invoice"] == "" and row["State"] == "On your next invoice"
    everything = list(csv.DictReader(io.StringIO(client.get("/sessions.csv").get_data(as_text=True))))
    assert len(everything) == 4
    assert {r["Invoice"] for r in everything} == {september_invoice.number, ""}
    assert {r["State"] for r in everything} == {"Invoiced", "On your next invoice", "Under review"}
