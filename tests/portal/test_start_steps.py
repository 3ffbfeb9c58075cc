"""A new driver's dashboard lists the three steps to the first charge (payment method, card, activation), each
linked and ticked once done; the list goes away when all three are."""

from __future__ import annotations

import re

from app.audit.services import Actor
from app.cards import services as cards
from tests.factories import add_stock, give_payment_method, login, make_user


def _steps(client) -> list[tuple[bool, str]]:  # type: ignore[no-untyped-def]
    """The dashboard's steps as (done, text of the step)."""
    html = client.get("/dashboard?lang=en").get_data(as_text=True)
    items = re.findall(r'<li class="steps__item( steps__item--done)?">(.*?)</li>', html, re.S)
    return [(bool(done), " ".join(re.sub(r"<[^>]+>", " ", body).split())) for done, body in items]


def test_a_new_driver_sees_three_linked_steps(client):
    user = make_user()
    login(client, user)
    html = client.get("/dashboard?lang=en").get_data(as_text=True)
    assert "Three steps to your first charge" in html
    assert 'href="/payment-method"' in html and 'href="/cards/#order"' in html and 'href="/cards/#activate"' in html
    steps = _steps(client)
    assert [done for done, _text in steps] == [False, False, False]
    assert steps[0][1].startswith("1 Add a payment method")


def test_each_step_is_ticked_when_done_and_the_list_goes_away(client):
    user = make_user()
    login(client, user)
    give_payment_method(user.account)
    assert [done for done, _text in _steps(client)] == [True, False, False]
    assert _steps(client)[0][1].startswith("✓ Payment method added")

    card = cards.order_card(user.account, Actor.of(user))
    assert [done for done, _text in _steps(client)] == [True, True, False]

    add_stock(1, start=700)
    cards.ship_card(card, Actor.system("warehouse"))
    cards.activate_card(user.account, card.visual_number, Actor.of(user))
    html = client.get("/dashboard?lang=en").get_data(as_text=True)
    assert "Three steps to your first charge" not in html and _steps(client) == []


def test_the_steps_follow_the_page_language(client):
    user = make_user()
    login(client, user)
    html = client.get("/dashboard?lang=nl").get_data(as_text=True)
    assert '<html lang="nl">' in html and 'class="steps"' in html
