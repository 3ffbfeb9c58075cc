"""``/api/v1/cards``: the driver's charge cards and app tokens, through ``cards.services`` (the portal's rules).

Order a card, activate it with the number printed on it, block it as lost or stolen (and lift that block), replace
it; and ``POST /cards/app-token``: the ``APP_USER`` OCPI token of this phone, active at once and pushed to partners
like a card (the service writes its token update; the push job delivers it). Asking again from the same phone
returns the same token, never a second one. Another driver's card is a 404, as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate

from app.accounts import api_tokens
from app.api.auth import current_account, current_account_id, current_device, current_driver
from app.api.blueprints import ID, ApiBlueprint
from app.api.pagination import PageArgs, page_of, page_schema
from app.api.problems import ApiProblem, field_problem
from app.api.schemas import text
from app.audit.services import Actor
from app.cards import services
from app.cards.lifecycle import DRIVER_BLOCK_REASONS, TransitionError
from app.cards.models import BlockReason, Card, CardStatus, TokenType
from app.extensions import db
from app.i18n import message_of
from app.payments.services import may_activate_cards

blp = ApiBlueprint(
    "api_cards", __name__, tag="Cards", url_prefix="/api/v1/cards", description="Charge cards and app tokens"
)


class CardOut(Schema):
    id = fields.Integer(required=True)
    type = fields.String(required=True, validate=validate.OneOf([kind.value for kind in TokenType]))
    status = fields.String(required=True, validate=validate.OneOf([status.value for status in CardStatus]))
    label = fields.String(required=True, allow_none=True)
    driver_name = fields.String(required=True, allow_none=True)
    visual_number = fields.String(required=True, allow_none=True, metadata={"description": "Printed on the card."})
    contract_id = fields.String(required=True, allow_none=True, metadata={"description": "eMAID"})
    block_reason = fields.String(required=True, allow_none=True)
    can_unblock = fields.Boolean(required=True, metadata={"description": "Blocked by the driver: they may lift it."})
    replaces_card_id = fields.Integer(required=True, allow_none=True)
    ordered_at = fields.DateTime(required=True)
    shipped_at = fields.DateTime(required=True, allow_none=True)
    activated_at = fields.DateTime(required=True, allow_none=True)
    blocked_at = fields.DateTime(required=True, allow_none=True)
    expires_at = fields.DateTime(required=True, allow_none=True)


CardPage = page_schema(CardOut, "CardPage")


class CardListArgs(PageArgs):
    type = fields.String(validate=validate.OneOf([kind.value for kind in TokenType]))


class OrderIn(Schema):
    label = text(80, allow_none=True, metadata={"example": "Company car"})
    driver_name = text(120, allow_none=True)


class ActivateIn(Schema):
    visual_number = text(64, required=True, min_length=1, metadata={"description": "Printed on the card."})


class BlockIn(Schema):
    reason = fields.String(required=True, validate=validate.OneOf([reason.value for reason in DRIVER_BLOCK_REASONS]))


def present(card: Card) -> dict[str, Any]:
    return {
        "id": card.id,
        "type": card.token_type.value,
        "status": card.status.value,
        "label": card.label,
        "driver_name": card.driver_name,
        "visual_number": card.visual_number,
        "contract_id": card.contract_id,
        "block_reason": card.block_reason.value if card.block_reason else None,
        "can_unblock": card.status == CardStatus.BLOCKED and card.block_reason in DRIVER_BLOCK_REASONS,
        "replaces_card_id": card.replaces_card_id,
        "ordered_at": card.ordered_at,
        "shipped_at": card.shipped_at,
        "activated_at": card.activated_at,
        "blocked_at": card.blocked_at,
        "expires_at": card.expires_at,
    }


def own_card(card_id: int) -> Card:
    card = services.card_of_account(current_account_id(), card_id)
    if card is None:
        raise ApiProblem(404, "card_not_found", _l("This card does not exist or is not yours."))
    return card


def _refused(error: Exception, code: str) -> ApiProblem:
    return ApiProblem(409, code, message_of(error), detail=str(error))


def _act(action: Callable[[], Card]) -> Card:
    """Run a card use case in this request's unit of work: committed when it succeeds, refused (409) without
    change when the lifecycle or the card rules say no."""
    try:
        card = action()
    except TransitionError as error:
        db.session.rollback()
        raise _refused(error, "card_transition_refused") from None
    except services.OutOfStockError as error:
        db.session.rollback()
        raise _refused(error, "out_of_stock") from None
    except services.CardError as error:
        db.session.rollback()
        raise _refused(error, "card_refused") from None
    db.session.commit()
    return card


def _actor() -> Actor:
    return Actor.of(current_driver())


@blp.route("", methods=["GET"])
@blp.arguments(CardListArgs, location="query")
@blp.response(200, CardPage)
def card_list(args: dict[str, Any]) -> dict[str, Any]:
    """The driver's cards and app tokens, newest first; `type` keeps one kind."""
    cards = services.cards_of(current_account_id())
    if args.get("type"):
        cards = [card for card in cards if card.token_type.value == args["type"]]
    return page_of(cards, lambda card: (card.id,), "cards", args).answer("cards", present)


@blp.route("", methods=["POST"])
@blp.arguments(OrderIn)
@blp.response(201, CardOut)
def order(body: dict[str, Any]) -> dict[str, Any]:
    """Order a new charge card (posted within two working days; activate it when it arrives)."""
    account = current_account()
    return present(
        _act(
            lambda: services.order_card(account, _actor(), label=body.get("label"), driver_name=body.get("driver_name"))
        )
    )


@blp.route("/activate", methods=["POST"])
@blp.arguments(ActivateIn)
@blp.response(200, CardOut)
def activate(body: dict[str, Any]) -> dict[str, Any]:
    """Activate the card that arrived, by the number printed on it. Needs a valid payment method."""
    account = current_account()
    if not may_activate_cards(account.id):
        raise ApiProblem(409, "payment_method_required", _l("Add a valid payment method before activating a card."))
    try:
        card = services.activate_card(account, body["visual_number"], _actor())
    except services.CardError as error:
        db.session.rollback()
        raise field_problem("visual_number", message_of(error), code="card_number_unknown") from None
    db.session.commit()
    return present(card)


@blp.route("/app-token", methods=["POST"])
@blp.response(201, CardOut)
@blp.alt_response(200, schema=CardOut, description="This phone already has its app token: the same one.")
def app_token() -> dict[str, Any] | tuple[dict[str, Any], int]:
    """The `APP_USER` token of this phone: issued once per signed-in device, active at once, pushed to partners."""
    device = current_device()
    if device.app_token_card_id is not None:
        existing = services.card_of_account(current_account_id(), device.app_token_card_id)
        if existing is not None and existing.status not in (CardStatus.REPLACED, CardStatus.EXPIRED):
            return present(existing), 200
    account = current_account()

    def issue() -> Card:
        card = services.issue_app_token(account, _actor())
        api_tokens.remember_app_token(device, card.id)
        return card

    return present(_act(issue))


@blp.route(f"/<{ID}:card_id>", methods=["GET"])
@blp.response(200, CardOut)
def card_detail(card_id: int) -> dict[str, Any]:
    """One of the driver's cards."""
    return present(own_card(card_id))


@blp.route(f"/<{ID}:card_id>/block", methods=["POST"])
@blp.arguments(BlockIn)
@blp.response(200, CardOut)
def block(body: dict[str, Any], card_id: int) -> dict[str, Any]:
    """Block a lost or stolen card: it stops working at every charge point (partners are told)."""
    card = own_card(card_id)
    return present(_act(lambda: services.block_card(card, BlockReason(body["reason"]), _actor())))


@blp.route(f"/<{ID}:card_id>/unblock", methods=["POST"])
@blp.response(200, CardOut)
def unblock(card_id: int) -> dict[str, Any]:
    """Lift a block the driver made (lost, stolen); blocks by support or for payment stay."""
    card = own_card(card_id)
    return present(_act(lambda: services.unblock_card(card, _actor())))


@blp.route(f"/<{ID}:card_id>/replace", methods=["POST"])
@blp.response(201, CardOut)
def replace(card_id: int) -> dict[str, Any]:
    """Retire the card at once and order a new one with the same label; answers the new card."""
    card = own_card(card_id)
    return present(_act(lambda: services.replace_card(card, _actor())))
