"""The account's own resources through the API: profile and language, plan, payment method (Stripe emulator)."""

from __future__ import annotations

import datetime as dt

from flask import Flask
from flask.testing import FlaskClient

from app.db import utcnow
from app.extensions import db
from app.payments.models import PaymentMethodStatus
from app.payments.services import active_payment_method
from app.plans import services as plan_services
from tests.api.helpers import SignedIn, call, problem
from tests.payments import stripe_js
from tests.payments.emulator import LocalStripe


def test_the_profile_reads_and_changes_only_what_is_sent(client: FlaskClient, driver: SignedIn) -> None:
    me = call(client, "GET", "/api/v1/me", driver).get_json()
    assert me["full_name"] == "Ann Driver" and me["language"] == "en" and me["email"] == driver.user.email
    changed = call(client, "PATCH", "/api/v1/me", driver, json={"language": "nl", "city": "  Gent "})
    assert changed.status_code == 200, changed.get_json()
    assert {key: changed.get_json()[key] for key in ("language", "city", "street")} == {
        "language": "nl",
        "city": "Gent",  # cleaned by accounts.services, as on the portal
        "street": "Meir 10",
    }
    business = call(
        client, "PATCH", "/api/v1/me", driver, json={"company_name": "Peeters BV", "vat_number": "be 0403.170.701"}
    ).get_json()
    assert business["is_business"] is True and business["vat_number"] == "BE0403170701"
    problem(call(client, "PATCH", "/api/v1/me", driver, json={"street": ""}), 422, "validation_failed")


def test_the_plan_its_options_a_switch_and_cancelling_a_scheduled_one(client: FlaskClient, driver: SignedIn) -> None:
    for stretch in plan_services.history(driver.account.id):
        stretch.starts_at = utcnow() - dt.timedelta(days=40)
    db.session.flush()
    state = call(client, "GET", "/api/v1/plan", driver).get_json()
    assert state["current"]["code"] == "payg" and state["scheduled_change"] is None
    options = {plan["code"]: plan for plan in state["options"]}
    assert set(options) == {"payg", "comfort"}  # business is for companies
    assert options["comfort"]["monthly_fee"] == {"amount_minor": 499, "currency": "EUR"}
    assert options["payg"]["markup_per_kwh"] == {"amount": "0.0500", "currency": "EUR"}

    upgraded = call(client, "POST", "/api/v1/plan", driver, json={"code": "comfort"}).get_json()
    assert upgraded["current"]["code"] == "comfort" and upgraded["scheduled_change"] is None  # dearer: at once
    downgrade = call(client, "POST", "/api/v1/plan", driver, json={"code": "payg"}).get_json()
    assert downgrade["current"]["code"] == "comfort"
    assert downgrade["scheduled_change"]["plan"]["code"] == "payg"  # cheaper: from the 1st of next month
    kept = call(client, "DELETE", "/api/v1/plan/scheduled-change", driver).get_json()
    assert kept["current"]["code"] == "comfort" and kept["scheduled_change"] is None
    problem(call(client, "DELETE", "/api/v1/plan/scheduled-change", driver), 404, "no_scheduled_change")
    problem(call(client, "POST", "/api/v1/plan", driver, json={"code": "business"}), 409, "plan_refused")
    problem(call(client, "POST", "/api/v1/plan", driver, json={"code": "platinum"}), 422, "plan_not_found")


def test_the_plan_names_follow_the_account_language(client: FlaskClient, driver: SignedIn) -> None:
    driver.account.language = "nl"
    db.session.flush()
    assert call(client, "GET", "/api/v1/plan", driver).get_json()["current"]["name"] == "Betalen per gebruik"


def test_a_payment_method_through_a_setup_intent(
    client: FlaskClient, driver: SignedIn, localstripe: LocalStripe, stripe_app: Flask
) -> None:
    assert call(client, "GET", "/api/v1/payment-method", driver).get_json() == {
        "method": None,
        "usable": False,
        "required_for_activation": True,
    }
    created = call(client, "POST", "/api/v1/payment-method/setup-intent", driver, json={"method_type": "card"})
    assert created.status_code == 201, created.get_json()
    intent = created.get_json()
    assert intent["client_secret"].startswith(intent["setup_intent_id"]) and intent["publishable_key"]
    problem(
        call(
            client,
            "POST",
            "/api/v1/payment-method/confirm",
            driver,
            json={"setup_intent_id": intent["setup_intent_id"]},
        ),
        409,
        "setup_intent_not_confirmed",
    )  # the app has not confirmed it with Stripe yet
    # What Stripe's SDK does in the app with the card the driver typed.
    assert stripe_js.confirm_setup_intent(localstripe, intent["client_secret"], stripe_js.card()).status_code == 200
    confirmed = call(
        client, "POST", "/api/v1/payment-method/confirm", driver, json={"setup_intent_id": intent["setup_intent_id"]}
    )
    assert confirmed.status_code == 200, confirmed.get_json()
    state = confirmed.get_json()
    assert state["usable"] is True and state["method"]["last4"] == "4242" and state["method"]["type"] == "card"
    method = active_payment_method(driver.account.id)
    assert method is not None and method.status == PaymentMethodStatus.ACTIVE
    problem(
        call(client, "POST", "/api/v1/payment-method/confirm", driver, json={"setup_intent_id": "seti_unknown123"}),
        404,
        "setup_intent_not_found",
    )


def test_someone_elses_setup_intent_is_not_found(
    client: FlaskClient, driver: SignedIn, other_driver: SignedIn, localstripe: LocalStripe, stripe_app: Flask
) -> None:
    theirs = call(client, "POST", "/api/v1/payment-method/setup-intent", other_driver, json={"method_type": "card"})
    stripe_js.confirm_setup_intent(localstripe, theirs.get_json()["client_secret"], stripe_js.card())
    call(client, "POST", "/api/v1/payment-method/setup-intent", driver, json={"method_type": "card"})
    problem(
        call(
            client,
            "POST",
            "/api/v1/payment-method/confirm",
            driver,
            json={"setup_intent_id": theirs.get_json()["setup_intent_id"]},
        ),
        404,
        "setup_intent_not_found",
    )
    assert active_payment_method(driver.account.id) is None
