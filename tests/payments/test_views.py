"""The portal payment-method routes through the Flask test client (with CSRF), against localstripe."""

from __future__ import annotations

from app.accounts.models import Role
from app.extensions import db
from app.payments.models import PaymentMethod, PaymentMethodStatus
from tests.factories import login, make_user
from tests.helpers import csrf_token_from
from tests.payments import stripe_js


def _page(client) -> str:  # type: ignore[no-untyped-def]
    response = client.get("/payment-method")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _setup_intent(client, method_type: str = "card"):  # type: ignore[no-untyped-def]
    token = csrf_token_from(_page(client))
    return client.post(
        "/payment-method/setup-intent", json={"method_type": method_type}, headers={"X-CSRFToken": token}
    )


def _confirm(client, setup_intent_id: str, *, as_json: bool = False):  # type: ignore[no-untyped-def]
    token = csrf_token_from(_page(client))
    if as_json:
        return client.post(
            "/payment-method/confirm", json={"setup_intent": setup_intent_id}, headers={"X-CSRFToken": token}
        )
    return client.post("/payment-method/confirm", data={"csrf_token": token, "setup_intent": setup_intent_id})


def _add(client, localstripe, data) -> str:  # type: ignore[no-untyped-def]
    created = _setup_intent(client, data["type"])
    assert created.status_code == 200, created.get_data(as_text=True)
    body = created.get_json()
    assert body["publishable_key"] == "pk_test_localstripe"
    assert body["client_secret"].startswith(body["setup_intent_id"] + "_secret_")
    assert stripe_js.confirm_setup_intent(localstripe, body["client_secret"], data).status_code == 200
    response = _confirm(client, body["setup_intent_id"])
    assert response.status_code == 302 and response.headers["Location"].endswith("/payment-method")
    return body["setup_intent_id"]


def test_page_without_method_offers_card_and_sepa_and_loads_stripe_js(client, localstripe):
    login(client, make_user())
    html = _page(client)
    assert "You have no payment method yet" in html
    assert "Use a card" in html and "Use SEPA Direct Debit" in html
    assert f'<script src="{localstripe.js_url}"></script>' in html
    assert 'data-publishable-key="pk_test_localstripe"' in html
    assert "<script>" not in html  # no inline scripts (CSP)


def test_csp_allows_the_configured_stripe_origin(client, localstripe):
    login(client, make_user())
    policy = client.get("/payment-method").headers["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split("; ")}
    for name in ("script-src", "connect-src", "frame-src"):
        assert localstripe.url in directives[name]
    assert "'unsafe-inline'" not in policy


def test_card_flow_through_the_routes(client, localstripe):
    user = make_user()
    login(client, user)
    _add(client, localstripe, stripe_js.card(exp_month=3, exp_year=2032))
    html = client.get("/payment-method").get_data(as_text=True)
    assert "Your payment method is saved: Visa •••• 4242." in html
    assert "Visa •••• 4242" in html and "03/2032" in html
    assert "Replace your payment method" in html
    method = db.session.query(PaymentMethod).filter_by(account_id=user.account.id).one()
    assert method.status == PaymentMethodStatus.ACTIVE


def test_confirming_twice_is_a_no_op(client, localstripe):
    user = make_user()
    login(client, user)
    setup_intent_id = _add(client, localstripe, stripe_js.card())
    again = _confirm(client, setup_intent_id, as_json=True)
    assert again.status_code == 200
    assert again.get_json()["payment_method"]["label"] == "Visa •••• 4242"
    assert db.session.query(PaymentMethod).filter_by(account_id=user.account.id).count() == 1


def test_sepa_flow_through_the_routes(client, localstripe):
    user = make_user()
    login(client, user)
    _add(client, localstripe, stripe_js.sepa(email=user.email))
    html = _page(client)
    assert "SEPA Direct Debit •••• 3000" in html


def test_replacing_card_with_sepa_marks_the_old_one_and_detaches_it(client, localstripe):
    user = make_user()
    login(client, user)
    _add(client, localstripe, stripe_js.card())
    _add(client, localstripe, stripe_js.sepa())
    rows = db.session.query(PaymentMethod).filter_by(account_id=user.account.id).order_by(PaymentMethod.id).all()
    assert [(row.method_type, row.status) for row in rows] == [
        ("card", PaymentMethodStatus.DETACHED),
        ("sepa_debit", PaymentMethodStatus.ACTIVE),
    ]
    html = _page(client)
    assert "SEPA Direct Debit •••• 3000" in html and "4242" not in html


def test_expired_card_is_shown_with_a_warning(client, localstripe):
    login(client, make_user())
    _add(client, localstripe, stripe_js.card(exp_month=1, exp_year=2020))
    html = _page(client)
    assert "01/2020" in html and "This card has expired" in html


def test_setup_intent_of_another_account_is_refused_and_nothing_stored(client, localstripe):
    owner, intruder = make_user(), make_user()
    login(client, owner)
    body = _setup_intent(client).get_json()
    stripe_js.confirm_setup_intent(localstripe, body["client_secret"], stripe_js.card())
    client.post("/logout", data={"csrf_token": csrf_token_from(_page(client))})

    login(client, intruder)
    _setup_intent(client)  # the intruder has a Stripe customer of their own
    assert _confirm(client, body["setup_intent_id"]).status_code == 404
    refused = _confirm(client, body["setup_intent_id"], as_json=True)
    assert refused.status_code == 404 and "could not find" in refused.get_json()["error"]
    assert db.session.query(PaymentMethod).count() == 0


def test_unconfirmed_setup_intent_is_refused_with_a_message(client, localstripe):
    login(client, make_user())
    body = _setup_intent(client).get_json()
    response = _confirm(client, body["setup_intent_id"])
    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "was not confirmed" in html
    assert _confirm(client, body["setup_intent_id"], as_json=True).status_code == 409
    assert db.session.query(PaymentMethod).count() == 0


def test_bad_input_gets_a_clear_error(client, localstripe):
    login(client, make_user())
    response = _setup_intent(client, "bitcoin")
    assert response.status_code == 400 and "card or SEPA" in response.get_json()["error"]
    response = _confirm(client, "not-an-id", as_json=True)
    assert response.status_code == 400 and response.get_json()["error"]
    token = csrf_token_from(_page(client))
    for url in ("/payment-method/setup-intent", "/payment-method/confirm"):
        response = client.post(url, json=["card"], headers={"X-CSRFToken": token})
        assert response.status_code == 400 and response.get_json()["error"]


def test_replaying_an_old_confirmation_does_not_reactivate_it(client, localstripe):
    user = make_user()
    login(client, user)
    old_setup_intent = _add(client, localstripe, stripe_js.card())
    _add(client, localstripe, stripe_js.sepa())
    response = _confirm(client, old_setup_intent, as_json=True)
    assert response.status_code == 200
    html = client.get("/payment-method").get_data(as_text=True)
    assert "SEPA Direct Debit •••• 3000" in html
    active = (
        db.session.query(PaymentMethod).filter_by(account_id=user.account.id, status=PaymentMethodStatus.ACTIVE).one()
    )
    assert active.method_type == "sepa_debit"


def test_setup_intent_needs_the_csrf_header(client, localstripe):
    login(client, make_user())
    assert client.post("/payment-method/setup-intent", json={"method_type": "card"}).status_code == 400
    assert client.post("/payment-method/confirm", data={"setup_intent": "seti_x"}).status_code == 400


def test_anonymous_is_sent_to_login(client):
    for response in (client.get("/payment-method"), client.post("/payment-method/setup-intent")):
        assert response.status_code in (302, 400)
    assert "/login" in client.get("/payment-method").headers["Location"]


def test_support_and_other_drivers_never_see_payment_details(client, localstripe):
    owner = make_user()
    login(client, owner)
    _add(client, localstripe, stripe_js.card())
    client.post("/logout", data={"csrf_token": csrf_token_from(_page(client))})

    other = make_user()
    login(client, other)
    html = _page(client)
    assert "4242" not in html and "You have no payment method yet" in html
    client.post("/logout", data={"csrf_token": csrf_token_from(html)})

    support = make_user(Role.SUPPORT)
    login(client, support)
    response = client.get("/payment-method", follow_redirects=True)
    assert "4242" not in response.get_data(as_text=True)
    assert response.request.path.startswith("/backoffice")
    token = csrf_token_from(response.get_data(as_text=True))
    assert (
        client.post(
            "/payment-method/setup-intent", json={"method_type": "card"}, headers={"X-CSRFToken": token}
        ).status_code
        == 302
    )
