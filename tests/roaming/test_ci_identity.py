"""OCPI ids are CiStrings and an object is the CPO's, whoever delivers it: a CDR, session, location or tariff sent
again in another case, or relayed by a hub after the CPO sent it directly, is the one we hold; a partner's
lower-case token uid is our upper-case card (authorization, and the card and account of sessions and CDRs)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from app.cards.models import CardStatus
from app.charging.models import Cdr, ChargingSession
from app.db import utcnow
from app.extensions import db
from app.roaming.models import Location, Partner, PartnerStatus, TariffVersion
from app.roaming.ocpi.auth import hash_token
from app.roaming.receive.cdrs import store_cdr
from tests.roaming.conftest import OcpiTestClient
from tests.roaming.token_fixtures import card_in, example, our_cdr_token

HUB_TOKEN = "hub-token-for-ci-identity-tests"
HUB_HEADERS = {
    "OCPI-from-country-code": "NL",
    "OCPI-from-party-id": "TCP",
    "OCPI-to-country-code": "BE",
    "OCPI-to-party-id": "VLT",
}


def _cdr(cdr_id: str, **changes: Any) -> dict[str, Any]:
    """The official example CDR as one of the test CPO's (NL/TCP)."""
    data = example("cdr_example.json")
    data.update(country_code="NL", party_id="TCP", id=cdr_id, **changes)
    for tariff in data.get("tariffs") or []:
        tariff.update(country_code="NL", party_id="TCP")
    return data


def _post(ocpi: OcpiTestClient, data: dict[str, Any], headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return ocpi.call(
        "POST", "/ocpi/2.2.1/cdrs", data=json.dumps(data), content_type="application/json", headers=headers
    )


def _cdrs() -> list[Cdr]:
    db.session.expire_all()
    return db.session.query(Cdr).order_by(Cdr.id).all()


@pytest.fixture
def hub(client, partner) -> OcpiTestClient:  # type: ignore[no-untyped-def]
    """A registered hub (DE/HUB) beside the direct test CPO; it relays with the routing headers."""
    db.session.add(
        Partner(
            name="Test Hub",
            is_hub=True,
            country_code="DE",
            party_id="HUB",
            status=PartnerStatus.REGISTERED,
            incoming_token_hash=hash_token(HUB_TOKEN),
            registered_at=utcnow(),
            version="2.2.1",
            endpoints=[],
        )
    )
    db.session.flush()
    return OcpiTestClient(client, token=HUB_TOKEN)


def _hub() -> Partner:
    return db.session.query(Partner).filter_by(party_id="HUB").one()


# --- CDRs ----------------------------------------------------------------------------------------------------


def test_a_cdr_id_in_another_case_is_the_same_cdr(ocpi, partner):
    first = _post(ocpi, _cdr("REPLAY1"))
    again = _post(ocpi, _cdr("replay1"))
    assert first.status_code in (200, 201) and again.status_code == 200, again.get_json()  # a repeat: 200
    assert again.get_json()["status_code"] == 1000
    assert first.headers["Location"] == again.headers["Location"]
    [cdr] = _cdrs()
    assert cdr.ocpi_id == "REPLAY1" and cdr.ocpi_id_key == "REPLAY1"


def test_store_cdr_recognises_the_repeat_whoever_delivers_it(app, db_session, partner):
    db.session.add(
        hub := Partner(
            name="Hub", is_hub=True, country_code="DE", party_id="HUB", status=PartnerStatus.REGISTERED, endpoints=[]
        )
    )
    db.session.flush()
    stored, created = store_cdr(partner, _cdr("CDR-7"))
    again, created_again = store_cdr(hub, _cdr("CDR-7"))  # what the pull client does with a hub's backlog
    assert created and not created_again and again.id == stored.id
    assert again.partner_id == partner.id  # the first delivery stays on record
    assert len(_cdrs()) == 1


def test_a_cdr_relayed_by_a_hub_after_the_cpo_sent_it_is_answered_as_a_repeat(ocpi, hub, partner):
    direct = _post(ocpi, _cdr("MOVED-1"))
    assert direct.status_code in (200, 201)
    # The CPO moves to the hub: its direct connection is suspended and the hub relays its backlog.
    partner.status = PartnerStatus.SUSPENDED
    db.session.flush()
    relayed = _post(hub, _cdr("moved-1"), headers=HUB_HEADERS)
    assert relayed.status_code == 200, relayed.get_json()
    assert relayed.get_json()["status_code"] == 1000
    assert relayed.headers["Location"] == direct.headers["Location"]
    [cdr] = _cdrs()
    assert cdr.partner_id == partner.id
    # The hub may read back what it was pointed at.
    assert hub.get(relayed.headers["Location"].split("localhost", 1)[-1]).status_code == 200


def test_a_cdr_with_a_lower_case_uid_belongs_to_our_card_and_its_account(ocpi, partner):
    card = card_in(CardStatus.ACTIVE)
    assert card.uid != card.uid.lower()
    token = {**our_cdr_token(card), "uid": card.uid.lower(), "contract_id": card.contract_id.lower()}
    assert _post(ocpi, _cdr("LOWER-UID-1", cdr_token=token)).status_code in (200, 201)
    [cdr] = _cdrs()
    assert (cdr.card_id, cdr.account_id) == (card.id, card.account_id)


def test_a_credit_cdr_finds_its_original_in_any_case_and_from_any_partner(app, db_session, partner):
    db.session.add(
        hub := Partner(
            name="Hub", is_hub=True, country_code="DE", party_id="HUB", status=PartnerStatus.REGISTERED, endpoints=[]
        )
    )
    db.session.flush()
    credit = _cdr("ORIG-1-C", credit=True, credit_reference_id="orig-1", total_cost={"excl_vat": -4.0})
    # The credit first (a pull delivers by last_updated), then the original through another partner.
    stored_credit, _ = store_cdr(hub, credit)
    original, _ = store_cdr(partner, _cdr("Orig-1"))
    db.session.expire_all()
    assert db.session.get(Cdr, stored_credit.id).original_cdr_id == original.id
    # And the other way round: the original first, the credit naming it in another case.
    first, _ = store_cdr(partner, _cdr("ORIG-2"))
    second, _ = store_cdr(
        hub, _cdr("orig-2-c", credit=True, credit_reference_id="Orig-2", total_cost={"excl_vat": -4.0})
    )
    assert second.original_cdr_id == first.id


# --- sessions ------------------------------------------------------------------------------------------------


def _session(session_id: str, **changes: Any) -> dict[str, Any]:
    data = example("session_example_2_short_finished.json")
    data.update(country_code="NL", party_id="TCP", id=session_id, **changes)
    return data


def test_a_session_put_in_lower_case_after_upper_case_is_one_session(ocpi, partner):
    first = _session("SESS-1", last_updated="2015-06-29T22:00:00Z")
    assert ocpi.put("/ocpi/2.2.1/sessions/NL/TCP/SESS-1", json=first).status_code in (200, 201)
    newer = _session("sess-1", kwh=50, last_updated="2015-06-29T23:00:00Z")
    response = ocpi.put("/ocpi/2.2.1/sessions/nl/tcp/sess-1", json=newer)
    assert response.status_code == 200 and response.get_json()["status_code"] == 1000
    db.session.expire_all()
    [session] = db.session.query(ChargingSession).all()
    assert session.ocpi_id == "SESS-1" and str(session.kwh) == "50.0000"
    patch = {"kwh": 51, "last_updated": "2015-06-30T00:00:00Z"}
    assert ocpi.patch("/ocpi/2.2.1/sessions/NL/TCP/Sess-1", json=patch).status_code == 200
    fetched = ocpi.get("/ocpi/2.2.1/sessions/nl/TCP/sess-1")
    assert fetched.status_code == 200 and fetched.get_json()["data"]["kwh"] == 51


def test_a_session_with_a_lower_case_uid_belongs_to_our_card(ocpi, partner):
    card = card_in(CardStatus.ACTIVE)
    body = _session("SESS-2", cdr_token={**our_cdr_token(card), "uid": card.uid.lower()})
    assert ocpi.put("/ocpi/2.2.1/sessions/NL/TCP/SESS-2", json=body).status_code in (200, 201)
    db.session.expire_all()
    session = db.session.query(ChargingSession).one()
    assert (session.card_id, session.account_id) == (card.id, card.account_id)


# --- real-time authorization ---------------------------------------------------------------------------------


def test_authorization_with_a_lower_case_uid_allows_our_upper_case_card(ocpi, partner):
    card = card_in(CardStatus.ACTIVE)
    response = ocpi.post(f"/ocpi/2.2.1/tokens/{card.uid.lower()}/authorize?type=RFID")
    assert response.status_code == 200, response.get_json()
    info = response.get_json()["data"]
    assert info["allowed"] == "ALLOWED" and info["token"]["uid"] == card.uid


def test_card_uids_and_contract_ids_are_kept_folded(app, db_session):
    card = card_in(CardStatus.ACTIVE)
    card.uid = card.uid.lower()
    card.contract_id = card.contract_id.lower()
    db.session.flush()
    db.session.expire_all()
    assert card.uid == card.uid.upper() and card.contract_id == card.contract_id.upper()


# --- locations and tariffs -----------------------------------------------------------------------------------


def _location(location_id: str, **changes: Any) -> dict[str, Any]:
    data = example("location_example.json")
    data.update(country_code="NL", party_id="TCP", id=location_id, **changes)
    return data


def test_location_get_and_patch_with_lower_case_ids_find_the_upper_case_location(ocpi, partner):
    location = _location("LOC-UP")
    assert ocpi.put("/ocpi/2.2.1/locations/NL/TCP/LOC-UP", json=location).status_code in (200, 201)
    evse_uid = location["evses"][0]["uid"]
    connector_id = location["evses"][0]["connectors"][0]["id"]
    fetched = ocpi.get("/ocpi/2.2.1/locations/nl/tcp/loc-up")
    assert fetched.status_code == 200 and fetched.get_json()["data"]["id"] == "LOC-UP"
    assert ocpi.get(f"/ocpi/2.2.1/locations/nl/tcp/loc-up/{evse_uid.lower()}").status_code == 200
    patch = {"status": "CHARGING", "last_updated": "2030-01-01T00:00:00Z"}
    response = ocpi.patch(f"/ocpi/2.2.1/locations/nl/tcp/Loc-Up/{evse_uid.lower()}", json=patch)
    assert response.status_code == 200, response.get_json()
    assert ocpi.get(f"/ocpi/2.2.1/locations/NL/TCP/LOC-UP/{evse_uid}").get_json()["data"]["status"] == "CHARGING"
    assert ocpi.get(f"/ocpi/2.2.1/locations/nl/tcp/loc-up/{evse_uid}/{connector_id.lower()}").status_code == 200
    renamed = {"name": "Renamed", "last_updated": "2030-01-02T00:00:00Z"}
    assert ocpi.patch("/ocpi/2.2.1/locations/nl/tcp/loc-up", json=renamed).status_code == 200
    assert ocpi.get("/ocpi/2.2.1/locations/NL/TCP/LOC-UP").get_json()["data"]["name"] == "Renamed"


def test_a_location_put_in_another_case_updates_it(ocpi, partner):
    ocpi.put("/ocpi/2.2.1/locations/NL/TCP/LOC-UP", json=_location("LOC-UP"))
    newer = _location("loc-up", name="Newer", last_updated="2030-01-01T00:00:00Z")
    for evse in newer["evses"]:
        evse["uid"] = evse["uid"].lower()
    response = ocpi.put("/ocpi/2.2.1/locations/nl/tcp/loc-up", json=newer)
    assert response.status_code in (200, 201), response.get_json()
    db.session.expire_all()
    [stored] = db.session.query(Location).all()
    assert stored.name == "Newer" and len(stored.evses) == len(newer["evses"])


def test_a_tariff_in_another_case_is_the_same_tariff(ocpi, partner):
    body = {
        "country_code": "NL",
        "party_id": "TCP",
        "id": "TAR-1",
        "currency": "EUR",
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 1}]}],
        "last_updated": "2026-01-01T00:00:00Z",
    }
    assert ocpi.put("/ocpi/2.2.1/tariffs/NL/TCP/TAR-1", json=body).status_code in (200, 201)
    again = {**copy.deepcopy(body), "id": "tar-1"}
    assert ocpi.put("/ocpi/2.2.1/tariffs/nl/tcp/tar-1", json=again).status_code in (200, 201)
    db.session.expire_all()
    assert db.session.query(TariffVersion).count() == 1
    assert ocpi.get("/ocpi/2.2.1/tariffs/NL/TCP/tar-1").status_code == 200
