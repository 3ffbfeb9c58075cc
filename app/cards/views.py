"""Portal pages for a driver's cards: order, activate, block a lost card, unblock, replace."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from app.accounts.access import driver_required
from app.audit.services import Actor, entries_for
from app.cards import services
from app.cards.forms import ActivateCardForm, BlockCardForm, NoteForm, OrderCardForm
from app.cards.lifecycle import DRIVER_BLOCK_REASONS, TransitionError
from app.cards.models import BlockReason, Card, CardStatus
from app.extensions import db

bp = Blueprint("cards", __name__, url_prefix="/cards")


def _own_card(card_id: int) -> Card:
    card = services.card_of_account(current_user.account_id, card_id)
    if card is None:
        abort(404)
    return card


def _list_page(
    order_form: OrderCardForm | None = None, activate_form: ActivateCardForm | None = None, status: int = 200
) -> tuple[str, int]:
    cards = services.cards_of(current_user.account_id)
    return render_template(
        "portal/cards/list.html",
        cards=cards,
        order_form=order_form or OrderCardForm(prefix="order"),
        activate_form=activate_form or ActivateCardForm(prefix="activate"),
        waiting=[card for card in cards if card.status == CardStatus.SHIPPED],
    ), status


@bp.get("/")
@driver_required
def index() -> ResponseReturnValue:
    return _list_page()


@bp.post("/order")
@driver_required
def order() -> ResponseReturnValue:
    form = OrderCardForm(prefix="order")
    if not form.validate_on_submit():
        return _list_page(order_form=form, status=400)
    try:
        services.order_card(
            current_user.account, Actor.of(current_user), label=form.label.data, driver_name=form.driver_name.data
        )
    except services.CardError as error:
        db.session.rollback()
        form.form_errors.append(str(error))
        return _list_page(order_form=form, status=400)
    db.session.commit()
    flash(_("Your card is ordered. We will post it within two working days."), "success")
    return redirect(url_for("cards.index"))


@bp.post("/activate")
@driver_required
def activate() -> ResponseReturnValue:
    form = ActivateCardForm(prefix="activate")
    if not form.validate_on_submit():
        return _list_page(activate_form=form, status=400)
    try:
        card = services.activate_card(current_user.account, form.visual_number.data, Actor.of(current_user))
    except services.CardError as error:
        db.session.rollback()
        form.visual_number.errors = [*form.visual_number.errors, str(error)]
        return _list_page(activate_form=form, status=400)
    db.session.commit()
    flash(_("Card %(number)s is active. Happy charging!", number=card.visual_number), "success")
    return redirect(url_for("cards.detail", card_id=card.id))


@bp.get("/<int:card_id>")
@driver_required
def detail(card_id: int) -> ResponseReturnValue:
    card = _own_card(card_id)
    can_unblock = card.status == CardStatus.BLOCKED and card.block_reason in DRIVER_BLOCK_REASONS
    return render_template(
        "portal/cards/detail.html",
        card=card,
        block_form=BlockCardForm(prefix="block"),
        action_form=NoteForm(prefix="action"),
        can_unblock=can_unblock,
        history=entries_for("card", card.id, limit=20),
    )


def _act(card_id: int, action: Callable[[Card], object], success: str) -> Response:
    card = _own_card(card_id)
    try:
        result = action(card)
    except (TransitionError, services.CardError) as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for("cards.detail", card_id=card_id))
    db.session.commit()
    flash(success, "success")
    target = result if isinstance(result, Card) else card
    return redirect(url_for("cards.detail", card_id=target.id))


@bp.post("/<int:card_id>/block")
@driver_required
def block(card_id: int) -> ResponseReturnValue:
    form = BlockCardForm(prefix="block")
    if not form.validate_on_submit():
        abort(400)
    return _act(
        card_id,
        lambda card: services.block_card(card, BlockReason(form.reason.data), Actor.of(current_user)),
        _("The card is blocked. It no longer works at any charge point."),
    )


@bp.post("/<int:card_id>/unblock")
@driver_required
def unblock(card_id: int) -> ResponseReturnValue:
    if not NoteForm(prefix="action").validate_on_submit():
        abort(400)
    return _act(card_id, lambda card: services.unblock_card(card, Actor.of(current_user)), _("The card works again."))


@bp.post("/<int:card_id>/replace")
@driver_required
def replace(card_id: int) -> ResponseReturnValue:
    if not NoteForm(prefix="action").validate_on_submit():
        abort(400)
    return _act(
        card_id,
        lambda card: services.replace_card(card, Actor.of(current_user)),
        _("The old card no longer works. A new card is on its way."),
    )
