"""The authorization log on support's account page: where the driver stood (location, EVSE, operator) and why we
answered as we did, in the agent's language; every reason the decision can give has its words."""

from __future__ import annotations

import datetime as dt

import pytest
from flask_babel import force_locale

from app.accounts.models import Role
from app.audit.services import Actor
from app.cards import services as card_services
from app.cards.models import BlockReason, CardStatus
from app.customer_care import wording
from app.db import utcnow
from app.extensions import db
from app.roaming.models import PartnerParty, PartnerStatus
from app.roaming.send import authorization
from tests.billing.conftest import finalized_invoice
from tests.customer_care.charging import LOCATION, LOCATION_ID, OPERATOR_NAME, driver_with_card, publish_network
from tests.customer_care.pages import page_text
from tests.factories import login, make_user
from tests.roaming.conftest import OcpiTestClient, add_registered_hub, ocpi, partner  # noqa: F401  (fixtures)
from tests.roaming.token_fixtures import card_in


def _log(page: str) -> str:
    start = page.index("data-authorizations")
    return page_text(page[start : page.index("</ul>", start)])


def _authorize(cpo, card, body):  # type: ignore[no-untyped-def]
    response = cpo.post(f"/ocpi/2.2.1/tokens/{card.uid}/authorize?type=RFID", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]["allowed"]


def test_the_log_names_location_evse_and_operator_and_says_why_in_words(client, ocpi, partner):  # noqa: F811
    publish_network(ocpi, partner)
    user, card = driver_with_card()
    assert _authorize(ocpi, card, {"location_id": LOCATION_ID.lower(), "evse_uids": ["evse-7"]}) == "ALLOWED"
    card_services.block_card(card, BlockReason.LOST, Actor.of(user))
    db.session.commit()
    assert _authorize(ocpi, card, {"location_id": LOCATION_ID, "evse_uids": ["EVSE-7"]}) == "BLOCKED"
    assert _authorize(ocpi, card, {"location_id": "LOC-WE-DO-NOT-HOLD"}) == "BLOCKED"
    db.session.commit()
    login(client, make_user(Role.SUPPORT))

    log = _log(client.get(f"/backoffice/support/accounts/{user.account.id}").get_data(as_text=True))

    entries = log.split(" Blocked ")
    assert len(entries) == 3  # two refusals, then the first answer
    assert "The card is blocked (Lost)." in log
    assert "Station Gent-Sint-Pieters, Gent · EVSE BE*TCP*E0007 · " + OPERATOR_NAME in log
    assert "via Test CPO" in log  # the connection that asked, beside the operator's own name
    assert "Location LOC-WE-DO-NOT-HOLD" in log
    assert "Allowed" in log and "The card is active and the account in good standing." in log
    assert log.index("LOC-WE-DO-NOT-HOLD") < log.index("Allowed")  # newest first
    assert card.visual_number in log
    assert "card blocked: lost" not in log  # the stored code is never shown raw

    dutch = _log(
        client.get(f"/backoffice/support/accounts/{user.account.id}", query_string={"lang": "nl"}).get_data(
            as_text=True
        )
    )
    assert "Geblokkeerd" in dutch and "(Verloren)" in dutch


def test_a_hub_relaying_the_request_is_not_taken_for_the_operator(client):
    user, card = driver_with_card()
    hub = add_registered_hub("hub-token-for-support", name="GIREVE")
    hub.parties.append(PartnerParty(country_code="DE", party_id="ELL", role="CPO", name="Elli Charging"))
    db.session.commit()
    via_hub = OcpiTestClient(client, token="hub-token-for-support")
    location = {**LOCATION, "country_code": "DE", "party_id": "ELL", "id": "BERLIN-1", "name": "Alexanderplatz"}
    location["evses"] = [{**LOCATION["evses"][0], "evse_id": "DE*ELL*E1"}]
    response = via_hub.put("/ocpi/2.2.1/locations/DE/ELL/BERLIN-1", json=location)
    assert response.status_code in (200, 201), response.get_json()
    assert _authorize(via_hub, card, {"location_id": "BERLIN-1", "evse_uids": ["EVSE-7"]}) == "ALLOWED"
    db.session.commit()
    login(client, make_user(Role.SUPPORT))

    log = _log(client.get(f"/backoffice/support/accounts/{user.account.id}").get_data(as_text=True))

    assert "Alexanderplatz, Gent · EVSE DE*ELL*E1 · Elli Charging · via GIREVE" in log


def test_authorizations_are_paged(client, ocpi, partner):  # noqa: F811
    publish_network(ocpi, partner)
    user, card = driver_with_card()
    for _ in range(23):
        _authorize(ocpi, card, {"location_id": LOCATION_ID})
    db.session.commit()
    login(client, make_user(Role.SUPPORT))
    url = f"/backoffice/support/accounts/{user.account.id}"
    first = client.get(url).get_data(as_text=True)
    assert _log(first).count("Allowed") == 20 and "authorizations=2#authorizations" in first
    second = client.get(url, query_string={"authorizations": "2"}).get_data(as_text=True)
    assert _log(second).count("Allowed") == 3


@pytest.mark.parametrize("locale", ["en", "nl", "fr"])
def test_every_reason_the_decision_gives_is_put_in_words(app, partner, locale):  # noqa: F811
    """Run the real decision through each of its branches: a reason the wording does not know (because roaming
    changed its text) would show raw, and this fails."""
    replaced = card_in(CardStatus.REPLACED)
    expired = card_in(CardStatus.EXPIRED)
    lost = card_in(CardStatus.BLOCKED, block_reason=BlockReason.LOST)
    unpaid = card_in(CardStatus.BLOCKED, block_reason=BlockReason.PAYMENT)
    shipped = card_in(CardStatus.SHIPPED)
    ended = card_in(CardStatus.ACTIVE)
    ended.expires_at = utcnow() - dt.timedelta(days=1)
    owing = card_in(CardStatus.ACTIVE)
    finalized_invoice(owing.account_id, issue_date=dt.date(2026, 9, 1), due_days=14)
    good = card_in(CardStatus.ACTIVE)
    db.session.flush()
    for card in (replaced, expired, lost, unpaid, shipped, ended, owing, good):
        authorization.authorize(partner, card.uid, "RFID", None)
    app.config["ROAMING_LOCATION_RULES"] = {"NL/TCP": {"allowed_location_ids": ["ELSEWHERE"]}}
    try:
        authorization.authorize(partner, good.uid, "RFID", {"location_id": "LOC9"})
    finally:
        app.config["ROAMING_LOCATION_RULES"] = {}
    partner.status = PartnerStatus.SUSPENDED
    authorization.authorize(partner, good.uid, "RFID", None)
    authorization.authorize(partner, "NO-SUCH-CARD", "RFID", None)
    reasons = [
        entry.reason for entry in db.session.query(authorization.Authorization).order_by(authorization.Authorization.id)
    ]
    assert len(set(reasons)) == 11, reasons  # every branch of the decision, once
    with app.test_request_context(), force_locale(locale):
        for reason in reasons:
            words = wording.authorization_reason(reason)
            assert words != reason and words.endswith("."), reason
