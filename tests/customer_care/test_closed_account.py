"""Nothing can be ordered or changed on a closed account: a rule of the card and plan services, whoever asks (the
driver's portal, support, the CLI), not a guard in one page."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.accounts.services import AccountError
from app.audit.models import AuditEntry
from app.audit.services import Actor
from app.billing.collection.dunning import lift_payment_blocks
from app.cards import services as card_services
from app.cards.models import BlockReason, Card, CardStatus, TokenUpdate
from app.customer_care import support
from app.customer_care.closure import close_account
from app.extensions import db
from app.plans import services as plan_services
from tests.factories import add_stock, give_payment_method, make_user

SUPPORT = Actor.system("support@voltaro.example")


def _closed_account_with_cards():  # type: ignore[no-untyped-def]
    """A driver with an active card, a card blocked as lost, a payment-blocked card and an order waiting, then
    closed by support."""
    user = make_user()
    give_payment_method(user.account)
    add_stock(4, start=80_000 + user.id * 10)
    driver = Actor.of(user)
    cards = []
    for _ in range(3):
        card = card_services.ship_card(card_services.order_card(user.account, driver), SUPPORT)
        card_services.activate_card(user.account, card.visual_number, driver)
        cards.append(card)
    active, lost, unpaid = cards
    card_services.block_card(lost, BlockReason.LOST, driver)
    card_services.block_card(unpaid, BlockReason.PAYMENT, SUPPORT)
    waiting = card_services.order_card(user.account, driver)
    close_account(user.account, SUPPORT, reason="letter of 3 Nov")
    db.session.flush()
    return user, active, lost, unpaid, waiting


def test_no_card_use_case_works_on_a_closed_account(db_session):
    user, active, lost, unpaid, waiting = _closed_account_with_cards()
    assert active.block_reason == BlockReason.CLOSED and lost.block_reason == BlockReason.LOST
    assert waiting.status == CardStatus.EXPIRED
    entries_before = db.session.query(AuditEntry).count()
    updates_before = db.session.query(TokenUpdate).count()
    attempts = {
        "order": lambda: card_services.order_card(user.account, SUPPORT, note="customer asked"),
        "app token": lambda: card_services.issue_app_token(user.account, SUPPORT),
        # A card lost before the closure keeps "lost": neither the driver nor support may bring it back.
        "unblock lost": lambda: card_services.unblock_card(lost, SUPPORT, note="found it"),
        "unblock unpaid": lambda: card_services.unblock_card(unpaid, SUPPORT, note="paid"),
        "replace": lambda: card_services.replace_card(lost, SUPPORT, note="new one"),
        "block": lambda: card_services.block_card(active, BlockReason.FRAUD, SUPPORT, note="x"),
        "activate": lambda: card_services.activate_by_operations(active, SUPPORT),
        "activate by number": lambda: card_services.activate_card(user.account, active.visual_number, SUPPORT),
    }
    for name, attempt in attempts.items():
        with pytest.raises(card_services.AccountClosedError, match="This account is closed"):
            attempt()
            pytest.fail(f"{name} was allowed on a closed account")
    assert lost.status == CardStatus.BLOCKED and unpaid.status == CardStatus.BLOCKED
    cards = db.session.scalars(select(Card).where(Card.account_id == user.account.id).order_by(Card.id)).all()
    assert cards == [active, lost, unpaid, waiting]  # nothing ordered
    assert db.session.query(AuditEntry).count() == entries_before
    assert db.session.query(TokenUpdate).count() == updates_before


def test_an_order_waiting_when_the_account_closed_cannot_be_shipped(db_session):
    user = make_user()
    order = card_services.order_card(user.account, Actor.of(user))
    add_stock(1, start=90_000 + user.id)
    user.account.closed_at = dt.datetime.now(dt.UTC)  # closed while support had the stock page open
    with pytest.raises(card_services.AccountClosedError):
        card_services.ship_card(order, SUPPORT, note="posted today")
    assert order.status == CardStatus.ORDERED and order.uid is None


def test_paying_the_final_invoice_does_not_bring_a_payment_blocked_card_back(db_session):
    """Closure keeps the reason of a card already blocked; lifting payment blocks must skip a closed account (and
    not fail the payment that triggered it)."""
    user, _active, _lost, unpaid, _waiting = _closed_account_with_cards()
    assert unpaid.block_reason == BlockReason.PAYMENT
    assert lift_payment_blocks(user.account.id, today=dt.date(2026, 12, 7)) == 0
    assert unpaid.status == CardStatus.BLOCKED
    assert card_services.unblock_all_cards(user.account.id, BlockReason.PAYMENT, SUPPORT) == []


def test_no_plan_can_be_chosen_for_a_closed_account(db_session):
    user, *_cards = _closed_account_with_cards()
    comfort = plan_services.current_version("comfort")

    def stretches() -> list[tuple[object, ...]]:
        return [(s.plan_id, s.starts_at, s.ends_at) for s in plan_services.history(user.account.id)]

    history = stretches()
    with pytest.raises(plan_services.AccountClosedError, match="This account is closed"):
        plan_services.change_plan(user.account, comfort, SUPPORT, reason="goodwill")
    with pytest.raises(plan_services.AccountClosedError):
        plan_services.subscribe(user.account, comfort, SUPPORT)
    assert stretches() == history


def test_no_confirmation_email_is_sent_for_a_closed_account(db_session):
    user = make_user(confirmed=False)
    close_account(user.account, SUPPORT, reason="asked by phone")
    with pytest.raises(AccountError, match="This account is closed"):
        support.resend_confirmation_by_staff(user.account, SUPPORT, "asked again")
    # A note is support's own record of a call or a letter: it still may be written.
    support.add_note(user.account, "Customer called after closing", SUPPORT)
