"""A party belongs to exactly one connection (DESIGN §5, issue 12 item 5).

A hub may announce (HubClientInfo) and speak for (routing headers, an object's country_code/party_id) only parties
that are not connected to us directly (registered or pending partners) and never our own party. A conflict is
refused (OCPI 2001, nothing stored) and recorded for operations (``flask roaming party-conflicts``). A direct
connection that arrives later for a party a hub announced wins: the hub's claim ends, recorded as a conflict.
"""

from __future__ import annotations

import pytest

from app.extensions import db
from app.roaming.models import Location, Partner, PartnerParty, PartnerStatus, PartyConflict
from app.roaming.ocpi.auth import hash_token
from app.roaming.partners.services import PartnerError, add_partner, reset_partner_token
from tests.factories import one_connector_location
from tests.roaming.conftest import OcpiTestClient
from tests.roaming.fake_cpo.handshake import versions_url
from tests.roaming.test_hubs import _client_info, hub  # noqa: F401  (the hub fixture)

CPO_A_TOKEN = "cpo-a-token-c"
CPO_A_TOKEN_A = "cpo-a-token-a"
ROUTED = {"OCPI-to-country-code": "BE", "OCPI-to-party-id": "VLT"}


def _from(country_code: str, party_id: str) -> dict[str, str]:
    return {"OCPI-from-country-code": country_code, "OCPI-from-party-id": party_id, **ROUTED}


def _location(country_code: str, party_id: str, location_id: str = "LOC1", name: str = "CPO A's car park") -> dict:
    return {
        **one_connector_location("T1"),
        "country_code": country_code,
        "party_id": party_id,
        "id": location_id,
        "name": name,
    }


def _direct_cpo(country_code: str = "BE", party_id: str = "ABC") -> Partner:
    """A CPO registered with us directly (as the credentials handshake leaves it: its party in its parties)."""
    cpo = Partner(
        name=f"CPO {party_id}",
        country_code=country_code,
        party_id=party_id,
        status=PartnerStatus.REGISTERED,
        incoming_token_hash=hash_token(CPO_A_TOKEN),
        version="2.2.1",
        endpoints=[],
        parties=[PartnerParty(country_code=country_code, party_id=party_id, role="CPO")],
    )
    db.session.add(cpo)
    db.session.flush()
    return cpo


def _conflicts() -> list[tuple[str, str, str, str, str]]:
    db.session.expire_all()
    rows = db.session.scalars(db.select(PartyConflict).order_by(PartyConflict.id)).all()
    return [(f"{row.country_code}/{row.party_id}", row.claimant.name, row.holder, row.via, row.outcome) for row in rows]


def _hub_parties() -> list[tuple[str, str, str]]:
    db.session.expire_all()
    hub_partner = db.session.scalar(db.select(Partner).filter_by(party_id="HUB"))
    return sorted((p.country_code, p.party_id, p.role) for p in hub_partner.parties)


def _register(client, fake_cpo, token_a: str, roles: list[tuple[str, str, str]]):  # type: ignore[no-untyped-def]
    fake_cpo.accepted_tokens.add(f"{token_a}-b")
    credentials = {
        "token": f"{token_a}-b",
        "url": versions_url(fake_cpo),
        "roles": [
            {"role": role, "country_code": cc, "party_id": pid, "business_details": {"name": f"{cc}/{pid}"}}
            for role, cc, pid in roles
        ],
    }
    return OcpiTestClient(client, token=token_a).post("/ocpi/2.2.1/credentials", json=credentials)


# --- a hub cannot take over a directly connected CPO -------------------------------------------------------------


def test_a_hub_cannot_announce_or_write_for_a_directly_connected_cpo(client, hub):  # noqa: F811
    cpo_a = _direct_cpo()
    cpo = OcpiTestClient(client, token=CPO_A_TOKEN)
    assert cpo.put("/ocpi/2.2.1/locations/BE/ABC/LOC1", _location("BE", "ABC")).status_code in (200, 201)

    # The attack: announce BE/ABC in another role (the unique key was per role), then overwrite CPO A's location.
    announced = hub.put("/ocpi/2.2.1/hubclientinfo/BE/ABC", {**_client_info("BE", "ABC"), "role": "OTHER"})
    assert announced.status_code == 409
    assert announced.get_json()["status_code"] == 2001
    assert "BE/ABC" in announced.get_json()["status_message"]
    assert "directly" in announced.get_json()["status_message"]
    assert hub.get("/ocpi/2.2.1/hubclientinfo/BE/ABC").status_code == 404  # nothing stored
    assert _hub_parties() == [("DE", "HUB", "HUB")]

    hijack = _location("BE", "ABC", name="Hijacked")
    for headers in (_from("BE", "ABC"), ROUTED):
        refused = hub.put("/ocpi/2.2.1/locations/BE/ABC/LOC1", hijack, headers=headers)
        assert refused.status_code == 403
        assert refused.get_json()["status_code"] == 2001
    assert hub.get("/ocpi/2.2.1/locations/BE/ABC/LOC1", headers=_from("BE", "ABC")).status_code == 403
    db.session.expire_all()
    location = db.session.scalar(db.select(Location).filter_by(party_id="ABC", ocpi_id="LOC1"))
    assert (location.partner_id, location.name) == (cpo_a.id, "CPO A's car park")
    assert _hub_parties() == [("DE", "HUB", "HUB")]

    conflicts = _conflicts()
    assert [(party, claimant, via, outcome) for party, claimant, _, via, outcome in conflicts] == [
        ("BE/ABC", "Roaming Hub", "hubclientinfo", "refused"),
        ("BE/ABC", "Roaming Hub", "routing_headers", "refused"),
        ("BE/ABC", "Roaming Hub", "object", "refused"),
    ]
    assert all("CPO ABC" in holder for _, _, holder, _, _ in conflicts)
    # A repeat is counted on the same record, not a new row per request.
    again = db.session.scalar(db.select(PartyConflict).filter_by(via="routing_headers"))
    assert again.attempts == 2  # the PUT and the GET


def test_a_hub_cannot_announce_or_speak_for_our_own_party(app, client, hub):  # noqa: F811
    ours = (app.config["COMPANY_COUNTRY_CODE"], app.config["COMPANY_PARTY_ID"])
    announced = hub.put(f"/ocpi/2.2.1/hubclientinfo/{ours[0]}/{ours[1]}", _client_info(*ours))
    assert announced.status_code == 409 and announced.get_json()["status_code"] == 2001
    assert "our own party" in announced.get_json()["status_message"]
    written = hub.put(f"/ocpi/2.2.1/locations/{ours[0]}/{ours[1]}/LOC1", _location(*ours), headers=_from(*ours))
    assert written.status_code == 403 and written.get_json()["status_code"] == 2001
    assert _hub_parties() == [("DE", "HUB", "HUB")]
    assert db.session.scalar(db.select(db.func.count(Location.id))) == 0
    assert [(party, holder, via) for party, _, holder, via, _ in _conflicts()] == [
        (f"{ours[0]}/{ours[1]}", "our own party", "hubclientinfo"),
        (f"{ours[0]}/{ours[1]}", "our own party", "routing_headers"),
    ]


def test_a_hub_cannot_claim_a_pending_partners_party_which_then_registers(client, hub, fake_cpo):  # noqa: F811
    add_partner(name="CPO A", country_code="BE", party_id="ABC", role="CPO", token=CPO_A_TOKEN_A)
    db.session.commit()

    refused = hub.put("/ocpi/2.2.1/locations/BE/ABC/LOC1", _location("BE", "ABC"), headers=_from("BE", "ABC"))
    assert refused.status_code == 403 and refused.get_json()["status_code"] == 2001
    assert _hub_parties() == [("DE", "HUB", "HUB")]
    assert hub.put("/ocpi/2.2.1/hubclientinfo/BE/ABC", _client_info("BE", "ABC")).status_code == 409

    registered = _register(client, fake_cpo, CPO_A_TOKEN_A, [("CPO", "BE", "ABC")])
    assert registered.status_code == 200, registered.get_json()
    cpo = OcpiTestClient(client, token=registered.get_json()["data"]["token"])
    assert cpo.put("/ocpi/2.2.1/locations/BE/ABC/LOC1", _location("BE", "ABC")).status_code in (200, 201)
    assert [(claimant, via) for _, claimant, _, via, _ in _conflicts()] == [
        ("Roaming Hub", "routing_headers"),
        ("Roaming Hub", "hubclientinfo"),
    ]


def test_two_hubs_cannot_share_a_party(client, hub, fake_cpo):  # noqa: F811
    assert hub.put("/ocpi/2.2.1/hubclientinfo/FR/XYZ", _client_info("FR", "XYZ")).status_code == 201
    add_partner(name="Other Hub", country_code="FR", party_id="HB2", role="HUB", token="hub2-token-a")
    registered = _register(client, fake_cpo, "hub2-token-a", [("HUB", "FR", "HB2")])
    assert registered.status_code == 200, registered.get_json()
    other = OcpiTestClient(client, token=registered.get_json()["data"]["token"])

    assert other.put("/ocpi/2.2.1/hubclientinfo/FR/XYZ", _client_info("FR", "XYZ")).status_code == 409
    assert other.put("/ocpi/2.2.1/hubclientinfo/DE/HUB", _client_info("DE", "HUB")).status_code == 409
    written = other.put("/ocpi/2.2.1/locations/FR/XYZ/L9", _location("FR", "XYZ", "L9"), headers=_from("FR", "XYZ"))
    assert written.status_code == 403
    assert ("FR", "XYZ", "CPO") in _hub_parties()
    assert [(party, claimant, via) for party, claimant, _, via, _ in _conflicts()] == [
        ("FR/XYZ", "Other Hub", "hubclientinfo"),
        ("DE/HUB", "Other Hub", "hubclientinfo"),
        ("FR/XYZ", "Other Hub", "routing_headers"),
    ]


def test_a_hub_may_not_register_with_a_role_of_a_direct_cpo(client, db_session, fake_cpo):
    _direct_cpo()
    add_partner(name="Greedy Hub", country_code="DE", party_id="GHB", role="HUB", token="greedy-token-a")
    db.session.commit()
    refused = _register(client, fake_cpo, "greedy-token-a", [("HUB", "DE", "GHB"), ("CPO", "BE", "ABC")])
    assert refused.status_code == 400
    assert refused.get_json()["status_code"] == 2001
    assert refused.get_json()["status_message"].startswith("roles[1]")
    db.session.expire_all()
    greedy = db.session.scalar(db.select(Partner).filter_by(party_id="GHB"))
    assert greedy.status == PartnerStatus.PENDING and greedy.parties == []
    assert [(party, claimant, via) for party, claimant, _, via, _ in _conflicts()] == [
        ("BE/ABC", "Greedy Hub", "credentials")
    ]


def test_no_partner_may_use_our_own_party(app, client, db_session, fake_cpo):
    ours = (app.config["COMPANY_COUNTRY_CODE"], app.config["COMPANY_PARTY_ID"])
    with pytest.raises(PartnerError, match="our own party"):
        add_partner(name="Impostor", country_code=ours[0], party_id=ours[1], role="CPO", token="impostor-a")
    add_partner(name="Platform", country_code="NL", party_id="PLT", role="CPO", token="platform-a")
    db.session.commit()
    refused = _register(client, fake_cpo, "platform-a", [("CPO", "NL", "PLT"), ("CPO", ours[0], ours[1].lower())])
    assert refused.status_code == 400 and refused.get_json()["status_message"].startswith("roles[1]")


# --- a direct connection arriving later wins ---------------------------------------------------------------------


def test_a_direct_cpo_added_later_ends_the_hubs_claim(app, client, hub, fake_cpo):  # noqa: F811
    assert hub.put("/ocpi/2.2.1/hubclientinfo/BE/ABC", _client_info("BE", "ABC")).status_code == 201
    via_hub = hub.put(
        "/ocpi/2.2.1/locations/BE/ABC/LOC1", _location("BE", "ABC", name="via hub"), headers=_from("BE", "ABC")
    )
    assert via_hub.status_code in (200, 201)

    # The operator connects CPO A directly: the party now belongs to that connection.
    add_partner(name="CPO A", country_code="BE", party_id="ABC", role="CPO", token=CPO_A_TOKEN_A)
    db.session.commit()
    assert _hub_parties() == [("DE", "HUB", "HUB")]
    assert [(party, claimant, holder, via, outcome) for party, claimant, holder, via, outcome in _conflicts()] == [
        ("BE/ABC", "Roaming Hub", "direct partner 'CPO A'", "partner_add", "hub_claim_ended")
    ]

    assert (
        hub.put("/ocpi/2.2.1/locations/BE/ABC/LOC1", _location("BE", "ABC"), headers=_from("BE", "ABC")).status_code
        == 403
    )
    registered = _register(client, fake_cpo, CPO_A_TOKEN_A, [("CPO", "BE", "ABC")])
    assert registered.status_code == 200, registered.get_json()
    cpo = OcpiTestClient(client, token=registered.get_json()["data"]["token"])
    assert cpo.put("/ocpi/2.2.1/locations/BE/ABC/LOC1", _location("BE", "ABC", name="direct")).status_code in (200, 201)
    db.session.expire_all()
    location = db.session.scalar(db.select(Location).filter_by(party_id="ABC", ocpi_id="LOC1"))
    assert location.name == "direct"

    listed = app.test_cli_runner().invoke(args=["roaming", "party-conflicts"])
    assert listed.exit_code == 0, listed.output
    assert "BE/ABC" in listed.output and "Roaming Hub" in listed.output and "hub_claim_ended" in listed.output


def test_a_platform_registering_a_party_a_hub_announced_ends_the_hubs_claim(client, hub, fake_cpo):  # noqa: F811
    assert hub.put("/ocpi/2.2.1/hubclientinfo/BE/XYZ", _client_info("BE", "XYZ")).status_code == 201
    add_partner(name="CPO A", country_code="BE", party_id="ABC", role="CPO", token=CPO_A_TOKEN_A)
    db.session.commit()
    registered = _register(client, fake_cpo, CPO_A_TOKEN_A, [("CPO", "BE", "ABC"), ("CPO", "BE", "XYZ")])
    assert registered.status_code == 200, registered.get_json()
    assert _hub_parties() == [("DE", "HUB", "HUB")]
    assert [(party, claimant, via, outcome) for party, claimant, _, via, outcome in _conflicts()] == [
        ("BE/XYZ", "Roaming Hub", "credentials", "hub_claim_ended")
    ]


def test_a_suspended_cpo_back_to_pending_ends_the_hubs_claim(client, hub):  # noqa: F811
    cpo_a = _direct_cpo()
    cpo_a.status = PartnerStatus.SUSPENDED
    cpo_a.incoming_token_hash = None
    db.session.commit()
    # Suspended: no longer connected, so a hub may carry the party.
    assert hub.put("/ocpi/2.2.1/hubclientinfo/BE/ABC", _client_info("BE", "ABC")).status_code == 201
    reset_partner_token(db.session.get(Partner, cpo_a.id), "fresh-token-a")
    db.session.commit()
    assert _hub_parties() == [("DE", "HUB", "HUB")]
    assert [(via, outcome) for _, _, _, via, outcome in _conflicts()] == [("partner_reset", "hub_claim_ended")]


# --- a direct CPO writes only its own party ------------------------------------------------------------------------


def test_a_direct_cpo_writes_only_objects_of_its_own_party(client, ocpi):
    cpo_a = _direct_cpo()
    a = OcpiTestClient(client, token=CPO_A_TOKEN)
    assert a.put("/ocpi/2.2.1/locations/BE/ABC/LOC1", _location("BE", "ABC")).status_code in (200, 201)

    # ``ocpi`` is the conftest CPO NL/TCP: none of CPO A's objects, whatever the URL, body or headers say.
    for path, body in (
        ("/ocpi/2.2.1/locations/BE/ABC/LOC1", _location("BE", "ABC", name="B was here")),
        ("/ocpi/2.2.1/locations/BE/ABC/LOC1/E1", _location("BE", "ABC")["evses"][0]),
        ("/ocpi/2.2.1/tariffs/BE/ABC/T1", {"country_code": "BE", "party_id": "ABC", "id": "T1"}),
        ("/ocpi/2.2.1/sessions/BE/ABC/S1", {"country_code": "BE", "party_id": "ABC", "id": "S1"}),
    ):
        for headers in (None, _from("BE", "ABC")):
            response = ocpi.put(path, body, headers=headers)
            assert response.status_code == 403, (path, response.get_json())
    patched = ocpi.patch("/ocpi/2.2.1/locations/BE/ABC/LOC1", {"name": "B", "last_updated": "2027-01-01T00:00:00Z"})
    assert patched.status_code == 403
    cdr = ocpi.post("/ocpi/2.2.1/cdrs", {"country_code": "BE", "party_id": "ABC", "id": "CDR1"})
    assert cdr.status_code == 403
    # Its own URL with another party in the body is refused as well.
    own_url = ocpi.put("/ocpi/2.2.1/locations/NL/TCP/LOC1", _location("BE", "ABC"))
    assert own_url.status_code == 400 and own_url.get_json()["status_code"] == 2001

    db.session.expire_all()
    [location] = db.session.scalars(db.select(Location)).all()
    assert (location.country_code, location.party_id, location.partner_id, location.name) == (
        "BE",
        "ABC",
        cpo_a.id,
        "CPO A's car park",
    )
    assert {(party, claimant) for party, claimant, _, _, _ in _conflicts()} == {("BE/ABC", "Test CPO")}


def test_party_conflicts_command_without_conflicts(app, db_session):
    listed = app.test_cli_runner().invoke(args=["roaming", "party-conflicts"])
    assert listed.exit_code == 0 and "no party conflicts" in listed.output
