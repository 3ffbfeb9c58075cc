"""Helpers for the sessions/CDR/token tests: real cards in every state (through the card services), partners
that may speak for the parties of the official examples, and the examples themselves."""

from __future__ import annotations

import itertools
import json
from typing import Any

from app.audit.services import Actor
from app.cards import services
from app.cards.models import BlockReason, Card, CardStatus
from app.extensions import db
from app.roaming.models import Partner, PartnerParty
from tests.factories import add_stock, give_payment_method, make_user
from tests.shared_data import EXAMPLES as SHARED_EXAMPLES

EXAMPLES = SHARED_EXAMPLES
STAFF = Actor.system("test-staff")
_stock = itertools.count(1)


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text())


def example_text(name: str) -> str:
    return (EXAMPLES / name).read_text()


def card_in(status: CardStatus, *, block_reason: BlockReason = BlockReason.LOST, user=None) -> Card:  # type: ignore[no-untyped-def]
    """A real card brought into ``status`` through the services (so TokenUpdates are written as in life)."""
    user = user or make_user()
    give_payment_method(user.account)
    add_stock(1, start=10_000 + next(_stock) * 10)
    card = services.order_card(user.account, Actor.of(user))
    services.ship_card(card, STAFF)
    if status == CardStatus.SHIPPED:
        return card
    services.activate_by_operations(card, STAFF)
    if status == CardStatus.BLOCKED:
        services.block_card(card, block_reason, STAFF)
    elif status == CardStatus.REPLACED:
        services.replace_card(card, STAFF)
    elif status == CardStatus.EXPIRED:
        services.expire_card(card, STAFF)
    db.session.flush()
    return card


def our_cdr_token(card: Card) -> dict[str, Any]:
    from flask import current_app

    return {
        "country_code": current_app.config["COMPANY_COUNTRY_CODE"],
        "party_id": current_app.config["COMPANY_PARTY_ID"],
        "uid": card.uid,
        "type": card.token_type.value,
        "contract_id": card.contract_id,
    }


def allow_parties(partner: Partner, *parties: tuple[str, str]) -> None:
    """Let the test partner speak for the CPO parties used in the official examples (as a hub would)."""
    for country_code, party_id in parties:
        partner.parties.append(PartnerParty(country_code=country_code, party_id=party_id, role="CPO"))
    db.session.flush()
