"""The card state machine: which status may follow which, and who may make the move.

Kept apart from the services so the whole lifecycle reads in one screen and tests can walk every pair.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from app.cards.models import BlockReason, CardStatus

ALLOWED_TRANSITIONS: dict[CardStatus, frozenset[CardStatus]] = {
    CardStatus.ORDERED: frozenset({CardStatus.SHIPPED, CardStatus.EXPIRED}),
    CardStatus.SHIPPED: frozenset({CardStatus.ACTIVE, CardStatus.BLOCKED, CardStatus.REPLACED, CardStatus.EXPIRED}),
    CardStatus.ACTIVE: frozenset({CardStatus.BLOCKED, CardStatus.REPLACED, CardStatus.EXPIRED}),
    CardStatus.BLOCKED: frozenset({CardStatus.ACTIVE, CardStatus.REPLACED, CardStatus.EXPIRED}),
    CardStatus.REPLACED: frozenset(),
    CardStatus.EXPIRED: frozenset(),
}

# Reasons a driver may block with, and lift again themselves (they found the card back).
DRIVER_BLOCK_REASONS = frozenset({BlockReason.LOST, BlockReason.STOLEN})
# Only staff may lift these; a closed account's cards never come back.
STAFF_ONLY_UNBLOCK = frozenset({BlockReason.PAYMENT, BlockReason.FRAUD, BlockReason.SUPPORT})
NEVER_UNBLOCK = frozenset({BlockReason.CLOSED})


# Each status as a word in a sentence ("A card that is blocked cannot become ordered."), in the reader's language:
# the stored values are English codes.
STATUS_WORDS = {
    CardStatus.ORDERED: _l("ordered"),
    CardStatus.SHIPPED: _l("shipped"),
    CardStatus.ACTIVE: _l("active"),
    CardStatus.BLOCKED: _l("blocked"),
    CardStatus.REPLACED: _l("replaced"),
    CardStatus.EXPIRED: _l("expired"),
}


class TransitionError(ValueError):
    """A status change the lifecycle does not allow, or not for this actor."""


def check_transition(current: CardStatus, target: CardStatus) -> None:
    if target not in ALLOWED_TRANSITIONS[current]:
        raise TransitionError(
            _l(
                "A card that is %(current)s cannot become %(target)s.",
                current=STATUS_WORDS[current],
                target=STATUS_WORDS[target],
            )
        )


def check_unblock(reason: BlockReason | None, *, by_staff: bool) -> None:
    if reason in NEVER_UNBLOCK:
        raise TransitionError(_l("Cards of a closed account cannot be unblocked."))
    if reason in STAFF_ONLY_UNBLOCK and not by_staff:
        raise TransitionError(_l("A card blocked for this reason can only be unblocked by support."))


def check_block_reason(reason: BlockReason, *, by_staff: bool) -> None:
    if reason == BlockReason.CLOSED:
        raise TransitionError(_l("Use account closure to block cards for a closed account."))
    if not by_staff and reason not in DRIVER_BLOCK_REASONS:
        raise TransitionError(_l("Drivers can block a card as lost or stolen."))
