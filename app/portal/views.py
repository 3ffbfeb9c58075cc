"""Portal landing and dashboard."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from app.accounts.access import driver_required
from app.billing.collection import services as collection
from app.billing.invoicing import invoices
from app.cards import services as card_services
from app.cards.models import CardStatus
from app.db import utcnow
from app.plans import services as plan_services
from app.portal.charging import bp as charging_bp
from app.portal.legal import bp as legal_bp
from app.portal.live import live_panel, panel_tag
from app.portal.steps import start_steps
from app.roaming.network.reach import Reachable, charge_points_reachable

bp = Blueprint("portal", __name__)
# The charging controls (/charging/...: live panel, start, stop) are the portal's too: registered inside it.
bp.register_blueprint(charging_bp)
# Terms, privacy notice and contact: public pages of the portal (/terms, /privacy, /contact).
bp.register_blueprint(legal_bp)

# Cards the driver still has to do something with, or that work: shown on the dashboard (replaced and expired
# ones only on the cards page).
DASHBOARD_CARD_STATUSES = (CardStatus.ORDERED, CardStatus.SHIPPED, CardStatus.ACTIVE, CardStatus.BLOCKED)


@bp.get("/")
def index() -> ResponseReturnValue:
    if current_user.is_authenticated:
        if current_user.is_staff:
            return redirect(url_for("backoffice.dashboard"))
        return redirect(url_for("portal.dashboard"))
    reach = charge_points_reachable_cached()
    return render_template("portal/index.html", reach=reach if reach.evses else None)


REACH_CACHE_KEY = "portal.charge_points_reachable"
REACH_CACHE_SECONDS = 300.0


def charge_points_reachable_cached() -> Reachable:
    """How many charge points our cards work at, counted at most every few minutes per process: the landing page
    is the busiest page and the figure moves slowly (partners, their locations)."""
    cached: tuple[float, Reachable] | None = current_app.extensions.get(REACH_CACHE_KEY)
    now = time.monotonic()
    if cached is not None and now - cached[0] < REACH_CACHE_SECONDS:
        return cached[1]
    reach = charge_points_reachable()
    current_app.extensions[REACH_CACHE_KEY] = (now, reach)
    return reach


@bp.get("/dashboard")
@driver_required
def dashboard() -> str:
    """At a glance: charging now (with the cost so far and a stop button; the page polls ``portal.charging.live``),
    the cards, the plan, the latest invoices and what is still to pay."""
    account = current_user.account
    live_items = live_panel(account.id)
    all_cards = card_services.cards_of(account.id)
    return render_template(
        "portal/dashboard.html",
        steps=start_steps(account.id, all_cards),
        account=account,
        live_items=live_items,
        live_tag=panel_tag(live_items),
        live_poll_seconds=current_app.config.get("LIVE_SESSION_POLL_SECONDS", 15),
        cards=[card for card in all_cards if card.status in DASHBOARD_CARD_STATUSES],
        plan=plan_services.plan_at(account.id, utcnow()),
        latest_invoices=invoices.invoices_of(account.id, limit=3),
        open_balance=collection.open_balance_minor(account.id),
    )
