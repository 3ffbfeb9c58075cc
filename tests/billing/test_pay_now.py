"""The portal's open balance and "pay now" through the Flask test client (CSRF), against localstripe."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from app.audit.services import Actor
from app.billing.collection.services import collect_invoice
from app.billing.models import Payment, PaymentState
from app.cards import services as card_services
from app.cards.models import BlockReason, CardStatus, TokenUpdate
from app.extensions import db
from app.roaming.send.authorization import Standing, account_standing
from tests.billing.conftest import (
    DECLINED_ON_CHARGE,
    finalized_invoice,
    save_method,
    sepa_answers_processing,
)
from tests.factories import login, make_user
from tests.helpers import csrf_token_from, submit_form
from tests.payments import stripe_js
from tests.payments.emulator import PUBLISHABLE_KEY
from tests.webhooks.test_stripe import caught, deliver

pytestmark = pytest.mark.usefixtures("stripe_app")


def blocked_driver(localstripe, card=None):  # type: ignore[no-untyped-def]
    """A driver whose dunning ran out: invoice UNCOLLECTIBLE, cards blocked for payment."""
    user = make_user()
    save_method(user.account, localstripe, card or stripe_js.card(DECLINED_ON_CHARGE))
    token = card_services.issue_app_token(user.account, Actor.of(user))
    invoice = finalized_invoice(user.account.id, 1244)
    collect_invoice(invoice, attempt=1)
    invoice.payment_state = PaymentState.UNCOLLECTIBLE
    card_services.block_all_cards(user.account.id, BlockReason.PAYMENT, Actor.system("dunning"))
    db.session.commit()
    return user, invoice, token


def pay_json(client, **body):  # type: ignore[no-untyped-def]
    token = csrf_token_from(client.get("/balance").get_data(as_text=True))
    return client.post("/balance/pay", json=body, headers={"X-CSRFToken": token, "Accept": "application/json"})


def test_balance_page_lists_unpaid_invoices_and_offers_pay_now(client, localstripe):
    user, invoice, _ = blocked_driver(localstripe)
    login(client, user)
    response = client.get("/balance")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert invoice.number in html and "€12.44" in html
    assert "Pay now" in html and "Your charge cards are blocked" in html
    assert 'href="/balance"' in html  # the nav link
    assert f'<script src="{localstripe.js_url}"></script>' in html and "<script>" not in html


def test_pay_now_with_a_card_pays_and_unblocks_at_once(client, localstripe):
    user, invoice, token = blocked_driver(localstripe)
    save_method(user.account, localstripe, stripe_js.card())  # the driver fixed their card
    login(client, user)
    assert account_standing(user.account.id) == Standing.NO_CREDIT

    response = submit_form(client, "/balance/pay", {}, form_url="/balance", follow_redirects=True)

    assert "Thank you: your payment was received." in response.get_data(as_text=True)
    db.session.refresh(invoice)
    db.session.refresh(token)
    assert invoice.payment_state == PaymentState.PAID
    assert (token.status, token.block_reason) == (CardStatus.ACTIVE, None)
    last_update = db.session.scalars(
        select(TokenUpdate).where(TokenUpdate.card_id == token.id).order_by(TokenUpdate.id.desc())
    ).first()
    assert last_update.token["valid"] is True
    assert account_standing(user.account.id) == Standing.GOOD
    assert "You have nothing to pay right now." in client.get("/balance").get_data(as_text=True)


def test_pay_now_with_3d_secure_hands_the_client_secret_to_stripe_js(client, localstripe):
    user, invoice, token = blocked_driver(localstripe)
    save_method(user.account, localstripe, stripe_js.card(stripe_js.VISA_3DS))
    login(client, user)

    first = pay_json(client)
    body = first.get_json()
    assert first.status_code == 200 and body["status"] == "requires_action"
    assert body["client_secret"].startswith(body["payment_intent"] + "_secret_")
    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.UNCOLLECTIBLE  # nothing paid yet
    # What localstripe's Stripe.js confirmCardPayment() does when the driver completes 3-D Secure:
    requests.post(
        f"{localstripe.url}/v1/payment_intents/{body['payment_intent']}/_authenticate?success=true",
        json={"key": PUBLISHABLE_KEY, "client_secret": body["client_secret"]},
        timeout=10,
    ).raise_for_status()

    done = pay_json(client, payment_intent=body["payment_intent"])

    assert done.get_json()["status"] == "paid"
    assert done.get_json()["paid"] == [invoice.number]
    db.session.refresh(invoice)
    db.session.refresh(token)
    assert invoice.payment_state == PaymentState.PAID and token.status == CardStatus.ACTIVE


def test_a_failed_pay_now_keeps_the_cards_blocked(client, localstripe):
    user, invoice, token = blocked_driver(localstripe)
    login(client, user)
    body = pay_json(client).get_json()
    assert body["status"] == "failed" and "declined" in body["detail"].lower()
    db.session.refresh(invoice)
    db.session.refresh(token)
    assert invoice.payment_state == PaymentState.UNCOLLECTIBLE and token.status == CardStatus.BLOCKED


def test_pay_now_by_sepa_unblocks_when_the_webhook_confirms(client, localstripe, webhook_catcher, monkeypatch):
    user, invoice, token = blocked_driver(localstripe)
    save_method(user.account, localstripe, stripe_js.sepa(email=user.email))
    sepa_answers_processing(monkeypatch)
    login(client, user)

    body = pay_json(client).get_json()

    assert body["status"] == "processing"
    db.session.refresh(invoice)
    db.session.refresh(token)
    assert invoice.payment_state == PaymentState.PROCESSING and token.status == CardStatus.BLOCKED
    intent_id = db.session.scalars(
        select(Payment.stripe_id).where(Payment.invoice_id == invoice.id, Payment.status == "processing")
    ).one()
    event_body, signature = caught(webhook_catcher, "payment_intent.succeeded", intent_id)
    assert deliver(client, event_body, signature).status_code == 200

    db.session.refresh(invoice)
    db.session.refresh(token)
    assert invoice.payment_state == PaymentState.PAID
    assert (token.status, token.block_reason) == (CardStatus.ACTIVE, None)


def test_another_drivers_payment_intent_is_not_found(client, localstripe):
    owner, _, _ = blocked_driver(localstripe, stripe_js.card(stripe_js.VISA_3DS))
    login(client, owner)
    intent = pay_json(client).get_json()["payment_intent"]
    client.post("/logout", data={"csrf_token": csrf_token_from(client.get("/balance").get_data(as_text=True))})
    intruder = make_user()
    save_method(intruder.account, localstripe, stripe_js.card())
    login(client, intruder)
    assert pay_json(client, payment_intent=intent).status_code == 404
    assert pay_json(client, payment_intent="not-an-id").status_code == 400


def test_without_a_payment_method_the_driver_is_sent_to_add_one(client):
    user = make_user()
    finalized_invoice(user.account.id, 500)
    login(client, user)
    html = client.get("/balance").get_data(as_text=True)
    assert "Add a valid payment method to pay your open balance." in html and "Pay now" not in html
    response = submit_form(client, "/balance/pay", {}, form_url="/balance")
    assert response.status_code == 302 and response.headers["Location"].endswith("/payment-method")


def test_pay_now_needs_the_csrf_token_and_a_login(client, localstripe):
    assert client.get("/balance").status_code == 302
    user, invoice, _ = blocked_driver(localstripe)
    login(client, user)
    assert client.post("/balance/pay", data={}).status_code == 400
    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.UNCOLLECTIBLE
