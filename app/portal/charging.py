"""The driver's charging controls in the portal (``/charging``): the live panel the dashboard polls, stop and start
from the browser, and the state of a start or stop request until the charge point answers.

Registered inside the portal's blueprint (``portal.charging.*``). Every route is a driver's; another driver's
session or command is a 404. Start and stop go through ``roaming.send.remote`` (the checks, the command service);
this door commits between recording a command and sending it, as that service asks.

Polling: ``GET /charging/live`` and ``GET /charging/commands/<id>/state`` answer JSON with the fragment to show
(``html``) and an ``ETag``; ``static/js/live_session.js`` sends it back as ``If-None-Match`` and gets a 304 while
nothing changed.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_login import current_user

from app.accounts.access import driver_required
from app.cards.models import Card
from app.cards.services import card_of_account
from app.extensions import db
from app.portal.forms import StartChargingForm
from app.portal.live import live_panel, panel_tag
from app.pricing import Estimate, PricingError
from app.rating.estimates import estimate_for_connector
from app.rating.problems import RatingError
from app.roaming.models import Command, CommandState, Evse, Location
from app.roaming.receive.locations import get_evse
from app.roaming.send import remote

bp = Blueprint("charging", __name__, url_prefix="/charging")

# Refusals another card could avoid: the start page still offers the form with them.
CARD_REFUSALS = frozenset({remote.CARD_BLOCKED, remote.CARD_EXPIRED, remote.CARD_NOT_ACTIVE, remote.NOT_YOUR_CARD})
WAITING = (CommandState.SENDING, CommandState.PENDING)


def _polled(tag: str, body: dict[str, Any]) -> Response:
    """JSON with its ETag, or 304 when the page already shows this version."""
    unchanged = request.if_none_match.contains(tag)
    response = Response(status=304) if unchanged else jsonify({"version": tag, **body})
    response.set_etag(tag)
    return response


# --- the live panel and stop ---------------------------------------------------------------------------------------


@bp.get("/live")
@driver_required
def live() -> ResponseReturnValue:
    """The dashboard's live panel, polled: the sessions under way with their cost so far."""
    items = live_panel(current_user.account_id)
    tag = panel_tag(items)
    if request.if_none_match.contains(tag):
        return _polled(tag, {})
    html = render_template("portal/charging/_live.html", live_items=items)
    return _polled(tag, {"count": len(items), "html": html})


@bp.post("/sessions/<int:session_id>/stop")
@driver_required
def stop(session_id: int) -> ResponseReturnValue:
    account = current_user.account
    session = remote.session_of(account.id, session_id)
    if session is None:
        abort(404)
    try:
        remote.stop_session(account, session, commit=db.session.commit)
    except remote.RefusedError as refusal:
        db.session.rollback()
        flash(str(refusal.message), "error")
    else:
        db.session.commit()
    return redirect(url_for("portal.dashboard") + "#charging-now")


# --- start ---------------------------------------------------------------------------------------------------------


def _location(key: str | None) -> Location | None:
    """The published location named ``CC/PID/ID`` (the id may itself hold a slash); None otherwise. Whether our
    cards can start there is the remote service's to say, with its reason."""
    parts = (key or "").split("/", 2)
    if len(key or "") > 48 or len(parts) != 3 or not all(parts):
        return None
    location = remote.find_location(*parts)
    return location if location is not None and location.publish else None


def _charge_point(key: str | None, evse_uid: str | None) -> tuple[Location, Evse]:
    location = _location(key)
    evse = get_evse(location, evse_uid or "") if location is not None and evse_uid else None
    if location is None or evse is None or evse.status == "REMOVED":
        abort(404)
    return location, evse


def _estimates(location: Location, evse: Evse) -> dict[str, Estimate | None]:
    """The price estimate of each connector under the driver's plan (None: the CPO publishes no price)."""
    found: dict[str, Estimate | None] = {}
    for connector in evse.connectors:
        try:
            found[connector.connector_id] = estimate_for_connector(
                location, evse.uid, connector.connector_id, account=current_user.account
            )
        except (RatingError, PricingError):
            found[connector.connector_id] = None
    return found


def _fill(form: StartChargingForm, evse: Evse, cards: list[Card]) -> None:
    form.connector.choices = [(connector.connector_id, connector.connector_id) for connector in evse.connectors]
    form.card.choices = [(card.id, card.label or card.visual_number or card.uid) for card in cards]
    if form.connector.data is None and evse.connectors:
        form.connector.data = evse.connectors[0].connector_id


def _start_page(
    form: StartChargingForm, location: Location, evse: Evse, cards: list[Card], status: int = 200
) -> tuple[str, int]:
    refusal = None
    if cards and not form.form_errors:
        try:
            remote.check_start(current_user.account, location, evse.uid, cards[0], form.connector.data)
        except remote.RefusedError as refused:
            refusal = refused
    return render_template(
        "portal/charging/start.html",
        form=form,
        location=location,
        evse=evse,
        cards=cards,
        estimates=_estimates(location, evse),
        refusal=refusal,
        offer=bool(cards) and (refusal is None or refusal.code in CARD_REFUSALS),
    ), status


@bp.get("/start")
@driver_required
def start_page() -> ResponseReturnValue:
    """Confirm a remote start at ``?location=CC/PID/ID&evse=UID``: the price, the card, the button."""
    location, evse = _charge_point(request.args.get("location"), request.args.get("evse"))
    cards = remote.startable_cards(current_user.account_id)
    form = StartChargingForm(location=request.args.get("location"), evse=evse.uid)
    _fill(form, evse, cards)
    return _start_page(form, location, evse, cards)


@bp.post("/start")
@driver_required
def start() -> ResponseReturnValue:
    form = StartChargingForm()
    location, evse = _charge_point(form.location.data, form.evse.data)
    account = current_user.account
    cards = remote.startable_cards(account.id)
    _fill(form, evse, cards)
    if not form.validate_on_submit():
        return _start_page(form, location, evse, cards, status=400)
    card = card_of_account(account.id, form.card.data)
    if card is None:
        abort(404)
    try:
        command = remote.start_session(
            account, location, evse.uid, card, commit=db.session.commit, connector_id=form.connector.data
        )
    except remote.RefusedError as refusal:
        db.session.rollback()
        form.form_errors.append(str(refusal.message))
        return _start_page(form, location, evse, cards, status=409)
    db.session.commit()
    return redirect(url_for(".command", command_id=command.id))


# --- a request's state -------------------------------------------------------------------------------------------


def _own_command(command_id: int) -> Command:
    command = remote.command_status(current_user.account, command_id)
    if command is None:
        abort(404)
    return command


def _command_view(command: Command) -> dict[str, Any]:
    state = remote.shown_state(command)
    return {
        "command": command,
        "state": state,
        "waiting": state in WAITING,
        "message": remote.result_text(command, str(get_locale())),
        "location": remote.command_location(command),
    }


@bp.get("/commands/<int:command_id>")
@driver_required
def command(command_id: int) -> ResponseReturnValue:
    """A start or stop request, until the charge point answers (the page polls its state)."""
    return render_template(
        "portal/charging/command.html",
        poll_seconds=current_app.config.get("COMMAND_POLL_SECONDS", 3),
        **_command_view(_own_command(command_id)),
    )


@bp.get("/commands/<int:command_id>/state")
@driver_required
def command_state(command_id: int) -> ResponseReturnValue:
    view = _command_view(_own_command(command_id))
    material = f"{command_id}|{view['state'].value}|{view['message']}|{get_locale()}"
    tag = hashlib.sha256(material.encode()).hexdigest()[:32]
    if request.if_none_match.contains(tag):
        return _polled(tag, {})
    html = render_template("portal/charging/_command.html", **view)
    return _polled(tag, {"state": view["state"].value, "final": not view["waiting"], "html": html})
