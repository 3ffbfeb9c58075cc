"""Real-time authorization over HTTP: every card state, account standing, partner rules, unknown tokens, and
the log support reads."""

from __future__ import annotations

import pytest

from app.cards.models import BlockReason, CardStatus
from app.charging.models import Authorization
from app.extensions import db
from app.roaming.send import authorization
from tests.roaming.token_fixtures import card_in


def _authorize(ocpi, uid: str, body=None, kind: str | None = "RFID"):  # type: ignore[no-untyped-def]
    query = f"?type={kind}" if kind else ""
    return ocpi.post(f"/ocpi/2.2.1/tokens/{uid}/authorize{query}", json=body)


@pytest.mark.parametrize(
    ("status", "block_reason", "expected"),
    [
        (CardStatus.ACTIVE, None, "ALLOWED"),
        (CardStatus.BLOCKED, BlockReason.LOST, "BLOCKED"),
        (CardStatus.BLOCKED, BlockReason.PAYMENT, "NO_CREDIT"),
        (CardStatus.SHIPPED, None, "BLOCKED"),
        (CardStatus.REPLACED, None, "EXPIRED"),
        (CardStatus.EXPIRED, None, "EXPIRED"),
    ],
)
def test_outcome_for_each_card_state(ocpi, partner, status, block_reason, expected):
    card = card_in(status, block_reason=block_reason or BlockReason.LOST)
    response = _authorize(ocpi, card.uid, kind=None)  # type defaults to RFID
    body = response.get_json()
    assert response.status_code == 200 and body["status_code"] == 1000
    info = body["data"]
    assert info["allowed"] == expected
    assert info["token"]["uid"] == card.uid and info["token"]["contract_id"] == card.contract_id
    assert len(info["authorization_reference"]) <= 36
    assert ("info" in info) == (expected != "ALLOWED")
    db.session.expire_all()
    [logged] = db.session.query(Authorization).filter_by(card_id=card.id).all()
    assert logged.allowed == expected and logged.account_id == card.account_id and logged.reason
    assert logged.partner_id == partner.id and logged.authorization_reference == info["authorization_reference"]
    assert authorization.authorizations_of(card.account_id)[0].id == logged.id


def test_location_references_are_echoed_when_allowed(ocpi, partner):
    card = card_in(CardStatus.ACTIVE)
    references = {"location_id": "LOC1", "evse_uids": ["3256", "3257"]}
    info = _authorize(ocpi, card.uid, references).get_json()["data"]
    assert info["allowed"] == "ALLOWED" and info["location"] == references


def test_bad_location_references_get_2001(ocpi, partner):
    card = card_in(CardStatus.ACTIVE)
    response = _authorize(ocpi, card.uid, {"evse_uids": ["1"]})
    assert response.status_code == 400 and "location_id" in response.get_json()["status_message"]
    assert _authorize(ocpi, card.uid, kind="BADGE").get_json()["status_code"] == 2001


def test_unknown_token_is_404_2004_and_logged(ocpi, partner):
    response = _authorize(ocpi, "DEADBEEF")
    assert response.status_code == 404
    body = response.get_json()
    assert body["status_code"] == 2004 and "data" not in body
    db.session.expire_all()
    logged = db.session.query(Authorization).filter_by(token_uid="DEADBEEF").one()
    assert logged.allowed == "UNKNOWN" and logged.card_id is None
    # An RFID uid asked as APP_USER is another token.
    card = card_in(CardStatus.ACTIVE)
    assert _authorize(ocpi, card.uid, kind="APP_USER").status_code == 404


def test_account_standing_hook_gives_no_credit(ocpi, partner):
    card = card_in(CardStatus.ACTIVE)
    authorization.STANDING_CHECKS.append(
        authorization.StandingCheck(
            "test: this account", authorization.Standing.NO_CREDIT, lambda account_id: account_id == card.account_id
        )
    )
    try:
        assert _authorize(ocpi, card.uid).get_json()["data"]["allowed"] == "NO_CREDIT"
    finally:
        authorization.STANDING_CHECKS.pop()


def test_partner_location_rule_gives_not_allowed(app, ocpi, partner):
    card = card_in(CardStatus.ACTIVE)
    app.config["ROAMING_LOCATION_RULES"] = {"NL/TCP": {"allowed_location_ids": ["LOC1"]}}
    try:
        assert _authorize(ocpi, card.uid, {"location_id": "LOC2"}).get_json()["data"]["allowed"] == "NOT_ALLOWED"
        allowed = _authorize(ocpi, card.uid, {"location_id": "LOC1"}).get_json()["data"]
        assert allowed["allowed"] == "ALLOWED"
    finally:
        app.config.pop("ROAMING_LOCATION_RULES")
    db.session.expire_all()
    reasons = [row.reason for row in db.session.query(Authorization).filter_by(card_id=card.id)]
    assert any("LOC2" in reason for reason in reasons)


# --- real CPOs (issue 13) ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [{}, None, "null"], ids=["empty object", "no body", "null"])
def test_a_body_without_location_references_authorizes_the_token(ocpi, partner, body):
    """CPOs without a location to name send ``{}``: "no location references", not a missing location_id."""
    card = card_in(CardStatus.ACTIVE)
    path = f"/ocpi/2.2.1/tokens/{card.uid}/authorize?type=RFID"
    if body == "null":
        response = ocpi.post(path, data="null", headers={"Content-Type": "application/json"})
    else:
        response = ocpi.post(path, json=body)
    assert response.status_code == 200, response.get_json()
    info = response.get_json()["data"]
    assert info["allowed"] == "ALLOWED" and "location" not in info
    db.session.expire_all()
    [logged] = db.session.query(Authorization).filter_by(card_id=card.id).all()
    assert logged.allowed == "ALLOWED" and logged.location_references is None


def test_a_cpo_style_request_in_lower_case_allows_our_card(ocpi, partner):
    """As a CPO sent it: our ``04DE...`` uid in lower case, the type in lower case, an empty body."""
    card = card_in(CardStatus.ACTIVE)
    assert card.uid != card.uid.lower()  # the test means something only if the uid has letters
    response = ocpi.post(f"/ocpi/2.2.1/tokens/{card.uid.lower()}/authorize?type=rfid", json={})
    assert response.status_code == 200, response.get_json()
    info = response.get_json()["data"]
    assert info["allowed"] == "ALLOWED" and info["token"]["uid"] == card.uid and info["token"]["type"] == "RFID"


def test_partner_location_rules_compare_party_and_location_ids_in_any_case(app, ocpi, partner, monkeypatch):
    card = card_in(CardStatus.ACTIVE)
    monkeypatch.setitem(app.config, "ROAMING_LOCATION_RULES", {"nl/tcp": {"allowed_location_ids": ["Loc1"]}})
    assert _authorize(ocpi, card.uid, {"location_id": "LOC1"}).get_json()["data"]["allowed"] == "ALLOWED"
    assert _authorize(ocpi, card.uid, {"location_id": "loc1"}).get_json()["data"]["allowed"] == "ALLOWED"
    assert _authorize(ocpi, card.uid, {"location_id": "LOC2"}).get_json()["data"]["allowed"] == "NOT_ALLOWED"
