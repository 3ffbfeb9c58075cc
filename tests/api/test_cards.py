"""Cards through the API: the portal's rules (cards.services), stable codes for what the app must react to, and
the app token of a phone: one per device, pushed to partners like a card."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select

from app.accounts.api_tokens import ApiDevice
from app.cards.models import Card, CardStatus, TokenType, TokenUpdate
from app.extensions import db
from app.roaming.models import Partner
from app.roaming.send.token_push import run_push
from tests.api.helpers import SignedIn, call, problem, sign_in
from tests.factories import add_stock, give_payment_method
from tests.roaming.fake_cpo.receiver import TOKENS_PATH
from tests.roaming.fake_cpo.server import FakeCpo
from tests.roaming.test_token_push import connect


def _order_and_ship(client: FlaskClient, driver: SignedIn) -> dict:  # type: ignore[type-arg]
    from app.audit.services import Actor
    from app.cards import services

    ordered = call(client, "POST", "/api/v1/cards", driver, json={"label": "Company car", "driver_name": "Sam"})
    assert ordered.status_code == 201, ordered.get_json()
    card = db.session.get(Card, ordered.get_json()["id"])
    assert card is not None
    add_stock(1)
    services.ship_card(card, Actor.system("warehouse"))
    return dict(ordered.get_json())


def test_order_activate_block_unblock_and_replace(client: FlaskClient, driver: SignedIn) -> None:
    ordered = _order_and_ship(client, driver)
    assert ordered["status"] == "ordered" and ordered["label"] == "Company car" and ordered["type"] == "RFID"
    shipped = call(client, "GET", f"/api/v1/cards/{ordered['id']}", driver).get_json()
    assert shipped["status"] == "shipped" and shipped["visual_number"]

    refused = problem(
        call(client, "POST", "/api/v1/cards/activate", driver, json={"visual_number": shipped["visual_number"]}),
        409,
        "payment_method_required",
    )
    assert refused["message"]
    give_payment_method(driver.account)
    problem(
        call(client, "POST", "/api/v1/cards/activate", driver, json={"visual_number": "VLT-999999"}),
        422,
        "card_number_unknown",
    )
    typed = shipped["visual_number"].lower().replace("-", " - ")  # as a person types it: spaces, lower case
    activated = call(client, "POST", "/api/v1/cards/activate", driver, json={"visual_number": typed})
    assert activated.status_code == 200 and activated.get_json()["status"] == "active"

    problem(
        call(client, "POST", f"/api/v1/cards/{ordered['id']}/block", driver, json={"reason": "payment"}),
        422,
        "validation_failed",
    )  # drivers block as lost or stolen only
    blocked = call(client, "POST", f"/api/v1/cards/{ordered['id']}/block", driver, json={"reason": "lost"})
    assert blocked.get_json()["status"] == "blocked" and blocked.get_json()["can_unblock"] is True
    problem(
        call(client, "POST", f"/api/v1/cards/{ordered['id']}/block", driver, json={"reason": "lost"}),
        409,
        "card_transition_refused",
    )
    assert call(client, "POST", f"/api/v1/cards/{ordered['id']}/unblock", driver).get_json()["status"] == "active"

    replacement = call(client, "POST", f"/api/v1/cards/{ordered['id']}/replace", driver)
    assert replacement.status_code == 201
    new = replacement.get_json()
    assert new["replaces_card_id"] == ordered["id"] and new["status"] == "ordered" and new["label"] == "Company car"
    old = call(client, "GET", f"/api/v1/cards/{ordered['id']}", driver).get_json()
    assert old["status"] == "replaced"
    reasons = [
        update.reason for update in db.session.scalars(select(TokenUpdate).where(TokenUpdate.card_id == old["id"]))
    ]
    assert reasons == ["shipped", "active", "blocked", "active", "replaced"]  # partners learn every change


def test_a_payment_block_cannot_be_lifted_by_the_driver(client: FlaskClient, driver: SignedIn) -> None:
    from app.audit.services import Actor
    from app.cards import services
    from app.cards.models import BlockReason

    token = services.issue_app_token(driver.account, Actor.system("test"))
    services.block_card(token, BlockReason.PAYMENT, Actor.system("dunning"))
    shown = call(client, "GET", f"/api/v1/cards/{token.id}", driver).get_json()
    assert shown["block_reason"] == "payment" and shown["can_unblock"] is False
    problem(call(client, "POST", f"/api/v1/cards/{token.id}/unblock", driver), 409, "card_transition_refused")
    db.session.refresh(token)
    assert token.status == CardStatus.BLOCKED


def test_the_list_filters_by_type(client: FlaskClient, driver: SignedIn) -> None:
    _order_and_ship(client, driver)
    call(client, "POST", "/api/v1/cards/app-token", driver)
    everything = call(client, "GET", "/api/v1/cards", driver).get_json()["items"]
    assert sorted(card["type"] for card in everything) == ["APP_USER", "RFID"]
    apps = call(client, "GET", "/api/v1/cards?type=APP_USER", driver).get_json()["items"]
    assert [card["type"] for card in apps] == ["APP_USER"]


def test_one_app_token_per_phone_pushed_to_partners_like_a_card(
    client: FlaskClient, driver: SignedIn, partner: Partner, fake_cpo: FakeCpo
) -> None:
    connect(partner, fake_cpo)
    first = call(client, "POST", "/api/v1/cards/app-token", driver)
    assert first.status_code == 201
    token = first.get_json()
    assert token["type"] == "APP_USER" and token["status"] == "active" and token["contract_id"]
    again = call(client, "POST", "/api/v1/cards/app-token", driver)
    assert again.status_code == 200 and again.get_json()["id"] == token["id"]  # the same phone: the same token
    tablet = sign_in(driver.user, "Tablet")
    second = call(client, "POST", "/api/v1/cards/app-token", tablet)
    assert second.status_code == 201 and second.get_json()["id"] != token["id"]  # another phone: its own
    device = db.session.get(ApiDevice, driver.device.id)
    assert device is not None and device.app_token_card_id == token["id"]

    run_push(commit=True)
    card = db.session.get(Card, token["id"])
    assert card is not None and card.token_type == TokenType.APP_USER
    pushed = [entry for entry in fake_cpo.state["tokens"] if entry["uid"] == card.uid]
    assert [(entry["type"], entry["body"]["valid"]) for entry in pushed] == [("APP_USER", True)]
    assert fake_cpo.requests_to(TOKENS_PATH, "PUT")


def test_an_expired_app_token_makes_way_for_a_new_one(client: FlaskClient, driver: SignedIn) -> None:
    from app.audit.services import Actor
    from app.cards import services

    token = call(client, "POST", "/api/v1/cards/app-token", driver).get_json()
    card = db.session.get(Card, token["id"])
    assert card is not None
    services.expire_card(card, Actor.system("card-expiry"))
    renewed = call(client, "POST", "/api/v1/cards/app-token", driver)
    assert renewed.status_code == 201 and renewed.get_json()["id"] != token["id"]


def test_the_card_limit_is_a_clear_refusal(client: FlaskClient, driver: SignedIn) -> None:
    for _ in range(20):
        assert call(client, "POST", "/api/v1/cards", driver, json={}).status_code == 201
    refused = problem(call(client, "POST", "/api/v1/cards", driver, json={}), 409, "card_refused")
    assert "20" in refused["message"]
    assert len(db.session.scalars(select(Card).where(Card.account_id == driver.account.id)).all()) == 20
