"""Portal landing and dashboard."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from app.accounts.access import driver_required
from app.billing.collection import services as collection
from app.billing.invoicing import invoices
from app.cards import services as card_services
from app.cards.models import CardStatus
from app.charging.services import LiveSession, live_sessions_of
from app.db import utcnow
from app.plans import services as plan_services
from app.roaming.places import Place, places_of

bp = Blueprint("portal", __name__)

# Cards the driver still has to do something with, or that work: shown on the dashboard (replaced and expired
# ones only on the cards page).
DASHBOARD_CARD_STATUSES = (CardStatus.ORDERED, CardStatus.SHIPPED, CardStatus.ACTIVE, CardStatus.BLOCKED)


@bp.get("/")
def index() -> ResponseReturnValue:
    if current_user.is_authenticated:
        if current_user.is_staff:
            return redirect(url_for("backoffice.dashboard"))
        return redirect(url_for("portal.dashboard"))
    return render_template("portal/index.html")


def _charging_now(account_id: int) -> list[tuple[LiveSession, Place]]:
    """The account's sessions under way (charging says which) with the place the CPO published (roaming's)."""
    sessions = live_sessions_of(account_id)
    places = places_of(session.location for session in sessions)
    return [(session, places[session.location]) for session in sessions]


@bp.get("/dashboard")
@driver_required
def dashboard() -> str:
    """At a glance: charging now, the cards, the plan, the latest invoices and what is still to pay."""
    account = current_user.account
    return render_template(
        "portal/dashboard.html",
        account=account,
        live_sessions=_charging_now(account.id),
        cards=[card for card in card_services.cards_of(account.id) if card.status in DASHBOARD_CARD_STATUSES],
        plan=plan_services.plan_at(account.id, utcnow()),
        latest_invoices=invoices.invoices_of(account.id, limit=3),
        open_balance=collection.open_balance_minor(account.id),
    )
