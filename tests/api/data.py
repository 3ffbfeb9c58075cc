"""A driver with something of everything the API shows: cards in several states, an app token, rated sessions over
two months, invoices, a payment method, a published location with a tariff. Built through the services."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import select

from app.audit.services import Actor
from app.billing.models import Invoice
from app.cards import services as card_services
from app.cards.models import Card
from app.extensions import db
from app.plans import services as plan_services
from app.rating.models import SessionCharge
from app.roaming.models import Location
from app.roaming.receive.locations import upsert_location
from app.roaming.receive.tariffs import store_tariff
from tests.api.helpers import SignedIn
from tests.billing.conftest import save_method
from tests.billing.sessions import rated_session
from tests.factories import add_stock, give_payment_method, one_connector_location
from tests.payments import stripe_js
from tests.payments.emulator import LocalStripe

ESTIMATE_TARIFF = {
    "country_code": "NL",
    "party_id": "TCP",
    "id": "API-EST",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.40, "vat": 21.0, "step_size": 1},
                {"type": "FLAT", "price": 0.25, "vat": 21.0, "step_size": 1},
            ]
        }
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}


@dataclass
class History:
    active_card: Card
    shipped_card: Card
    app_token: Card
    sessions: list[SessionCharge]
    invoice: Invoice | None
    location: Location | None


def run_month(app: Flask, period: str) -> None:
    """The monthly invoice run for ``period``, as finance runs it (preview, approve, finalize; no delivery)."""
    db.session.commit()
    cli = app.test_cli_runner()
    for args in (["run", "--period", period, "--dry-run"], ["approve", "--period", period]):
        result = cli.invoke(args=["billing", *args])
        assert result.exit_code == 0, result.output
    result = cli.invoke(args=["billing", "run", "--period", period, "--no-deliver"])
    assert result.exit_code == 0, result.output


def build_history(
    app: Flask,
    who: SignedIn,
    *,
    localstripe: LocalStripe | None = None,
    stock_start: int = 1,
    with_location: bool = True,
    invoice_run: bool = True,
) -> History:
    """Everything of one driver; the payment method saved through the emulator when there is one (pay-now works),
        else recorded directly. October 2026 is invoiced by the monthly run (``invoice_run=False``: the caller runs it
    once for several drivers, then calls :func:`october_invoice`)."""
    account = who.account
    actor = Actor.of(who.user)
    for stretch in plan_services.history(account.id):  # the plan in force since January: sessions back then rate
        stretch.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    add_stock(3, start=stock_start)
    if localstripe is not None:
        save_method(account, localstripe, stripe_js.card())
    else:
        give_payment_method(account)
    active = card_services.ship_card(card_services.order_card(account, actor, label="Car"), Actor.system("test"))
    card_services.activate_card(account, active.visual_number or "", actor)
    shipped = card_services.ship_card(card_services.order_card(account, actor, label="Spare"), Actor.system("test"))
    app_token = card_services.issue_app_token(account, actor)
    sessions = [
        rated_session(account.id, active.id, dt.datetime(2026, 10, day, 8, tzinfo=dt.UTC), kwh=str(10 + day))
        for day in (3, 12, 25)
    ] + [rated_session(account.id, app_token.id, dt.datetime(2026, 11, 2, 18, tzinfo=dt.UTC), kwh="7.5")]
    location = None
    if with_location:
        store_tariff(ESTIMATE_TARIFF, partner=None, country_code="NL", party_id="TCP")
        location = upsert_location(one_connector_location("API-EST"), partner=None, country_code="NL", party_id="TCP")
    history = History(active, shipped, app_token, sessions, None, location)
    if invoice_run:
        run_month(app, "2026-10")
        history.invoice = october_invoice(who)
    return history


def october_invoice(who: SignedIn) -> Invoice:
    invoice = db.session.scalar(
        select(Invoice).where(Invoice.account_id == who.account.id, Invoice.period == "2026-10")
    )
    assert invoice is not None and invoice.number
    return invoice
