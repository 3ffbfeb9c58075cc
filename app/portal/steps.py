"""The three steps a new driver takes before the first charge, as the dashboard lists them: add a payment method,
order a card, activate it when it arrives. Each is ticked from the account's real state, so the list follows
whatever door the driver used (portal, app, support)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.cards.models import Card, CardStatus, TokenType
from app.payments.services import has_valid_payment_method

# A card ordered for this account counts whatever became of it since, except a replaced or expired one alone.
_ORDERED = (CardStatus.ORDERED, CardStatus.SHIPPED, CardStatus.ACTIVE, CardStatus.BLOCKED)


@dataclass(frozen=True)
class StartSteps:
    payment_method: bool
    card_ordered: bool
    card_active: bool

    @property
    def all_done(self) -> bool:
        return self.payment_method and self.card_ordered and self.card_active


def start_steps(account_id: int, cards: Iterable[Card]) -> StartSteps:
    """Where ``account_id`` stands; ``cards`` are its cards (the dashboard already has them)."""
    rfid = [card for card in cards if card.token_type == TokenType.RFID]
    return StartSteps(
        payment_method=has_valid_payment_method(account_id),
        card_ordered=any(card.status in _ORDERED for card in rfid),
        card_active=any(card.status == CardStatus.ACTIVE for card in rfid),
    )
