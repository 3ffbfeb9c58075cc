"""The card state machine: every allowed and every refused transition, and who may make it."""

from __future__ import annotations

import itertools

import pytest
from flask_babel import force_locale

from app.audit.models import AuditEntry
from app.audit.services import Actor
from app.cards import services
from app.cards.lifecycle import ALLOWED_TRANSITIONS, TransitionError, check_transition
from app.cards.models import BlockReason, CardStatus, TokenUpdate
from app.extensions import db
from tests.factories import add_stock, give_payment_method, make_user

STAFF = Actor.system("test-staff")

EXPECTED = {
    (CardStatus.ORDERED, CardStatus.SHIPPED),
    (CardStatus.ORDERED, CardStatus.EXPIRED),
    (CardStatus.SHIPPED, CardStatus.ACTIVE),
    (CardStatus.SHIPPED, CardStatus.BLOCKED),
    (CardStatus.SHIPPED, CardStatus.REPLACED),
    (CardStatus.SHIPPED, CardStatus.EXPIRED),
    (CardStatus.ACTIVE, CardStatus.BLOCKED),
    (CardStatus.ACTIVE, CardStatus.REPLACED),
    (CardStatus.ACTIVE, CardStatus.EXPIRED),
    (CardStatus.BLOCKED, CardStatus.ACTIVE),
    (CardStatus.BLOCKED, CardStatus.REPLACED),
    (CardStatus.BLOCKED, CardStatus.EXPIRED),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(CardStatus, CardStatus)))
def test_transition_table(current, target):
    if (current, target) in EXPECTED:
        check_transition(current, target)
    else:
        with pytest.raises(TransitionError):
            check_transition(current, target)


def test_table_matches_expectation_exactly():
    actual = {(a, b) for a, targets in ALLOWED_TRANSITIONS.items() for b in targets}
    assert actual == EXPECTED


def _card_in(status: CardStatus, db_session):  # type: ignore[no-untyped-def]
    """Bring a real card into ``status`` through the services."""
    user = make_user()
    give_payment_method(user.account)
    add_stock(3, start=user.id * 10)
    card = services.order_card(user.account, Actor.of(user))
    if status == CardStatus.ORDERED:
        return user, card
    services.ship_card(card, STAFF)
    if status == CardStatus.SHIPPED:
        return user, card
    services.activate_card(user.account, card.visual_number, Actor.of(user))
    if status == CardStatus.ACTIVE:
        return user, card
    if status == CardStatus.BLOCKED:
        services.block_card(card, BlockReason.LOST, Actor.of(user))
        return user, card
    if status == CardStatus.REPLACED:
        services.replace_card(card, Actor.of(user))
        return user, card
    services.expire_card(card, STAFF)
    return user, card


OPERATIONS = {
    CardStatus.SHIPPED: lambda card, user: services.ship_card(card, STAFF),
    CardStatus.ACTIVE: lambda card, user: (
        services.unblock_card(card, STAFF)
        if card.status == CardStatus.BLOCKED
        else services.activate_card(user.account, card.visual_number or "x", Actor.of(user))
    ),
    CardStatus.BLOCKED: lambda card, user: services.block_card(card, BlockReason.SUPPORT, STAFF),
    CardStatus.REPLACED: lambda card, user: services.replace_card(card, STAFF),
    CardStatus.EXPIRED: lambda card, user: services.expire_card(card, STAFF),
}


@pytest.mark.parametrize("current", list(CardStatus))
@pytest.mark.parametrize("target", [s for s in CardStatus if s != CardStatus.ORDERED])
def test_every_transition_through_the_services(db_session, current, target):
    user, card = _card_in(current, db_session)
    updates_before = db.session.query(TokenUpdate).filter_by(card_id=card.id).count()
    if (current, target) in EXPECTED:
        OPERATIONS[target](card, user)
        assert card.status == target
        # Every change of a card with a uid is audited and queued for the partners.
        assert db.session.query(AuditEntry).filter_by(subject_type="card", subject_id=str(card.id)).count() >= 2
        expected_updates = updates_before + (1 if card.uid else 0)  # an unshipped order has no token yet
        assert db.session.query(TokenUpdate).filter_by(card_id=card.id).count() == expected_updates
    else:
        with pytest.raises((TransitionError, services.CardError)):
            OPERATIONS[target](card, user)
        db.session.rollback()


def test_driver_may_lift_only_their_own_blocks(db_session):
    user, card = _card_in(CardStatus.ACTIVE, db_session)
    driver = Actor.of(user)
    services.block_card(card, BlockReason.STOLEN, driver)
    services.unblock_card(card, driver)
    assert card.status == CardStatus.ACTIVE
    for reason in (BlockReason.PAYMENT, BlockReason.FRAUD, BlockReason.SUPPORT):
        services.block_card(card, reason, STAFF, note="test")
        with pytest.raises(TransitionError):
            services.unblock_card(card, driver)
        services.unblock_card(card, STAFF, note="resolved")
        assert card.status == CardStatus.ACTIVE
    with pytest.raises(TransitionError):
        services.block_card(card, BlockReason.FRAUD, driver)


def test_replacement_retires_old_card_at_once_and_orders_a_new_one(db_session):
    user, card = _card_in(CardStatus.ACTIVE, db_session)
    card.label = "Family car"
    new_card = services.replace_card(card, Actor.of(user))
    assert card.status == CardStatus.REPLACED and not card.valid
    assert new_card.status == CardStatus.ORDERED and new_card.replaces_card_id == card.id
    assert new_card.label == "Family car"
    last_update = db.session.query(TokenUpdate).filter_by(card_id=card.id).order_by(TokenUpdate.id.desc()).first()
    assert last_update.token["valid"] is False


def test_activation_needs_the_printed_number_of_an_own_shipped_card(db_session):
    user, card = _card_in(CardStatus.SHIPPED, db_session)
    _other, other_card = _card_in(CardStatus.SHIPPED, db_session)
    with pytest.raises(services.CardError):
        services.activate_card(user.account, other_card.visual_number, Actor.of(user))
    with pytest.raises(services.CardError):
        services.activate_card(user.account, "VLT-999999", Actor.of(user))
    # Spaces and case do not matter when typing the number.
    services.activate_card(user.account, card.visual_number.lower().replace("-", "-"), Actor.of(user))
    assert card.status == CardStatus.ACTIVE


def test_activation_requires_a_valid_payment_method(app, db_session):
    user = make_user()
    add_stock(2, start=900)
    card = services.ship_card(services.order_card(user.account, Actor.of(user)), STAFF)
    with pytest.raises(services.CardError, match="payment method"):
        services.activate_card(user.account, card.visual_number, Actor.of(user))
    give_payment_method(user.account, exp_year=2001)  # expired card
    with pytest.raises(services.CardError, match="payment method"):
        services.activate_card(user.account, card.visual_number, Actor.of(user))
    app.config["REQUIRE_PAYMENT_METHOD_FOR_ACTIVATION"] = False
    try:
        services.activate_card(user.account, card.visual_number, Actor.of(user))
    finally:
        app.config["REQUIRE_PAYMENT_METHOD_FOR_ACTIVATION"] = True
    assert card.status == CardStatus.ACTIVE


def test_shipping_without_stock_fails_clearly(db_session):
    user = make_user()
    card = services.order_card(user.account, Actor.of(user))
    with pytest.raises(services.OutOfStockError):
        services.ship_card(card, STAFF)
    assert card.status == CardStatus.ORDERED


def test_app_token_is_active_at_once(db_session):
    user = make_user()
    token = services.issue_app_token(user.account, Actor.of(user))
    assert token.status == CardStatus.ACTIVE and token.token_type.value == "APP_USER"
    assert len(token.uid) == 32 and token.contract_id.startswith("BE-VLT-C")


def test_block_all_cards_for_payment_and_lift_them(db_session):
    user, card = _card_in(CardStatus.ACTIVE, db_session)
    services.block_card(card, BlockReason.LOST, Actor.of(user))
    second = services.issue_app_token(user.account, Actor.of(user))
    blocked = services.block_all_cards(user.account.id, BlockReason.PAYMENT, Actor.system("billing"))
    assert blocked == [second]
    lifted = services.unblock_all_cards(user.account.id, BlockReason.PAYMENT, Actor.system("billing"))
    assert lifted == [second] and second.status == CardStatus.ACTIVE
    assert card.status == CardStatus.BLOCKED and card.block_reason == BlockReason.LOST


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("nl", "Een pas met status geblokkeerd kan niet de status besteld krijgen."),
        ("fr", "Une carte à l'état bloquée ne peut pas passer à l'état commandée."),
        ("en", "A card that is blocked cannot become ordered."),
    ],
)
def test_a_refused_move_names_the_statuses_in_the_readers_language(app, language, expected):
    """The stored statuses are English codes: a Dutch or French page must not show them (issue 16, Language)."""
    with pytest.raises(TransitionError) as refused:
        check_transition(CardStatus.BLOCKED, CardStatus.ORDERED)
    with app.test_request_context(), force_locale(language):
        assert str(refused.value) == expected
