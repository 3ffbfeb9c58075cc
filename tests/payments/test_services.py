"""Payment services against the localstripe emulator (real HTTP, real Stripe library)."""

from __future__ import annotations

import datetime as dt

import pytest
import requests

from app.extensions import db
from app.payments import services
from app.payments.models import PaymentMethod, PaymentMethodStatus, StripeCustomer
from app.payments.stripe_client import reset_stripe_client, stripe_client
from tests.factories import make_user
from tests.payments import stripe_js
from tests.payments.emulator import API_KEY


def _stripe_get(localstripe, path: str, **params: str) -> dict:  # type: ignore[no-untyped-def]
    response = requests.get(f"{localstripe.url}/v1/{path}", params=params, auth=(API_KEY, ""), timeout=10)
    response.raise_for_status()
    return response.json()


def _saved(account, localstripe, data) -> PaymentMethod:  # type: ignore[no-untyped-def]
    info = services.create_setup_intent(account, data["type"])
    assert stripe_js.confirm_setup_intent(localstripe, info.client_secret, data).status_code == 200
    return services.record_setup_intent_result(account, info.id)


def test_customer_is_created_once_with_account_metadata(db_session, localstripe):
    user = make_user(email="customer.once@example.com")
    first = services.ensure_customer(user.account)
    second = services.ensure_customer(user.account)
    assert first is second
    assert db.session.query(StripeCustomer).filter_by(account_id=user.account.id).count() == 1
    found = _stripe_get(localstripe, "customers", email="customer.once@example.com")["data"]
    assert [customer["id"] for customer in found] == [first.stripe_customer_id]
    assert found[0]["metadata"] == {"account_id": str(user.account.id)}
    assert found[0]["name"] == "Jan Janssens"


def test_card_setup_is_recorded_and_made_the_default(db_session, localstripe):
    account = make_user().account
    method = _saved(account, localstripe, stripe_js.card(exp_month=4, exp_year=2031))
    assert (method.method_type, method.brand, method.last4, method.exp_month, method.exp_year) == (
        "card",
        "visa",
        "4242",
        4,
        2031,
    )
    assert method.status == PaymentMethodStatus.ACTIVE
    assert services.active_payment_method(account.id) is method
    assert services.has_valid_payment_method(account.id)
    customer = services.stripe_customer_of(account.id)
    at_stripe = _stripe_get(localstripe, f"customers/{customer.stripe_customer_id}")
    assert at_stripe["invoice_settings"]["default_payment_method"] == method.stripe_payment_method_id
    assert (
        _stripe_get(localstripe, f"payment_methods/{method.stripe_payment_method_id}")["customer"]
        == customer.stripe_customer_id
    )


def test_recording_the_same_setup_intent_twice_is_a_no_op(db_session, localstripe):
    account = make_user().account
    info = services.create_setup_intent(account, "card")
    stripe_js.confirm_setup_intent(localstripe, info.client_secret, stripe_js.card())
    first = services.record_setup_intent_result(account, info.id)
    again = services.record_setup_intent_result(account, info.id)
    assert again is first
    assert db.session.query(PaymentMethod).filter_by(account_id=account.id).count() == 1


def test_sepa_mandate_is_recorded_with_iban_last4(db_session, localstripe):
    account = make_user().account
    method = _saved(account, localstripe, stripe_js.sepa())
    assert (method.method_type, method.brand, method.last4, method.exp_month) == ("sepa_debit", None, "3000", None)
    assert services.has_valid_payment_method(account.id)


def test_replacing_keeps_one_active_method_and_detaches_the_old_one(db_session, localstripe):
    account = make_user().account
    old = _saved(account, localstripe, stripe_js.card())
    new = _saved(account, localstripe, stripe_js.sepa())
    assert old.status == PaymentMethodStatus.REPLACED and old.replaced_at is not None
    assert new.status == PaymentMethodStatus.ACTIVE
    actives = db.session.query(PaymentMethod).filter_by(account_id=account.id, status=PaymentMethodStatus.ACTIVE)
    assert actives.all() == [new]
    assert services.detach_replaced_methods(account.id) == 1
    assert old.status == PaymentMethodStatus.DETACHED
    assert _stripe_get(localstripe, f"payment_methods/{old.stripe_payment_method_id}")["customer"] is None
    assert services.detach_replaced_methods(account.id) == 0  # idempotent


def test_expired_card_is_not_a_valid_payment_method(db_session, localstripe, app):
    account = make_user().account
    # localstripe refuses expiry years before 2019; January 2020 is long gone.
    _saved(account, localstripe, stripe_js.card(exp_month=1, exp_year=2020))
    assert services.active_payment_method(account.id) is not None
    assert not services.has_valid_payment_method(account.id)
    assert services.has_valid_payment_method(account.id, today=dt.date(2020, 1, 31))  # valid through its month
    assert not services.has_valid_payment_method(account.id, today=dt.date(2020, 2, 1))
    assert not services.may_activate_cards(account.id)
    app.config["REQUIRE_PAYMENT_METHOD_FOR_ACTIVATION"] = False
    try:
        assert services.may_activate_cards(account.id)
    finally:
        app.config["REQUIRE_PAYMENT_METHOD_FOR_ACTIVATION"] = True


def test_no_method_means_no_activation(db_session):
    account = make_user().account
    assert services.active_payment_method(account.id) is None
    assert not services.has_valid_payment_method(account.id)
    assert not services.may_activate_cards(account.id)


def test_setup_intent_of_another_account_is_refused(db_session, localstripe):
    owner = make_user().account
    intruder = make_user().account
    services.ensure_customer(intruder)
    info = services.create_setup_intent(owner, "card")
    stripe_js.confirm_setup_intent(localstripe, info.client_secret, stripe_js.card())
    with pytest.raises(services.PaymentError) as refused:
        services.record_setup_intent_result(intruder, info.id)
    assert refused.value.code == "not_found"
    assert db.session.query(PaymentMethod).count() == 0


@pytest.mark.parametrize(
    ("data", "stripe_status"),
    [
        (None, 200),  # never confirmed in the browser
        (stripe_js.card(stripe_js.VISA_DECLINED), 402),
        (stripe_js.card(stripe_js.VISA_3DS), 200),  # stopped at 3-D Secure (requires_action)
    ],
)
def test_setup_intent_that_did_not_succeed_stores_nothing(db_session, localstripe, data, stripe_status):
    account = make_user().account
    info = services.create_setup_intent(account, "card")
    if data is not None:
        assert stripe_js.confirm_setup_intent(localstripe, info.client_secret, data).status_code == stripe_status
    with pytest.raises(services.PaymentError) as refused:
        services.record_setup_intent_result(account, info.id)
    assert refused.value.code == "not_ready"
    assert services.active_payment_method(account.id) is None


@pytest.mark.parametrize("bad_id", ["", "pm_123", "seti_../../customers", "seti_" + "x" * 200])
def test_malformed_setup_intent_ids_are_refused_before_calling_stripe(db_session, bad_id):
    account = make_user().account
    with pytest.raises(services.PaymentError) as refused:
        services.record_setup_intent_result(account, bad_id)
    assert refused.value.code == "invalid"


def test_unknown_setup_intent_is_not_found(db_session):
    account = make_user().account
    services.ensure_customer(account)
    with pytest.raises(services.PaymentError) as refused:
        services.record_setup_intent_result(account, "seti_doesnotexist1")
    assert refused.value.code == "not_found"


def test_unsupported_method_type_is_refused(db_session):
    with pytest.raises(services.PaymentError) as refused:
        services.create_setup_intent(make_user().account, "ideal")  # type: ignore[arg-type]
    assert refused.value.code == "invalid"


def test_stripe_unreachable_is_a_clear_error(db_session, app):
    account = make_user().account
    app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"  # discard port: connection refused
    with pytest.raises(services.PaymentError) as refused:
        services.ensure_customer(account)
    assert refused.value.code == "unavailable"
    assert "try again" in refused.value.message
    assert services.stripe_customer_of(account.id) is None


def test_client_follows_config_changes(app, localstripe):
    with app.app_context():
        client = stripe_client()
        assert stripe_client() is client
        reset_stripe_client(app)
        assert stripe_client() is not client


def _forget_mandate(method: PaymentMethod) -> str | None:
    """Make a saved SEPA method look like one saved before mandate references were recorded."""
    recorded = method.mandate_reference
    method.mandate_reference = None
    db.session.commit()
    return recorded


def test_backfill_fills_in_the_mandate_of_older_sepa_methods(db_session, localstripe, app):
    sepa_account, card_account = make_user().account, make_user(email="card.only@example.com").account
    sepa = _saved(sepa_account, localstripe, stripe_js.sepa())
    _saved(card_account, localstripe, stripe_js.card())
    recorded = _forget_mandate(sepa)
    at_stripe = _stripe_get(localstripe, f"payment_methods/{sepa.stripe_payment_method_id}")
    assert recorded and recorded == at_stripe["sepa_debit"]["mandate_reference"]

    assert services.sepa_methods_without_mandate() == [sepa]  # cards have no mandate to look for
    result = app.test_cli_runner().invoke(args=["payments", "backfill-mandates"])
    assert result.exit_code == 0, result.output
    assert "mandate references filled in: 1" in result.output
    assert db.session.get(PaymentMethod, sepa.id).mandate_reference == recorded
    assert services.sepa_methods_without_mandate() == []
    again = app.test_cli_runner().invoke(args=["payments", "backfill-mandates"])
    assert "mandate references filled in: 0" in again.output


def test_backfill_changes_nothing_when_stripe_cannot_be_asked(db_session, localstripe, app):
    sepa = _saved(make_user().account, localstripe, stripe_js.sepa())
    _forget_mandate(sepa)
    app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"  # discard port: connection refused
    result = app.test_cli_runner().invoke(args=["payments", "backfill-mandates"])
    assert result.exit_code == 1
    assert f"Stripe could not be asked about {sepa.stripe_payment_method_id}" in result.output
    assert db.session.get(PaymentMethod, sepa.id).mandate_reference is None
