"""Finance pages as finance reads them: the latest month by default, names and words instead of codes, times in
the seller's zone with its label, signed percentages, confirmation of what cannot be undone, and an honest
account of a finalize that ran inline (no workers)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app.accounts.models import Role
from app.audit.services import Actor
from app.billing.models import Invoice, InvoiceRun, RunStatus, SessionHold
from app.billing.runs import services as runs
from app.cards import services as card_services
from app.cards.models import Card, CardStatus
from app.extensions import db
from app.plans import services as plan_services
from app.roaming.models import Partner
from tests.billing.sessions import rated_session
from tests.factories import add_stock, login, make_user
from tests.helpers import submit_form

SEPT = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
OCT = dt.datetime(2026, 10, 10, 12, tzinfo=dt.UTC)
RUNS = "/backoffice/finance/runs"
SYSTEM = Actor.system("test-finance")


def _driver(full_name: str = "Dana Driver", **profile):  # type: ignore[no-untyped-def]
    user = make_user(full_name=full_name, **profile)
    for stretch in plan_services.history(user.account.id):
        db.session.delete(stretch)
    db.session.flush()
    plan_services.subscribe(user.account, plan_services.current_version("payg"), SYSTEM, at=SEPT)
    card = card_services.issue_app_token(user.account, Actor.of(user))
    return user, card


def _approved_run(client, user, card) -> InvoiceRun:  # type: ignore[no-untyped-def]
    rated_session(user.account.id, card.id, OCT)
    login(client, make_user(Role.ADMIN))
    submit_form(client, RUNS, {"period": "2026-10"})
    run = runs.run_for("2026-10")
    assert run is not None
    submit_form(client, f"{RUNS}/{run.id}/approve", {}, form_url=f"{RUNS}/{run.id}")
    assert run.status == RunStatus.APPROVED
    return run


def test_finalizing_asks_for_confirmation_and_then_says_what_happened(client):
    user, card = _driver()
    run = _approved_run(client, user, card)
    page = client.get(f"{RUNS}/{run.id}").get_data(as_text=True)
    assert 'name="confirm"' in page and "I understand that this cannot be undone." in page

    refused = submit_form(client, f"{RUNS}/{run.id}/finalize", {}, form_url=f"{RUNS}/{run.id}", follow_redirects=True)
    assert "Tick “I understand” to confirm" in refused.get_data(as_text=True)
    db.session.refresh(run)
    assert run.status == RunStatus.APPROVED and db.session.scalar(select(Invoice.id)) is None

    # No workers here (Celery eager): the run is finished when the page comes back, and the page says so.
    done = submit_form(
        client, f"{RUNS}/{run.id}/finalize", {"confirm": "y"}, form_url=f"{RUNS}/{run.id}", follow_redirects=True
    )
    text = done.get_data(as_text=True)
    db.session.refresh(run)
    assert run.status == RunStatus.FINALIZED
    assert "Run finalized: 1 invoice(s)" in text and "progress is shown below" not in text
    # Times carry their zone; plans are named.
    assert "CET" in text or "CEST" in text
    assert "Pay as you go (v1)" in text and "payg v1" not in text


def test_a_credit_note_needs_the_confirmation(client):
    user, card = _driver()
    run = _approved_run(client, user, card)
    submit_form(client, f"{RUNS}/{run.id}/finalize", {"confirm": "y"}, form_url=f"{RUNS}/{run.id}")
    invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == user.account.id))
    page_url = f"/backoffice/finance/invoices/{invoice.number}"
    data = {"scope": "full", "customer_reason": "goodwill", "reason": "asked nicely"}
    refused = submit_form(client, f"{page_url}/credit", data, form_url=page_url)
    assert refused.status_code == 400
    assert "Tick “I understand” to confirm" in refused.get_data(as_text=True)
    assert db.session.scalar(select(Invoice.id).where(Invoice.credits_invoice_id == invoice.id)) is None
    issued = submit_form(client, f"{page_url}/credit", {**data, "confirm": "y"}, form_url=page_url)
    assert issued.status_code == 302
    assert db.session.scalar(select(Invoice.id).where(Invoice.credits_invoice_id == invoice.id)) is not None


def test_search_and_margin_open_on_the_latest_month_with_names_and_signs(app, client):
    user, card = _driver(full_name="Jan Peeters")
    db.session.add(Partner(name="Test Charging BV", country_code="NL", party_id="TCP"))
    run = _approved_run(client, user, card)
    submit_form(client, f"{RUNS}/{run.id}/finalize", {"confirm": "y"}, form_url=f"{RUNS}/{run.id}")
    invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == user.account.id))

    search = client.get("/backoffice/finance/invoices").get_data(as_text=True)
    assert f">{invoice.number}</a>" in search and "2026-10" in search
    by_name = client.get("/backoffice/finance/invoices?name=peeTERS").get_data(as_text=True)
    assert f">{invoice.number}</a>" in by_name
    assert f">{invoice.number}</a>" not in client.get("/backoffice/finance/invoices?name=janssens").get_data(
        as_text=True
    )

    margin = client.get("/backoffice/finance/margin").get_data(as_text=True)
    assert 'value="2026-10"' in margin
    assert "Test Charging BV" in margin and "NL*TCP" in margin
    assert "+" in margin.split("Test Charging BV", 1)[1].split("</tr>", 1)[0]  # the margin % has its sign
    in_dutch = client.get("/backoffice/finance/margin?lang=nl").get_data(as_text=True)
    assert "\xa0%" in in_dutch


def test_held_sessions_name_the_customer_and_link_the_account(client):
    user, card = _driver(full_name="Hanna Held")
    rated_session(user.account.id, card.id, OCT, kwh="180", hours=2)
    login(client, make_user(Role.ADMIN))
    submit_form(client, RUNS, {"period": "2026-10"})
    assert db.session.scalar(select(SessionHold.id)) is not None
    page = client.get("/backoffice/finance/holds").get_data(as_text=True)
    assert "Hanna Held" in page and f'href="/backoffice/support/accounts/{user.account.id}"' in page


def test_replacing_a_card_or_changing_a_plan_asks_for_confirmation(client):
    user, _token = _driver()
    add_stock(1, start=901)
    card = card_services.order_card(user.account, SYSTEM)
    card_services.ship_card(card, SYSTEM)
    login(client, make_user(Role.SUPPORT))
    page_url = f"/backoffice/support/accounts/{user.account.id}"
    assert "I understand that the old card stops working for good." in client.get(page_url).get_data(as_text=True)

    replace = f"/backoffice/support/cards/{card.id}/replace"
    refused = submit_form(client, replace, {"note-note": "broken"}, form_url=page_url, prefix="note-")
    assert refused.status_code == 302
    assert card.status == CardStatus.SHIPPED
    assert db.session.scalar(select(Card.id).where(Card.replaces_card_id == card.id)) is None

    comfort = plan_services.current_version("comfort")
    plan = f"{page_url}/plan"
    submit_form(client, plan, {"plan_id": str(comfort.id), "note-note": "asked"}, form_url=page_url, prefix="note-")
    assert plan_services.plan_at(user.account.id, dt.datetime.now(dt.UTC)).code == "payg"

    submit_form(client, replace, {"note-note": "broken", "confirm": "y"}, form_url=page_url, prefix="note-")
    assert card.status == CardStatus.REPLACED
