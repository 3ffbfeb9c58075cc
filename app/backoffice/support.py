"""Support back office: account search, the account page (profile, plan, cards, sessions and CDRs, authorizations,
invoices, notes, activity), one session's price breakdown, and audited actions on cards, plans and notes.

Views only translate HTTP to service calls; every action needs the ``support`` role, a CSRF token and a
reason, and lands in the audit log through the services it calls. A closed account refuses every change in those
services (``AccountClosedError``), whichever page asks; the page then says so in the agent's language.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from app.accounts.models import Account, Role
from app.accounts.services import AccountError, PendingEmail, send_pending
from app.audit.services import Actor, record
from app.backoffice.access import staff_required
from app.cards import services as card_services
from app.cards import stock
from app.cards.forms import StaffBlockCardForm, StaffNoteForm
from app.cards.lifecycle import TransitionError
from app.cards.models import BlockReason, Card, CardStatus
from app.customer_care import closure, search, support, wording
from app.customer_care.activity import activity_page
from app.customer_care.authorization_history import authorization_page
from app.customer_care.charging_history import cdr_page, sessions_without_cdr
from app.customer_care.price_breakdown import session_breakdown
from app.db import utcnow
from app.extensions import db
from app.plans import services as plan_services
from app.plans.models import Plan
from app.plans.notices import plan_change_emails

bp = Blueprint("support", __name__, url_prefix="/backoffice/support")

MAX_PAGE = 10_000  # deeper than any account's history; a larger number is a typo, not a page


def _actor() -> Actor:
    return Actor.of(current_user)


def _account_or_404(account_id: int) -> Account:
    account = db.session.get(Account, account_id)
    if account is None:
        abort(404)
    return account


def _card_or_404(card_id: int) -> Card:
    card = db.session.get(Card, card_id)
    if card is None:
        abort(404)
    return card


def _page_arg(name: str) -> int:
    """A page number from the query string: 1 when absent or not a number, at most ``MAX_PAGE``."""
    value = request.args.get(name, "")
    return min(max(int(value), 1), MAX_PAGE) if value.isdigit() and len(value) <= 6 else 1


def _page_words() -> dict[str, object]:
    """What every support page formats with: the words for stored codes and the seller's time zone."""
    return {"words": wording, "seller_time": wording.seller_time, "seller_zone": wording.seller_zone_name()}


@bp.get("/")
@staff_required(Role.SUPPORT)
def home() -> str:
    query = request.args.get("q", "")
    hits = search.search_accounts(query) if query else []
    return render_template(
        "backoffice/support/home.html",
        query=query[: search.MAX_QUERY_LENGTH],
        hits=hits,
        too_short=bool(query) and len(query.strip()) < search.MIN_QUERY_LENGTH and not query.strip().isdigit(),
        **_page_words(),
    )


@bp.get("/accounts/<int:account_id>")
@staff_required(Role.SUPPORT)
def account(account_id: int) -> str:
    account = _account_or_404(account_id)
    from app.billing.invoicing.invoices import invoices_of
    from app.payments.services import active_payment_method

    now = utcnow()
    cards = card_services.cards_of(account.id)
    return render_template(
        "backoffice/support/account.html",
        account=account,
        user=support.driver_user(account),
        cards=cards,
        cards_by_id={card.id: card for card in cards},
        plan=plan_services.plan_at(account.id, now),
        pending_plan=plan_services.pending_change(account.id, now),
        plan_history=plan_services.history(account.id),
        plans=plan_services.plans_open_to(account),
        payment_method=active_payment_method(account.id),
        notes=support.notes_of(account.id),
        activity=activity_page(account.id, cards, _page_arg("activity")),
        authorizations=authorization_page(account.id, _page_arg("authorizations")),
        sessions=cdr_page(account.id, _page_arg("sessions")),
        open_sessions=sessions_without_cdr(account.id),
        invoices=invoices_of(account.id, limit=12),
        may_see_invoices=current_user.has_role(Role.FINANCE),
        block_form=StaffBlockCardForm(prefix="block"),
        note_form=StaffNoteForm(prefix="note"),
        **_page_words(),
    )


@bp.get("/accounts/<int:account_id>/sessions/<int:cdr_id>")
@staff_required(Role.SUPPORT)
def session_detail(account_id: int, cdr_id: int) -> str:
    """Why did this session cost what it did: one CDR of the account, its price built up part by part."""
    account = _account_or_404(account_id)
    breakdown = session_breakdown(account.id, cdr_id)
    if breakdown is None:
        abort(404)
    return render_template(
        "backoffice/support/session.html",
        account=account,
        b=breakdown,
        may_see_invoices=current_user.has_role(Role.FINANCE),
        **_page_words(),
    )


def _back(account_id: int) -> ResponseReturnValue:
    return redirect(url_for("support.account", account_id=account_id))


# Support actions that cannot be undone: the form carries a ticked "I understand" box (``_note_action.html``),
# checked here so the rule holds without JavaScript and for any POST.
IRREVERSIBLE = {"replace", "plan", "close"}


def _unconfirmed(account_id: int) -> ResponseReturnValue | None:
    if request.form.get("confirm") == "y":
        return None
    flash(_("Tick “I understand” to confirm: this step cannot be undone."), "error")
    return _back(account_id)


def _run(account_id: int, action: Callable[[], object], success: str) -> ResponseReturnValue:
    try:
        outcome = action()
    except (card_services.AccountClosedError, plan_services.AccountClosedError):
        db.session.rollback()
        flash(_("This account is closed: nothing can be ordered or changed on it."), "error")
        return _back(account_id)
    except (
        TransitionError,
        card_services.CardError,
        plan_services.PlanError,
        AccountError,
        closure.ClosureError,
    ) as error:
        db.session.rollback()
        flash(str(error), "error")
        return _back(account_id)
    db.session.commit()
    # An action may hand back the emails it prepared (a plan change): sent once its work is committed.
    if isinstance(outcome, list):
        send_pending([email for email in outcome if isinstance(email, PendingEmail)])
    flash(success, "success")
    return _back(account_id)


@bp.post("/cards/<int:card_id>/block")
@staff_required(Role.SUPPORT)
def block_card(card_id: int) -> ResponseReturnValue:
    card = _card_or_404(card_id)
    form = StaffBlockCardForm(prefix="block")
    if not form.validate_on_submit():
        # No default reason: a block without one chosen is refused, never taken as "lost".
        flash(_("Choose why the card is blocked and give a note."), "error")
        return _back(card.account_id)
    return _run(
        card.account_id,
        lambda: card_services.block_card(card, BlockReason(form.reason.data), _actor(), note=form.note.data),
        _("Card blocked."),
    )


@bp.post("/cards/<int:card_id>/<any(unblock, replace, ship):action>")
@staff_required(Role.SUPPORT)
def card_action(card_id: int, action: str) -> ResponseReturnValue:
    card = _card_or_404(card_id)
    form = StaffNoteForm(prefix="note")
    if not form.validate_on_submit():
        flash(_("Every support action needs a reason."), "error")
        return _back(card.account_id)
    operations = {
        "unblock": (lambda: card_services.unblock_card(card, _actor(), note=form.note.data), _("Card unblocked.")),
        "replace": (
            lambda: card_services.replace_card(card, _actor(), note=form.note.data),
            _("Card replaced; the new card is ordered."),
        ),
        "ship": (
            lambda: card_services.ship_card(card, _actor(), note=form.note.data),
            _("Card shipped from stock."),
        ),
    }
    operation, message = operations[action]
    if action in IRREVERSIBLE and (refused := _unconfirmed(card.account_id)) is not None:
        return refused
    return _run(card.account_id, operation, message)


@bp.post("/accounts/<int:account_id>/order-card")
@staff_required(Role.SUPPORT)
def order_card(account_id: int) -> ResponseReturnValue:
    account = _account_or_404(account_id)
    form = StaffNoteForm(prefix="note")
    if not form.validate_on_submit():
        flash(_("Every support action needs a reason."), "error")
        return _back(account_id)
    return _run(
        account_id, lambda: card_services.order_card(account, _actor(), note=form.note.data), _("Card ordered.")
    )


@bp.post("/accounts/<int:account_id>/plan")
@staff_required(Role.SUPPORT)
def change_plan(account_id: int) -> ResponseReturnValue:
    account = _account_or_404(account_id)
    form = StaffNoteForm(prefix="note")
    plan_id = request.form.get("plan_id", "")
    plan = db.session.get(Plan, int(plan_id)) if plan_id.isdigit() else None
    if plan is None or not form.validate_on_submit():
        flash(_("Choose a plan and give a reason."), "error")
        return _back(account_id)
    if (refused := _unconfirmed(account_id)) is not None:
        return refused
    return _run(
        account_id,
        lambda: plan_change_emails(account, plan_services.change_plan(account, plan, _actor(), reason=form.note.data)),
        _("Plan changed."),
    )


@bp.post("/accounts/<int:account_id>/notes")
@staff_required(Role.SUPPORT)
def add_note(account_id: int) -> ResponseReturnValue:
    account = _account_or_404(account_id)
    form = StaffNoteForm(prefix="note")
    if not form.validate_on_submit():
        flash(_("A note cannot be empty."), "error")
        return _back(account_id)
    return _run(account_id, lambda: support.add_note(account, form.note.data, _actor()), _("Note added."))


@bp.post("/accounts/<int:account_id>/resend-confirmation")
@staff_required(Role.SUPPORT)
def resend_confirmation(account_id: int) -> ResponseReturnValue:
    account = _account_or_404(account_id)
    form = StaffNoteForm(prefix="note")
    if not form.validate_on_submit():
        flash(_("Every support action needs a reason."), "error")
        return _back(account_id)
    try:
        emails = support.resend_confirmation_by_staff(account, _actor(), form.note.data)
    except support.AccountClosedError:
        db.session.rollback()
        flash(_("This account is closed: nothing can be ordered or changed on it."), "error")
        return _back(account_id)
    except AccountError as error:
        db.session.rollback()
        flash(str(error), "error")
        return _back(account_id)
    db.session.commit()
    send_pending(emails)
    flash(_("Confirmation email sent again."), "success")
    return _back(account_id)


@bp.post("/accounts/<int:account_id>/close")
@staff_required(Role.SUPPORT)
def close_account(account_id: int) -> ResponseReturnValue:
    account = _account_or_404(account_id)
    form = StaffNoteForm(prefix="note")
    if not form.validate_on_submit():
        flash(_("Every support action needs a reason."), "error")
        return _back(account_id)
    if (refused := _unconfirmed(account_id)) is not None:
        return refused
    return _run(
        account_id,
        lambda: closure.close_account(account, _actor(), reason=form.note.data),
        _("Account closed; all cards are blocked."),
    )


@bp.get("/accounts/<int:account_id>/export.json")
@staff_required(Role.SUPPORT)
def export_account(account_id: int) -> Response:
    """A data-access request handled by support (e.g. by post); the export itself is audited."""
    account = _account_or_404(account_id)
    data = closure.export_account_data(account)
    record("account.export", "account", account.id, actor=_actor(), reason="data access request")
    db.session.commit()
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="account-{account.id:08d}.json"'},
    )


@bp.get("/stock")
@staff_required(Role.SUPPORT)
def stock_page() -> str:
    waiting = db.session.query(Card).filter(Card.status == CardStatus.ORDERED).order_by(Card.ordered_at).limit(200)
    return render_template(
        "backoffice/support/stock.html",
        levels=stock.stock_levels(),
        waiting=list(waiting),
        form=StaffNoteForm(prefix="note"),
    )
