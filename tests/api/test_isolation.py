"""A driver never reaches another driver's card, session, invoice or device: every operation of the OpenAPI
document whose path names an object answers 404 for somebody else's, as for one that does not exist, and changes
nothing. The list of cases is checked against the document, so a new route with an id cannot go untested."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.accounts.api_tokens import ApiDevice
from app.cards.models import Card, TokenUpdate
from app.extensions import db
from tests.api.data import build_history, october_invoice, run_month
from tests.api.helpers import SignedIn, call, problem
from tests.roaming.remote_fixtures import live_session_and_stop

# (method, path template) → (the id of the other driver's object to try, the problem code expected, JSON body)
CASES: dict[tuple[str, str], tuple[str, str, Any]] = {
    ("POST", "/api/v1/sessions/{session_id}/stop"): ("live_session", "session_not_found", None),
    ("GET", "/api/v1/commands/{command_id}"): ("command", "command_not_found", None),
    ("GET", "/api/v1/cards/{card_id}"): ("card", "card_not_found", None),
    ("POST", "/api/v1/cards/{card_id}/block"): ("card", "card_not_found", {"reason": "stolen"}),
    ("POST", "/api/v1/cards/{card_id}/unblock"): ("card", "card_not_found", None),
    ("POST", "/api/v1/cards/{card_id}/replace"): ("card", "card_not_found", None),
    ("GET", "/api/v1/sessions/{session_id}"): ("session", "session_not_found", None),
    ("GET", "/api/v1/invoices/{invoice_id}"): ("invoice", "invoice_not_found", None),
    ("GET", "/api/v1/invoices/{invoice_id}/pdf"): ("invoice", "invoice_not_found", None),
    ("GET", "/api/v1/invoices/{invoice_id}/ubl"): ("invoice", "invoice_not_found", None),
    ("DELETE", "/api/v1/me/devices/{device_id}"): ("device", "device_not_found", None),
}


def _paths_with_ids(client: FlaskClient) -> set[tuple[str, str]]:
    document = client.get("/api/v1/openapi.json").get_json()
    # Public operations (``security: []``, such as a charging location by its OCPI ids) read nobody's objects.
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        if "{" in path
        for method in operations
        if method != "parameters" and operations[method].get("security") != []
    }


def _snapshot(other: SignedIn) -> dict[str, Any]:
    """What could change of the other driver's things."""
    db.session.expire_all()
    cards = db.session.scalars(select(Card).where(Card.account_id == other.account.id).order_by(Card.id)).all()
    return {
        "cards": [(card.id, card.status, card.block_reason) for card in cards],
        "token_updates": len(db.session.scalars(select(TokenUpdate)).all()),
        "devices": [
            (device.id, device.revoked_at)
            for device in db.session.scalars(select(ApiDevice).where(ApiDevice.user_id == other.user.id))
        ],
    }


def test_every_route_with_an_id_has_an_isolation_case(client: FlaskClient, db_session: object) -> None:
    assert _paths_with_ids(client) == set(CASES)


def test_another_drivers_objects_are_404_and_stay_as_they_are(
    app: Flask, client: FlaskClient, driver: SignedIn, other_driver: SignedIn
) -> None:
    mine = build_history(app, driver, stock_start=1, invoice_run=False)
    theirs = build_history(app, other_driver, stock_start=100, with_location=False, invoice_run=False)
    run_month(app, "2026-10")
    mine.invoice, theirs.invoice = october_invoice(driver), october_invoice(other_driver)
    ids = {
        "card": theirs.active_card.id,
        "session": theirs.sessions[0].cdr_id,
        "invoice": theirs.invoice.id,
        "device": other_driver.device.id,
    }
    live_session, stop = live_session_and_stop(other_driver.account.id, theirs.active_card.id)
    ids["live_session"], ids["command"] = live_session.id, stop.id
    before = _snapshot(other_driver)
    for (method, template), (kind, code, body) in CASES.items():
        name = template[template.index("{") + 1 : template.index("}")]
        path = template.replace("{" + name + "}", str(ids[kind]))
        problem(call(client, method, path, driver, json=body), 404, code)
        # The same answer as for an id that does not exist: nothing tells that it does.
        missing = call(client, method, template.replace("{" + name + "}", "2147483647"), driver, json=body)
        assert missing.get_json() == call(client, method, path, driver, json=body).get_json()
    assert _snapshot(other_driver) == before
    assert call(client, "GET", "/api/v1/me", other_driver).status_code == 200  # their device still signed in

    # Lists and filters show only the driver's own.
    assert call(client, "GET", f"/api/v1/sessions?card={theirs.active_card.id}", driver).get_json()["items"] == []
    listed_cards = {item["id"] for item in call(client, "GET", "/api/v1/cards", driver).get_json()["items"]}
    assert listed_cards == {mine.active_card.id, mine.shipped_card.id, mine.app_token.id}
    listed_invoices = [item["id"] for item in call(client, "GET", "/api/v1/invoices", driver).get_json()["items"]]
    assert listed_invoices == [mine.invoice.id]
    listed_sessions = {item["id"] for item in call(client, "GET", "/api/v1/sessions", driver).get_json()["items"]}
    assert listed_sessions == {charge.cdr_id for charge in mine.sessions}
    devices = call(client, "GET", "/api/v1/me/devices", driver).get_json()["items"]
    assert [device["id"] for device in devices] == [driver.device.id]
    balance = call(client, "GET", "/api/v1/balance", driver).get_json()
    assert [row["id"] for row in balance["invoices"]] == [mine.invoice.id]
