"""A card is activated by the number printed on it however the driver types it: any case, with spaces where the
print groups the digits, with or without the dashes (the cards service compares letters and digits only)."""

from __future__ import annotations

import pytest

from app.audit.services import Actor
from app.cards import services
from app.cards.activation import printed_number_key
from app.cards.models import Card, CardStatus
from app.extensions import db
from tests.factories import add_stock, give_payment_method, login, make_user
from tests.helpers import submit_form


def _shipped_card() -> tuple[object, Card]:
    user = make_user()
    give_payment_method(user.account)
    card = services.order_card(user.account, Actor.of(user))
    add_stock(1, start=300)
    services.ship_card(card, Actor.system("warehouse"))
    assert card.visual_number == "VLT-000300"
    return user, card


@pytest.mark.parametrize(
    "typed",
    [
        "vlt-000300",
        "VLT 000 300",
        "vlt000300",
        " vlt - 000300 ",
        "VLT\u00a0000300",
        "ＶＬＴ－０００３００",
        "Vlt 000300",
    ],
)
def test_activation_accepts_the_printed_number_in_any_case_and_spacing(db_session, typed):
    user, card = _shipped_card()
    services.activate_card(user.account, typed, Actor.of(user))
    assert card.status == CardStatus.ACTIVE


@pytest.mark.parametrize("typed", ["VLT-000301", "VLT 00030", "---", "   ", "VLT-0003000"])
def test_another_number_is_still_refused(db_session, typed):
    user, card = _shipped_card()
    with pytest.raises(services.CardError):
        services.activate_card(user.account, typed, Actor.of(user))
    assert card.status == CardStatus.SHIPPED


def test_the_portal_form_activates_with_a_spaced_lower_case_number(client):
    user, card = _shipped_card()
    login(client, user)
    response = submit_form(
        client, "/cards/activate", {"activate-visual_number": "vlt 000 300"}, form_url="/cards/", prefix="activate-"
    )
    assert response.status_code == 302
    db.session.refresh(card)
    assert card.status == CardStatus.ACTIVE


def test_printed_number_key():
    assert printed_number_key(" vlt-000 300\t") == printed_number_key("VLT000300") == "VLT000300"
    assert printed_number_key("---") == ""
