"""Hubs: HubClientInfo Receiver, and one hub connection speaking for many CPOs while a direct CPO may only
write its own objects."""

from __future__ import annotations

import json

import pytest

from app.extensions import db
from app.roaming.door.auth import require_party
from app.roaming.models import Partner, PartnerParty
from app.roaming.ocpi.errors import OcpiError
from app.roaming.partners.services import add_partner
from tests.roaming.conftest import OcpiTestClient
from tests.roaming.fake_cpo.handshake import versions_url
from tests.shared_data import EXAMPLES as SHARED_EXAMPLES

EXAMPLES = SHARED_EXAMPLES
HUB_TOKEN_A = "hub-token-a"


def _example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


@pytest.fixture
def hub(client, db_session, fake_cpo) -> OcpiTestClient:  # type: ignore[no-untyped-def]
    """A hub (DE/HUB) registered through the real credentials handshake; returns a client holding token C."""
    add_partner(name="Roaming Hub", country_code="DE", party_id="HUB", role="HUB", token=HUB_TOKEN_A)
    fake_cpo.accepted_tokens.add("hub-token-b")
    credentials = {
        "token": "hub-token-b",
        "url": versions_url(fake_cpo),
        "roles": [
            {"role": "HUB", "party_id": "HUB", "country_code": "DE", "business_details": {"name": "Roaming Hub"}}
        ],
    }
    response = OcpiTestClient(client, token=HUB_TOKEN_A).post("/ocpi/2.2.1/credentials", json=credentials)
    assert response.status_code == 200, response.get_json()
    return OcpiTestClient(client, token=response.get_json()["data"]["token"])


def _hub() -> Partner:
    db.session.expire_all()
    return db.session.scalar(db.select(Partner).filter_by(party_id="HUB"))


def _client_info(cc: str, pid: str, status: str = "CONNECTED", last_updated: str = "2026-06-01T10:00:00Z") -> dict:
    # The spec's own example (mod_hub_client_info, PUT) plus the required last_updated it leaves out.
    return {"country_code": cc, "party_id": pid, "role": "CPO", "status": status, "last_updated": last_updated}


def test_hub_pushes_client_info_and_reads_it_back(hub):
    created = hub.put("/ocpi/2.2.1/hubclientinfo/NL/ALL", _client_info("NL", "ALL", "PLANNED"))
    assert created.status_code == 201
    assert created.get_json()["status_code"] == 1000
    assert created.headers["X-Request-ID"] == "req-1"

    got = hub.get("/ocpi/2.2.1/hubclientinfo/nl/all")
    assert got.status_code == 200
    assert got.get_json()["data"] == {
        "party_id": "ALL",
        "country_code": "NL",
        "role": "CPO",
        "status": "PLANNED",
        "last_updated": "2026-06-01T10:00:00Z",
    }

    # A newer push updates (offsets are converted to UTC), an older one is ignored.
    newer = _client_info("NL", "ALL", "CONNECTED", "2026-06-01T14:00:00+02:00")
    assert hub.put("/ocpi/2.2.1/hubclientinfo/NL/ALL", newer).status_code == 200
    older = _client_info("NL", "ALL", "OFFLINE", "2026-05-01T00:00:00Z")
    assert hub.put("/ocpi/2.2.1/hubclientinfo/NL/ALL", older).status_code == 200
    data = hub.get("/ocpi/2.2.1/hubclientinfo/NL/ALL").get_json()["data"]
    assert (data["status"], data["last_updated"]) == ("CONNECTED", "2026-06-01T12:00:00Z")
    parties = db.session.scalars(db.select(PartnerParty).filter_by(party_id="ALL")).all()
    assert [(p.partner.name, p.status) for p in parties] == [("Roaming Hub", "CONNECTED")]


def test_unknown_client_info_is_404(hub):
    response = hub.get("/ocpi/2.2.1/hubclientinfo/FR/XYZ")
    assert response.status_code == 404
    assert response.get_json()["status_code"] == 2000


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"status": "ASLEEP"}, "status"),
        ({"role": None}, "role"),
        ({"last_updated": None}, "last_updated"),
        ({"last_updated": "yesterday"}, "last_updated"),
        ({"party_id": "OTHER"}, "party_id"),
        ({"party_id": "PFC"}, "country_code/party_id"),
    ],
)
def test_bad_client_info_is_2001_naming_the_field(hub, change, named):
    body = {key: value for key, value in {**_client_info("NL", "ALL"), **change}.items() if value is not None}
    response = hub.put("/ocpi/2.2.1/hubclientinfo/NL/ALL", body)
    assert response.status_code == 400
    assert response.get_json()["status_code"] == 2001
    assert response.get_json()["status_message"].startswith(named)
    assert hub.get("/ocpi/2.2.1/hubclientinfo/NL/ALL").status_code == 404


def test_a_direct_cpo_may_not_push_client_info(ocpi):
    response = ocpi.put("/ocpi/2.2.1/hubclientinfo/NL/ALL", _client_info("NL", "ALL"))
    assert response.status_code == 403
    assert ocpi.get("/ocpi/2.2.1/hubclientinfo/NL/ALL").status_code == 403


def test_one_hub_connection_writes_locations_of_two_cpos(hub, app):
    """Parties announced through HubClientInfo may send their objects through the hub."""
    for cc, pid in (("NL", "ALF"), ("DE", "ALL")):
        assert hub.put(f"/ocpi/2.2.1/hubclientinfo/{cc}/{pid}", _client_info(cc, pid)).status_code == 201
    for name in ("location_example_uc2_destination_charger.json", "location_example_uc5_home_charge_point.json"):
        location = _example(name)
        path = f"/ocpi/2.2.1/locations/{location['country_code']}/{location['party_id']}/{location['id']}"
        headers = {
            "OCPI-from-country-code": location["country_code"],
            "OCPI-from-party-id": location["party_id"],
            "OCPI-to-country-code": "BE",
            "OCPI-to-party-id": "VLT",
        }
        response = hub.put(path, location, headers=headers)
        assert response.status_code in (200, 201), (name, response.get_json())
        assert hub.get(path).get_json()["data"]["id"] == location["id"]


def test_a_direct_cpo_may_not_write_another_partys_location(ocpi):
    location = _example("location_example_uc2_destination_charger.json")  # NL/ALF, not the partner's NL/TCP
    path = f"/ocpi/2.2.1/locations/NL/ALF/{location['id']}"
    spoofed = {"OCPI-from-country-code": "NL", "OCPI-from-party-id": "ALF"}
    response = ocpi.put(path, location, headers=spoofed)
    assert response.status_code == 403
    assert response.get_json()["status_code"] == 2000


def test_require_party_for_hubs_platforms_and_direct_cpos(app, client, db_session, fake_cpo, partner):
    """The rule itself, inside a request: roles of the credentials (a platform with three CPOs, the official
    credentials_example4), HubClientInfo parties of a hub, and the OCPI-from headers only for hubs."""
    add_partner(name="Excellent Operator", country_code="NL", party_id="EXO", role="CPO", token="exo-token-a")
    fake_cpo.accepted_tokens.add("exo-token-b")
    credentials = {**_example("credentials_example4.json"), "token": "exo-token-b", "url": versions_url(fake_cpo)}
    assert (
        OcpiTestClient(client, token="exo-token-a").post("/ocpi/2.2.1/credentials", json=credentials).status_code == 200
    )
    platform = db.session.scalar(db.select(Partner).filter_by(party_id="EXO"))

    with app.test_request_context("/ocpi/2.2.1/locations/NL/PFC/1", method="PUT"):
        assert require_party(platform, "nl", "pfc") == ("NL", "PFC")
        assert require_party(platform, "NL", "CGP") == ("NL", "CGP")
        with pytest.raises(OcpiError) as refused:
            require_party(platform, "NL", "TCP")  # the conftest CPO's party
        assert refused.value.http_status == 403
        with pytest.raises(OcpiError):
            require_party(partner, "NL", "EXO")
    spoofing = {"OCPI-from-country-code": "NL", "OCPI-from-party-id": "EXO"}
    with (
        app.test_request_context("/ocpi/2.2.1/locations/NL/EXO/1", method="PUT", headers=spoofing),
        pytest.raises(OcpiError),
    ):
        require_party(partner, "NL", "EXO")  # a direct CPO cannot use routing headers to pose as another


def test_answers_of_functional_modules_are_addressed_back_and_configuration_modules_carry_none(hub, ocpi):
    """transport_and_format, routing headers: a "direct response" goes TO the requesting party and FROM us;
    Credentials, Versions and HubClientInfo are not routed."""
    via_hub = {
        "OCPI-from-country-code": "NL",
        "OCPI-from-party-id": "ALF",
        "OCPI-to-country-code": "BE",
        "OCPI-to-party-id": "VLT",
    }
    answer = hub.get("/ocpi/2.2.1/tokens?limit=1", headers=via_hub)
    assert answer.status_code == 200
    assert [
        answer.headers.get(name)
        for name in ("OCPI-to-country-code", "OCPI-to-party-id", "OCPI-from-country-code", "OCPI-from-party-id")
    ] == ["NL", "ALF", "BE", "VLT"]
    direct = ocpi.get("/ocpi/2.2.1/cdrs/0")  # a direct CPO (NL/TCP), no routing headers sent
    assert (direct.headers["OCPI-to-country-code"], direct.headers["OCPI-to-party-id"]) == ("NL", "TCP")
    for path in ("/ocpi/2.2.1/credentials", "/ocpi/2.2.1/hubclientinfo/NL/ALF", "/ocpi/2.2.1"):
        assert "OCPI-to-party-id" not in hub.get(path, headers=via_hub).headers, path


def test_a_hub_writing_roles_and_codes_in_lower_case(client, db_session, fake_cpo):
    """Issue 13: peers send ``"role": "hub"``, ``"party_id": "hub"``, endpoint roles ``"sender"`` and module
    identifiers in another case. Accepted; codes kept upper-case, endpoints found."""
    fake_cpo.misbehave["lowercase_roles"] = True
    add_partner(name="Roaming Hub", country_code="DE", party_id="HUB", role="HUB", token=HUB_TOKEN_A)
    fake_cpo.accepted_tokens.add("hub-token-b")
    credentials = {
        "token": "hub-token-b",
        "url": versions_url(fake_cpo),
        "roles": [
            {"role": "hub", "party_id": "hub", "country_code": "de", "business_details": {"name": "Roaming Hub"}}
        ],
    }
    response = OcpiTestClient(client, token=HUB_TOKEN_A).post("/ocpi/2.2.1/credentials", json=credentials)
    assert response.status_code == 200, response.get_json()
    hub = OcpiTestClient(client, token=response.get_json()["data"]["token"])
    stored = _hub()
    assert [(p.role, p.country_code, p.party_id) for p in stored.parties] == [("HUB", "DE", "HUB")]
    assert stored.endpoint_url("locations", "SENDER") == fake_cpo.url("/ocpi/cpo/2.2.1/locations")
    assert {(e["identifier"], e["role"]) for e in stored.endpoints} >= {
        ("credentials", "SENDER"),
        ("tokens", "RECEIVER"),
    }

    info = {"country_code": "nl", "party_id": "all", "role": "cpo", "status": "connected"}
    pushed = hub.put("/ocpi/2.2.1/hubclientinfo/nl/all", {**info, "last_updated": "2026-06-01T10:00:00Z"})
    assert pushed.status_code == 201, pushed.get_json()
    assert hub.get("/ocpi/2.2.1/hubclientinfo/NL/ALL").get_json()["data"]["status"] == "CONNECTED"
    party = db.session.scalars(db.select(PartnerParty).filter_by(party_id="ALL")).one()
    assert (party.country_code, party.role, party.status) == ("NL", "CPO", "CONNECTED")


def test_a_suspended_hub_may_not_announce_parties(client, db_session, fake_cpo, hub):
    from app.audit.services import Actor
    from app.roaming.partners.lifecycle import suspend

    suspend(_hub(), actor=Actor.system("cli"), reason="hub contract under review")
    db.session.commit()
    refused = hub.put("/ocpi/2.2.1/hubclientinfo/NL/ALL", _client_info("NL", "ALL"))
    assert refused.status_code == 403 and "suspended" in refused.get_json()["status_message"]
    assert db.session.scalars(db.select(PartnerParty).filter_by(party_id="ALL")).all() == []
