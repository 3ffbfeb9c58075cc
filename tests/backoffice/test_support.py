"""Support back office: search by every key, the account page, and audited actions."""

from __future__ import annotations

from sqlalchemy import select

from app.accounts.models import AccountNote, Role
from app.audit.models import AuditEntry
from app.audit.services import Actor
from app.cards import services as card_services
from app.cards.models import BlockReason, Card, CardStatus
from app.extensions import db
from app.plans import services as plan_services
from tests.factories import add_stock, give_payment_method, login, make_user
from tests.helpers import submit_form


def _support(client):  # type: ignore[no-untyped-def]
    staff = make_user(Role.SUPPORT)
    login(client, staff)
    return staff


def _driver_with_card(**profile):  # type: ignore[no-untyped-def]
    user = make_user(**profile)
    give_payment_method(user.account)
    add_stock(1, start=user.id * 100)
    card = card_services.ship_card(card_services.order_card(user.account, Actor.of(user)), Actor.system("ops"))
    card_services.activate_card(user.account, card.visual_number, Actor.of(user))
    return user, card


def test_search_by_email_name_uid_visual_number_and_contract_id(client):
    user, card = _driver_with_card(full_name="Zoë Vermeulen", email="zoe.vermeulen@example.com")
    _support(client)
    for query in (
        "zoe.verm",
        "ZOË VER",
        "zoë",
        card.uid[:6],
        card.uid[:6].lower(),
        card.visual_number[:7],
        card.contract_id[:9],
        str(user.account.id),
    ):
        page = client.get("/backoffice/support/", query_string={"q": query}).get_data(as_text=True)
        assert f"/backoffice/support/accounts/{user.account.id}" in page, query
    nothing = client.get("/backoffice/support/", query_string={"q": "no-such-person"}).get_data(as_text=True)
    assert "No account matches." in nothing
    short = client.get("/backoffice/support/", query_string={"q": "z"}).get_data(as_text=True)
    assert "at least two characters" in short


def test_search_treats_like_wildcards_literally(client):
    _driver_with_card(full_name="Percy Plant")
    _support(client)
    page = client.get("/backoffice/support/", query_string={"q": "%%"}).get_data(as_text=True)
    assert "Percy Plant" not in page


def test_account_page_shows_cards_plan_and_no_payment_details(client):
    user, card = _driver_with_card(full_name="Lotte Claes")
    _support(client)
    page = client.get(f"/backoffice/support/accounts/{user.account.id}").get_data(as_text=True)
    assert "Lotte Claes" in page and card.uid in page and card.contract_id in page
    assert "Pay as you go" in page
    assert "4242" not in page  # support never sees payment details, only that a method is on file
    assert client.get("/backoffice/support/accounts/999999").status_code == 404


def test_block_and_unblock_by_support_are_audited_with_reason(client):
    user, card = _driver_with_card()
    staff = _support(client)
    page_url = f"/backoffice/support/accounts/{user.account.id}"
    response = submit_form(
        client,
        f"/backoffice/support/cards/{card.id}/block",
        {"block-reason": "fraud", "block-note": "many sessions abroad"},
        form_url=page_url,
        prefix="block-",
    )
    assert response.status_code == 302
    assert card.status == CardStatus.BLOCKED and card.block_reason == BlockReason.FRAUD
    entry = db.session.scalar(
        select(AuditEntry).where(AuditEntry.action == "card.blocked", AuditEntry.subject_id == str(card.id))
    )
    assert entry.actor_label == staff.email and entry.reason == "many sessions abroad"

    # No reason, no action.
    submit_form(
        client, f"/backoffice/support/cards/{card.id}/unblock", {"note-note": ""}, form_url=page_url, prefix="note-"
    )
    assert card.status == CardStatus.BLOCKED
    submit_form(
        client,
        f"/backoffice/support/cards/{card.id}/unblock",
        {"note-note": "customer called"},
        form_url=page_url,
        prefix="note-",
    )
    assert card.status == CardStatus.ACTIVE
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "card.unblocked")).reason == (
        "customer called"
    )


def test_replace_ship_change_plan_note_and_resend(client, mailbox):
    user, card = _driver_with_card()
    unconfirmed = make_user(confirmed=False, email="late@example.com")
    _support(client)
    page_url = f"/backoffice/support/accounts/{user.account.id}"
    submit_form(
        client,
        f"/backoffice/support/cards/{card.id}/replace",
        {"note-note": "damaged chip", "confirm": "y"},
        form_url=page_url,
        prefix="note-",
    )
    assert card.status == CardStatus.REPLACED
    new_card = db.session.scalar(select(Card).where(Card.replaces_card_id == card.id))
    add_stock(1, start=777)
    submit_form(
        client,
        f"/backoffice/support/cards/{new_card.id}/ship",
        {"note-note": "posted today"},
        form_url="/backoffice/support/stock",
        prefix="note-",
    )
    assert new_card.status == CardStatus.SHIPPED and new_card.uid

    comfort = plan_services.current_version("comfort")
    submit_form(
        client,
        f"/backoffice/support/accounts/{user.account.id}/plan",
        {"plan_id": str(comfort.id), "note-note": "goodwill upgrade", "confirm": "y"},
        form_url=page_url,
        prefix="note-",
    )
    assert (
        plan_services.plan_at(user.account.id, comfort.created_at.__class__.now(comfort.created_at.tzinfo)).code
        == "comfort"
    )
    change = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "plan.change"))
    assert change.reason == "goodwill upgrade"

    submit_form(
        client,
        f"/backoffice/support/accounts/{user.account.id}/notes",
        {"note-note": "Called about card"},
        form_url=page_url,
        prefix="note-",
    )
    assert db.session.scalar(select(AccountNote)).text == "Called about card"

    submit_form(
        client,
        f"/backoffice/support/accounts/{unconfirmed.account.id}/resend-confirmation",
        {"note-note": "customer asked"},
        form_url=f"/backoffice/support/accounts/{unconfirmed.account.id}",
        prefix="note-",
    )
    assert len(mailbox.to("late@example.com")) == 1
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "account.resend_confirmation"))


def test_support_actions_need_csrf_and_the_support_role(app, client):
    user, card = _driver_with_card()
    finance = make_user(Role.FINANCE)
    login(client, finance)
    assert client.get(f"/backoffice/support/accounts/{user.account.id}").status_code == 403
    response = submit_form(
        client,
        f"/backoffice/support/cards/{card.id}/block",
        {"block-reason": "fraud", "block-note": "x"},
        form_url="/backoffice/",
        prefix="block-",
    )
    assert response.status_code == 403
    assert card.status == CardStatus.ACTIVE
    client = app.test_client()
    _support(client)
    assert (
        client.post(
            f"/backoffice/support/cards/{card.id}/block", data={"block-reason": "fraud", "block-note": "x"}
        ).status_code
        == 400
    )
    assert card.status == CardStatus.ACTIVE


def test_stock_page_lists_orders_to_ship(client):
    user = make_user()
    card_services.order_card(user.account, Actor.of(user), label="Second car")
    add_stock(3, start=4000)
    _support(client)
    page = client.get("/backoffice/support/stock").get_data(as_text=True)
    assert "Second car" in page and "In stock" in page
