"""The driver's dashboard: charging now (live sessions from the CPOs' Sessions), the cards, the plan, the latest
invoices and what is still to pay — each from the real data, in the driver's language."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from app.billing.models import PaymentState
from app.charging.models import ChargingSession
from app.charging.services import live_sessions_of
from app.db import utcnow
from app.extensions import db
from app.plans import services as plan_services
from app.roaming.receive.locations import upsert_location
from tests.billing.conftest import finalized_invoice
from tests.factories import login, make_user, one_connector_location
from tests.roaming.token_fixtures import card_in


def _session(
    account_id: int, card_id: int, ocpi_id: str, status: str, started: dt.datetime, kwh: str
) -> ChargingSession:
    row = ChargingSession(
        country_code="NL",
        party_id="TCP",
        ocpi_id=ocpi_id,
        card_id=card_id,
        account_id=account_id,
        status=status,
        start_date_time=started,
        kwh=Decimal(kwh),
        location_ocpi_id="LOC-EST",
        evse_uid="E1",
        connector_id="1",
        currency="EUR",
        data={},
        last_updated=utcnow(),
    )
    db.session.add(row)
    db.session.flush()
    return row


def test_charging_now_lists_only_sessions_under_way(db_session):
    from app.cards.models import CardStatus

    card = card_in(CardStatus.ACTIVE)
    now = utcnow()
    _session(card.account_id, card.id, "S-ACTIVE", "ACTIVE", now - dt.timedelta(minutes=40), "12.5")
    _session(card.account_id, card.id, "S-PENDING", "PENDING", now - dt.timedelta(minutes=1), "0")
    _session(card.account_id, card.id, "S-DONE", "COMPLETED", now - dt.timedelta(hours=3), "30")
    _session(card.account_id, card.id, "S-ZOMBIE", "ACTIVE", now - dt.timedelta(days=3), "8")  # never closed
    assert [live.status for live in live_sessions_of(card.account_id, now)] == ["PENDING", "ACTIVE"]


def test_dashboard_shows_live_session_cards_plan_and_invoices_in_the_drivers_language(client, db_session):
    from app.cards.models import CardStatus

    upsert_location(one_connector_location("T1"), partner=None, country_code="NL", party_id="TCP")
    user = make_user(full_name="Lies Laadpaal", language="nl")
    card = card_in(CardStatus.ACTIVE, user=user)
    _session(user.account.id, card.id, "S-1", "ACTIVE", utcnow() - dt.timedelta(minutes=25), "7.25")
    invoice = finalized_invoice(user.account.id, 1244)
    invoice.payment_state = PaymentState.FAILED
    db.session.commit()
    login(client, user)

    page = client.get("/dashboard?lang=nl").get_data(as_text=True)

    assert "Utrecht" in page and "7,25 kWh" in page  # the location as published, kWh in Dutch notation
    assert card.visual_number in page
    plan = plan_services.plan_at(user.account.id, utcnow())
    assert plan is not None and plan.name_in("nl") in page  # the plan's name in the account's language
    assert page.index("7,25 kWh") < page.index(card.visual_number)  # charging now comes first
    assert invoice.number in page and "12,44" in page and 'href="/balance"' in page.split("<h1>")[1]


def test_dashboard_without_cards_or_invoices_says_what_to_do(client, db_session):
    user = make_user(full_name="Nieuwe Klant")
    login(client, user)
    page = client.get("/dashboard?lang=en").get_data(as_text=True)
    assert "You have no charge card yet." in page and "Order one" in page
    assert "No invoices yet." in page and "Charging now" not in page
