"""The driver's card pages through HTTP: order, activate, block, unblock, replace, and 404 for others' cards."""

from __future__ import annotations

from app.audit.services import Actor
from app.cards import services
from app.cards.models import BlockReason, Card, CardStatus
from app.extensions import db
from tests.factories import add_stock, give_payment_method, login, make_user
from tests.helpers import submit_form


def test_order_then_activate_then_block(client):
    user = make_user()
    give_payment_method(user.account)
    login(client, user)
    response = submit_form(
        client, "/cards/order", {"order-label": "My car", "order-driver_name": ""}, form_url="/cards/", prefix="order-"
    )
    assert response.status_code == 302
    card = db.session.query(Card).filter_by(account_id=user.account.id).one()
    assert card.status == CardStatus.ORDERED and card.label == "My car"

    add_stock(2, start=100)
    services.ship_card(card, Actor.system("warehouse"))

    wrong = submit_form(
        client, "/cards/activate", {"activate-visual_number": "VLT-000000"}, form_url="/cards/", prefix="activate-"
    )
    assert wrong.status_code == 400
    assert "No card waiting for activation has this number" in wrong.get_data(as_text=True)
    ok = submit_form(
        client,
        "/cards/activate",
        {"activate-visual_number": card.visual_number},
        form_url="/cards/",
        prefix="activate-",
    )
    assert ok.status_code == 302
    assert card.status == CardStatus.ACTIVE

    blocked = submit_form(
        client, f"/cards/{card.id}/block", {"block-reason": "lost"}, form_url=f"/cards/{card.id}", prefix="block-"
    )
    assert blocked.status_code == 302
    assert card.status == CardStatus.BLOCKED and card.block_reason == BlockReason.LOST

    submit_form(client, f"/cards/{card.id}/unblock", {}, form_url=f"/cards/{card.id}", prefix="action-")
    assert card.status == CardStatus.ACTIVE

    submit_form(client, f"/cards/{card.id}/replace", {}, form_url=f"/cards/{card.id}", prefix="action-")
    assert card.status == CardStatus.REPLACED
    assert db.session.query(Card).filter_by(replaces_card_id=card.id).one().status == CardStatus.ORDERED


def test_driver_cannot_pick_a_staff_reason(client):
    user = make_user()
    card = services.issue_app_token(user.account, Actor.of(user))
    login(client, user)
    response = submit_form(
        client, f"/cards/{card.id}/block", {"block-reason": "fraud"}, form_url=f"/cards/{card.id}", prefix="block-"
    )
    assert response.status_code == 400
    assert card.status == CardStatus.ACTIVE


def test_support_block_cannot_be_lifted_by_driver(client):
    user = make_user()
    card = services.issue_app_token(user.account, Actor.of(user))
    services.block_card(card, BlockReason.FRAUD, Actor.system("support"), note="suspicious")
    login(client, user)
    page = client.get(f"/cards/{card.id}").get_data(as_text=True)
    assert "Contact support" in page
    response = submit_form(
        client, f"/cards/{card.id}/unblock", {}, form_url=f"/cards/{card.id}", prefix="action-", follow_redirects=True
    )
    assert "can only be unblocked by support" in response.get_data(as_text=True)
    assert card.status == CardStatus.BLOCKED


def test_another_drivers_card_is_404_everywhere(client):
    owner = make_user()
    card = services.issue_app_token(owner.account, Actor.of(owner))
    intruder = make_user()
    login(client, intruder)
    assert client.get(f"/cards/{card.id}").status_code == 404
    assert client.get("/cards/999999").status_code == 404
    for action, prefix, data in (
        ("block", "block-", {"block-reason": "lost"}),
        ("unblock", "action-", {}),
        ("replace", "action-", {}),
    ):
        response = submit_form(client, f"/cards/{card.id}/{action}", data, form_url="/cards/", prefix=prefix)
        assert response.status_code == 404, action
    assert card.status == CardStatus.ACTIVE


def test_card_pages_require_login(client):
    assert client.get("/cards/").status_code == 302
