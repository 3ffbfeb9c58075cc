"""Support's actions on the account page: the reason typed for "order a card" and "ship from stock" is kept in the
audit log, a block needs a reason chosen on purpose, a closed account refuses every change with a clear message,
and the activity panel shows every card event, whoever caused it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app.accounts.models import Role
from app.audit.models import AuditEntry
from app.audit.services import Actor
from app.cards import services as card_services
from app.cards.models import BlockReason, Card, CardStatus
from app.customer_care.closure import close_account
from app.extensions import db
from app.plans import services as plan_services
from tests.factories import add_stock, give_payment_method, login, make_user
from tests.helpers import submit_form


def _support(client):  # type: ignore[no-untyped-def]
    staff = make_user(Role.SUPPORT)
    login(client, staff)
    return staff


def _page(account_id: int) -> str:
    return f"/backoffice/support/accounts/{account_id}"


def _entry(action: str, card_id: int) -> AuditEntry:
    entry = db.session.scalar(
        select(AuditEntry).where(AuditEntry.action == action, AuditEntry.subject_id == str(card_id))
    )
    assert entry is not None, action
    return entry


def test_the_reason_for_ordering_and_shipping_a_card_is_kept_in_the_audit_log(client):
    user = make_user()
    staff = _support(client)
    url = _page(user.account.id)
    submit_form(client, f"{url}/order-card", {"note-note": "card lost in the post"}, form_url=url, prefix="note-")
    card = db.session.scalar(select(Card).where(Card.account_id == user.account.id))
    assert card is not None and card.status == CardStatus.ORDERED
    ordered = _entry("card.ordered", card.id)
    assert ordered.reason == "card lost in the post" and ordered.actor_label == staff.email

    add_stock(1, start=60_000)
    submit_form(
        client,
        f"/backoffice/support/cards/{card.id}/ship",
        {"note-note": "sent by registered mail"},
        form_url="/backoffice/support/stock",
        prefix="note-",
    )
    assert card.status == CardStatus.SHIPPED
    assert _entry("card.shipped", card.id).reason == "sent by registered mail"


def test_a_block_needs_a_reason_chosen_on_purpose(client):
    user = make_user()
    give_payment_method(user.account)
    add_stock(1, start=61_000)
    card = card_services.ship_card(card_services.order_card(user.account, Actor.of(user)), Actor.system("ops"))
    card_services.activate_card(user.account, card.visual_number, Actor.of(user))
    _support(client)
    url = _page(user.account.id)

    page = client.get(url).get_data(as_text=True)
    # The form starts on an empty, disabled choice: nothing is picked for the agent.
    assert '<option value="" selected disabled>Choose a reason</option>' in page
    assert '<option value="lost" selected' not in page

    for chosen in ({}, {"block-reason": ""}):
        response = submit_form(
            client,
            f"/backoffice/support/cards/{card.id}/block",
            {**chosen, "block-note": "x"},
            form_url=url,
            prefix="block-",
        )
        assert response.status_code == 302
        assert card.status == CardStatus.ACTIVE and card.block_reason is None
    assert "Choose why the card is blocked" in client.get(url).get_data(as_text=True)

    submit_form(
        client,
        f"/backoffice/support/cards/{card.id}/block",
        {"block-reason": "stolen", "block-note": "car broken into"},
        form_url=url,
        prefix="block-",
    )
    assert card.status == CardStatus.BLOCKED and card.block_reason == BlockReason.STOLEN
    assert _entry("card.blocked", card.id).details["block_reason"] == "stolen"


def test_a_closed_account_refuses_every_support_action_with_a_clear_message(client):
    user = make_user()
    give_payment_method(user.account)
    add_stock(2, start=62_000)
    card = card_services.ship_card(card_services.order_card(user.account, Actor.of(user)), Actor.system("ops"))
    card_services.activate_card(user.account, card.visual_number, Actor.of(user))
    card_services.block_card(card, BlockReason.LOST, Actor.of(user))
    close_account(user.account, Actor.system("support"), reason="moved abroad")
    db.session.commit()
    _support(client)
    url = _page(user.account.id)
    page = client.get(url).get_data(as_text=True)
    assert "This account is closed: nothing can be ordered or changed on it." in page
    assert "Order a card for this account" not in page and "Change plan" not in page and ">Unblock<" not in page

    entries = db.session.query(AuditEntry).count()
    comfort = plan_services.current_version("comfort")
    # The buttons are gone, but a form kept open in another tab (or a crafted request) still reaches the services.
    for action, data in (
        (f"{url}/order-card", {"note-note": "customer asked"}),
        (f"{url}/plan", {"plan_id": str(comfort.id), "note-note": "goodwill", "confirm": "y"}),
        (f"/backoffice/support/cards/{card.id}/unblock", {"note-note": "found again"}),
        (f"/backoffice/support/cards/{card.id}/replace", {"note-note": "new card", "confirm": "y"}),
        (f"{url}/resend-confirmation", {"note-note": "asked again"}),
    ):
        response = submit_form(client, action, data, form_url=url, prefix="note-", follow_redirects=True)
        assert "This account is closed: nothing can be ordered or changed on it." in response.get_data(as_text=True)
    assert db.session.query(AuditEntry).count() == entries
    assert card.status == CardStatus.BLOCKED and card.block_reason == BlockReason.LOST
    assert db.session.query(Card).filter(Card.account_id == user.account.id).count() == 1
    assert plan_services.plan_at(user.account.id, dt.datetime.now(dt.UTC)) is None


def test_the_activity_panel_shows_every_card_event_whoever_caused_it(client):
    user = make_user(email="driver@example.com")
    give_payment_method(user.account)
    add_stock(2, start=63_000)
    staff = _support(client)
    url = _page(user.account.id)
    submit_form(client, f"{url}/order-card", {"note-note": "second car"}, form_url=url, prefix="note-")
    card = db.session.scalar(select(Card).where(Card.account_id == user.account.id))
    card_services.ship_card(card, Actor.system("warehouse"))
    card_services.activate_card(user.account, card.visual_number, Actor.of(user))
    card_services.block_card(card, BlockReason.LOST, Actor.of(user))
    db.session.commit()

    page = client.get(url).get_data(as_text=True).replace("<wbr>", "")
    panel = page[page.index("data-activity") : page.index("</section>", page.index("data-activity"))]

    for words in ("Card ordered", "Card shipped from stock", "Card activated", "Card blocked"):
        assert words in panel, words
    assert "(Lost)" in panel and card.visual_number in panel
    assert (
        f"Staff · {staff.email}" in panel and "Driver · driver@example.com" in panel and "System · warehouse" in panel
    )
    assert "second car" in panel
    assert panel.index("Card blocked") < panel.index("Card activated") < panel.index("Card ordered")  # newest first
    dutch = client.get(url, query_string={"lang": "nl"}).get_data(as_text=True)
    assert "(Verloren)" in dutch[dutch.index("data-activity") :]
