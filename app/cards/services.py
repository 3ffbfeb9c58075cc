"""Card use cases: order, ship from stock, activate, block/unblock, replace, expire, app tokens.

Every status or validity change goes through :func:`_change_status`, which checks the state machine, writes
the audit entry and queues the "token changed" event in the same unit of work.
"""

from __future__ import annotations

import datetime as dt
import secrets

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import Account
from app.audit.services import Actor, record
from app.cards import emaid, lifecycle
from app.cards.activation import printed_number_key
from app.cards.lifecycle import TransitionError
from app.cards.models import BlockReason, Card, CardStatus, StockCard, TokenType, TokenUpdate, WhitelistType
from app.cards.tokens import token_object
from app.db import utcnow
from app.extensions import db
from app.payments.services import has_valid_payment_method

MAX_OPEN_CARDS_PER_ACCOUNT = 20


class CardError(ValueError):
    """A card request that cannot be honoured (no stock, no payment method, wrong visual number...)."""


class OutOfStockError(CardError):
    pass


class AccountClosedError(CardError, TransitionError):
    """The card's account is closed: nothing can be ordered, shipped, activated, blocked, unblocked or replaced
    on it (closure already blocked or cancelled every card, and a closed account's cards never come back). Also a
    ``TransitionError``: callers that catch a refused status change catch this one too."""


CLOSED_ACCOUNT_MESSAGE = _l("This account is closed: nothing can be ordered or changed on it.")

__all__ = ["AccountClosedError", "CardError", "OutOfStockError", "TransitionError"]


def _refuse_if_closed(account_id: int) -> None:
    """The rule for every card use case a driver or support starts (not for closure itself, nor for expiry)."""
    if db.session.get_one(Account, account_id).closed_at is not None:
        raise AccountClosedError(CLOSED_ACCOUNT_MESSAGE)


def _issuer() -> str:
    issuer: str = current_app.config["COMPANY_NAME"]
    return issuer


def _emit_token_update(card: Card, reason: str) -> None:
    card.last_updated = utcnow()
    db.session.flush()
    language = card.language or db.session.get_one(Account, card.account_id).language
    db.session.add(
        TokenUpdate(
            card_id=card.id,
            uid=card.uid,
            token_type=card.token_type.value,
            reason=reason,
            token=token_object(card, language=language),
        )
    )
    db.session.flush()


def _change_status(
    card: Card, target: CardStatus, actor: Actor, *, reason: str | None = None, action: str | None = None
) -> None:
    lifecycle.check_transition(card.status, target)
    previous = card.status
    card.status = target
    now = utcnow()
    if target == CardStatus.BLOCKED:
        card.blocked_at = now
    elif target == CardStatus.ACTIVE:
        if previous == CardStatus.SHIPPED:
            card.activated_at = now
        card.block_reason = None
        card.blocked_at = None
    elif target == CardStatus.SHIPPED:
        card.shipped_at = now
    record(
        action or f"card.{target.value}",
        "card",
        card.id,
        actor=actor,
        reason=reason,
        details={
            "from": previous.value,
            "to": target.value,
            "account_id": card.account_id,
            # Why it was blocked, as a code (the reason above is support's own words, or the code itself).
            **({"block_reason": card.block_reason.value} if target == CardStatus.BLOCKED and card.block_reason else {}),
        },
    )
    if card.uid is not None:
        _emit_token_update(card, target.value)


def cards_of(account_id: int) -> list[Card]:
    return list(db.session.scalars(select(Card).where(Card.account_id == account_id).order_by(Card.id.desc())))


def card_of_account(account_id: int, card_id: int) -> Card | None:
    """The card if it belongs to the account; None otherwise (the portal answers 404 either way)."""
    card = db.session.get(Card, card_id)
    return card if card is not None and card.account_id == account_id else None


def order_card(
    account: Account,
    actor: Actor,
    *,
    label: str | None = None,
    driver_name: str | None = None,
    replaces: Card | None = None,
    note: str | None = None,
) -> Card:
    """A new RFID card waiting to be shipped; ``note`` (support's reason) is kept in the audit log."""
    _refuse_if_closed(account.id)
    open_cards = [
        card
        for card in cards_of(account.id)
        if card.status in (CardStatus.ORDERED, CardStatus.SHIPPED, CardStatus.ACTIVE, CardStatus.BLOCKED)
    ]
    if len(open_cards) >= MAX_OPEN_CARDS_PER_ACCOUNT:
        raise CardError(_l("An account can hold at most %(count)s cards.", count=MAX_OPEN_CARDS_PER_ACCOUNT))
    card = Card(
        account_id=account.id,
        token_type=TokenType.RFID,
        status=CardStatus.ORDERED,
        issuer=_issuer(),
        whitelist=WhitelistType(current_app.config.get("DEFAULT_TOKEN_WHITELIST", "ALLOWED")),
        label=(label or "").strip() or None,
        driver_name=(driver_name or "").strip() or None,
        replaces_card_id=replaces.id if replaces else None,
    )
    db.session.add(card)
    db.session.flush()
    record(
        "card.ordered",
        "card",
        card.id,
        actor=actor,
        reason=(note or "").strip() or None,
        details={"account_id": account.id, "replaces": replaces.id if replaces else None},
    )
    return card


def _take_stock_card() -> StockCard:
    """The oldest unassigned stock card, locked so two shipments never take the same one."""
    query = select(StockCard).where(StockCard.assigned_at.is_(None)).order_by(StockCard.id).limit(1)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    stock_card = db.session.scalar(query)
    if stock_card is None:
        raise OutOfStockError(_l("No cards in stock; import a new batch first."))
    stock_card.assigned_at = utcnow()
    return stock_card


def _mint_contract_id() -> str:
    config = current_app.config
    for _ in range(10):
        candidate = str(emaid.mint_emaid(config["COMPANY_COUNTRY_CODE"], config["COMPANY_PARTY_ID"]))
        if db.session.scalar(select(Card.id).where(Card.contract_id == candidate)) is None:
            return candidate
    raise CardError("could not mint a unique contract id")  # 36^8 ids: only a broken RNG gets here


def ship_card(card: Card, actor: Actor, note: str | None = None) -> Card:
    """Assign a stock card, mint the eMAID, and mark the card shipped (not yet valid: the driver activates).
    ``note`` (support's reason) is kept in the audit log."""
    _refuse_if_closed(card.account_id)
    lifecycle.check_transition(card.status, CardStatus.SHIPPED)
    stock_card = _take_stock_card()
    card.uid = stock_card.uid
    card.visual_number = stock_card.visual_number
    card.contract_id = _mint_contract_id()
    _change_status(card, CardStatus.SHIPPED, actor, reason=(note or "").strip() or None)
    return card


def activate_card(account: Account, visual_number: str, actor: Actor) -> Card:
    """The driver types the number printed on the card; only a shipped card of their own account matches."""
    _refuse_if_closed(account.id)
    wanted = printed_number_key(visual_number)
    candidates = [
        card
        for card in cards_of(account.id)
        if wanted and card.status == CardStatus.SHIPPED and printed_number_key(card.visual_number or "") == wanted
    ]
    if not candidates:
        raise CardError(_l("No card waiting for activation has this number. Check the number printed on the card."))
    if current_app.config.get("REQUIRE_PAYMENT_METHOD_FOR_ACTIVATION", True) and not has_valid_payment_method(
        account.id
    ):
        raise CardError(_l("Add a valid payment method before activating a card."))
    card = candidates[0]
    _change_status(card, CardStatus.ACTIVE, actor, action="card.activated")
    # A replacement becoming active retires nothing more: the old card was replaced when ordered.
    return card


def activate_by_operations(card: Card, actor: Actor) -> Card:
    """Staff/operations activate a shipped card directly (card handed over in person, fleet roll-outs)."""
    if not actor.is_staff:
        raise TransitionError(_l("Only staff can activate a card without its printed number."))
    _refuse_if_closed(card.account_id)
    _change_status(card, CardStatus.ACTIVE, actor, action="card.activated")
    return card


def block_card(card: Card, reason: BlockReason, actor: Actor, note: str | None = None) -> Card:
    _refuse_if_closed(card.account_id)
    lifecycle.check_block_reason(reason, by_staff=actor.is_staff)
    lifecycle.check_transition(card.status, CardStatus.BLOCKED)
    card.block_reason = reason
    _change_status(card, CardStatus.BLOCKED, actor, reason=note or reason.value, action="card.blocked")
    return card


def unblock_card(card: Card, actor: Actor, note: str | None = None) -> Card:
    # Whatever the block reason: a card blocked as lost or for payment before closure keeps that reason.
    _refuse_if_closed(card.account_id)
    if card.status != CardStatus.BLOCKED:
        raise TransitionError(_l("This card is not blocked."))
    lifecycle.check_unblock(card.block_reason, by_staff=actor.is_staff)
    _change_status(card, CardStatus.ACTIVE, actor, reason=note, action="card.unblocked")
    return card


def replace_card(card: Card, actor: Actor, note: str | None = None) -> Card:
    """Retire ``card`` at once (it stops working everywhere) and order a new one with the same label."""
    _refuse_if_closed(card.account_id)
    if (
        card.status == CardStatus.BLOCKED
        and card.block_reason in (BlockReason.PAYMENT, BlockReason.FRAUD, BlockReason.CLOSED)
        and not actor.is_staff
    ):
        raise TransitionError(_l("A card blocked by support can only be replaced by support."))
    lifecycle.check_transition(card.status, CardStatus.REPLACED)
    _change_status(card, CardStatus.REPLACED, actor, reason=note, action="card.replaced")
    account = db.session.get_one(Account, card.account_id)
    return order_card(account, actor, label=card.label, driver_name=card.driver_name, replaces=card)


def expire_card(card: Card, actor: Actor, note: str | None = None) -> Card:
    _change_status(card, CardStatus.EXPIRED, actor, reason=note, action="card.expired")
    return card


def expire_due_cards(now: dt.datetime | None = None) -> int:
    """Expire cards whose ``expires_at`` has passed (a periodic job)."""
    now = now or utcnow()
    due = db.session.scalars(
        select(Card).where(
            Card.expires_at <= now, Card.status.in_([CardStatus.SHIPPED, CardStatus.ACTIVE, CardStatus.BLOCKED])
        )
    ).all()
    for card in due:
        expire_card(card, Actor.system("card-expiry"), note="validity ended")
    return len(due)


def issue_app_token(account: Account, actor: Actor) -> Card:
    """The app's virtual token: active at once, uid generated by us (OCPI APP_USER)."""
    _refuse_if_closed(account.id)
    for _ in range(5):
        card = Card(
            account_id=account.id,
            token_type=TokenType.APP_USER,
            status=CardStatus.ACTIVE,
            issuer=_issuer(),
            uid=secrets.token_hex(16).upper(),
            contract_id=_mint_contract_id(),
            label="App",
            whitelist=WhitelistType.ALLOWED,
            activated_at=utcnow(),
        )
        try:
            with db.session.begin_nested():
                db.session.add(card)
                db.session.flush()
        except IntegrityError:
            continue
        record("card.app_token_issued", "card", card.id, actor=actor, details={"account_id": account.id})
        _emit_token_update(card, "active")
        return card
    raise CardError("could not generate a unique app token")


def block_all_cards(account_id: int, reason: BlockReason, actor: Actor, note: str | None = None) -> list[Card]:
    """Block every usable card of an account (unpaid invoices, fraud, account closure)."""
    blocked = []
    for card in cards_of(account_id):
        if card.status in (CardStatus.ACTIVE, CardStatus.SHIPPED):
            card.block_reason = reason
            _change_status(card, CardStatus.BLOCKED, actor, reason=note or reason.value, action="card.blocked")
            blocked.append(card)
        elif card.status == CardStatus.ORDERED and reason == BlockReason.CLOSED:
            _change_status(card, CardStatus.EXPIRED, actor, reason="account closed", action="card.cancelled")
    return blocked


def unblock_all_cards(account_id: int, reason: BlockReason, actor: Actor, note: str | None = None) -> list[Card]:
    """Lift the blocks of one reason (e.g. ``payment`` once the balance is paid); other blocks stay. Nothing is
    lifted on a closed account: its cards never come back, even one blocked for payment before the closure
    whose final invoice is paid now (the payment must not fail for it either, so this returns nothing)."""
    if db.session.get_one(Account, account_id).closed_at is not None:
        return []
    lifted = []
    for card in cards_of(account_id):
        if card.status == CardStatus.BLOCKED and card.block_reason == reason:
            unblock_card(card, actor, note=note)
            lifted.append(card)
    return lifted
