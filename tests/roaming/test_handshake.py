"""The credentials handshake both ways, over real HTTP against the fake CPO.

They register with us: the test plays the CPO's client through our real endpoints (Flask test client) while our
server fetches the CPO's versions over loopback HTTP. We register with them: ``flask roaming register`` against
the fake CPO's credentials endpoint.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from app.extensions import db
from app.roaming.models import Partner, PartnerStatus
from app.roaming.ocpi.auth import hash_token
from app.roaming.partners.services import add_partner
from tests.roaming.conftest import OcpiTestClient
from tests.roaming.fake_cpo.handshake import CPO_ENDPOINTS, module_url, versions_url
from tests.shared_data import EXAMPLES as SHARED_EXAMPLES

EXAMPLES = SHARED_EXAMPLES
TOKEN_A = "token-a-we-gave-exa"
THEIR_TOKEN_B = "9e80a9c4-28be-11e9-b210-d663bd873d93"


def _b64(token: str) -> str:
    return base64.b64encode(token.encode()).decode()


def _example_credentials(fake_cpo, name: str = "credentials_example.json", token: str = THEIR_TOKEN_B) -> dict:
    """An official credentials example, pointed at the fake CPO's versions endpoint."""
    credentials = json.loads((EXAMPLES / name).read_text())
    credentials["token"] = token
    credentials["url"] = versions_url(fake_cpo)
    fake_cpo.accepted_tokens.add(token)
    return credentials


@pytest.fixture
def pending(db_session) -> Partner:  # type: ignore[no-untyped-def]
    """NL/EXA, the party of the official credentials examples, holding token A."""
    return add_partner(name="Example Operator", country_code="NL", party_id="EXA", role="CPO", token=TOKEN_A)


def _reload(partner: Partner) -> Partner:
    db.session.expire_all()
    return db.session.get(Partner, partner.id)


# --- they register with us ------------------------------------------------------------------------------------


def test_partner_registers_with_token_a_and_gets_token_c(client, pending, fake_cpo):
    response = OcpiTestClient(client, token=TOKEN_A).post(
        "/ocpi/2.2.1/credentials", json=_example_credentials(fake_cpo)
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status_code"] == 1000
    ours = body["data"]
    assert set(ours) == {"token", "url", "roles"}
    assert ours["url"] == "http://localhost/ocpi/versions"
    assert ours["roles"] == [
        {"role": "EMSP", "party_id": "VLT", "country_code": "BE", "business_details": {"name": "Voltaro BV"}}
    ]
    token_c = ours["token"]
    assert token_c != TOKEN_A and len(token_c) >= 32

    partner = _reload(pending)
    assert partner.status == PartnerStatus.REGISTERED
    assert partner.registered_at is not None
    assert partner.outgoing_token == THEIR_TOKEN_B
    assert partner.incoming_token_hash == hash_token(token_c)
    assert partner.versions_url == versions_url(fake_cpo)
    assert partner.version == "2.2.1"
    assert {(e["identifier"], e["role"], e["url"]) for e in partner.endpoints} == {
        (module, role, module_url(fake_cpo, module)) for module, role in CPO_ENDPOINTS
    }
    assert partner.endpoint_url("locations", "SENDER") == module_url(fake_cpo, "locations")
    assert "token" not in partner.credentials
    assert [(p.role, p.country_code, p.party_id, p.name) for p in partner.parties] == [
        ("CPO", "NL", "EXA", "Example Operator")
    ]

    # We fetched their versions and details with their token B, base64, without routing headers.
    fetched = fake_cpo.requests_to("/ocpi/cpo/versions") + fake_cpo.requests_to("/ocpi/cpo/2.2.1")
    assert [r.path for r in fetched] == ["/ocpi/cpo/versions", "/ocpi/cpo/2.2.1"]
    for recorded in fetched:
        assert recorded.headers["Authorization"] == f"Token {_b64(THEIR_TOKEN_B)}"
        assert recorded.headers["X-Request-Id"]
        assert not any(name.lower().startswith("ocpi-") for name in recorded.headers)

    # Token A is dead; token C opens everything, raw or base64.
    assert OcpiTestClient(client, token=TOKEN_A).get("/ocpi/versions").status_code == 401
    assert OcpiTestClient(client, token=token_c).get("/ocpi/versions").status_code == 200
    assert OcpiTestClient(client, token=token_c, base64_token=False).get("/ocpi/2.2.1").status_code == 200


def test_credentials_get_returns_ours_with_the_callers_token(client, pending):
    response = OcpiTestClient(client, token=TOKEN_A, base64_token=False).get("/ocpi/2.2.1/credentials")
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["token"] == TOKEN_A
    assert data["roles"][0]["role"] == "EMSP"


def test_second_post_is_405_and_put_rotates_then_delete_unregisters(client, pending, fake_cpo):
    token_c = (
        OcpiTestClient(client, token=TOKEN_A)
        .post("/ocpi/2.2.1/credentials", json=_example_credentials(fake_cpo))
        .get_json()["data"]["token"]
    )
    registered = OcpiTestClient(client, token=token_c)

    again = registered.post("/ocpi/2.2.1/credentials", json=_example_credentials(fake_cpo))
    assert again.status_code == 405
    assert again.get_json()["status_code"] == 2000
    # 405 wins over a malformed body: the spec answers on the registration state.
    assert registered.post("/ocpi/2.2.1/credentials", json={"token": ""}).status_code == 405

    fetches_before = len(fake_cpo.requests_to("/ocpi/cpo/2.2.1", "GET"))
    new_b = "their-rotated-token-b"
    rotated = registered.put("/ocpi/2.2.1/credentials", json=_example_credentials(fake_cpo, token=new_b))
    assert rotated.status_code == 200, rotated.get_json()
    token_c2 = rotated.get_json()["data"]["token"]
    assert token_c2 != token_c
    assert registered.get("/ocpi/versions").status_code == 401
    assert OcpiTestClient(client, token=token_c2).get("/ocpi/versions").status_code == 200
    partner = _reload(pending)
    assert partner.outgoing_token == new_b
    assert partner.status == PartnerStatus.REGISTERED
    # The endpoints were fetched again, with the new token.
    details = fake_cpo.requests_to("/ocpi/cpo/2.2.1", "GET")
    assert len(details) == fetches_before + 1
    assert details[-1].headers["Authorization"] == f"Token {_b64(new_b)}"

    deleted = OcpiTestClient(client, token=token_c2).delete("/ocpi/2.2.1/credentials")
    assert deleted.status_code == 200
    assert deleted.get_json()["status_code"] == 1000
    partner = _reload(pending)
    # Their doing, not a suspension of ours: recorded as such.
    assert partner.status == PartnerStatus.UNREGISTERED
    assert partner.status_changed_by == "partner NL/EXA"
    assert partner.status_reason == "they unregistered (DELETE credentials)"
    assert partner.incoming_token_hash is None and partner.outgoing_token is None
    # Afterwards the token is unknown: 401 on every method.
    for method in ("get", "delete"):
        assert getattr(OcpiTestClient(client, token=token_c2), method)("/ocpi/2.2.1/credentials").status_code == 401


def test_put_and_delete_before_registration_are_405(client, pending, fake_cpo):
    token_a = OcpiTestClient(client, token=TOKEN_A)
    assert token_a.put("/ocpi/2.2.1/credentials", json=_example_credentials(fake_cpo)).status_code == 405
    assert token_a.delete("/ocpi/2.2.1/credentials").status_code == 405
    assert _reload(pending).status == PartnerStatus.PENDING


@pytest.mark.parametrize("base64_token", [True, False])
def test_unknown_token_on_credentials_is_401(client, pending, fake_cpo, base64_token):
    stranger = OcpiTestClient(client, token="never-issued", base64_token=base64_token)
    response = stranger.post("/ocpi/2.2.1/credentials", json=_example_credentials(fake_cpo))
    assert response.status_code == 401
    assert response.get_json()["status_code"] == 2000
    assert fake_cpo.received == []


def _break(credentials: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    target: Any = credentials
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is ...:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return credentials


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("token", ..., "token"),
        ("token", "has a space", "token"),
        ("token", "x" * 65, "token"),
        ("url", ..., "url"),
        ("url", "ftp://example.com/versions", "url"),
        ("roles", [], "roles"),
        ("roles", ..., "roles"),
        ("roles.0.role", "DRIVER", "roles[0].role"),
        ("roles.0.party_id", "EXAMPLE", "roles[0].party_id"),
        ("roles.0.country_code", ..., "roles[0].country_code"),
        ("roles.0.business_details", ..., "roles[0].business_details"),
        ("roles.0.business_details.name", ..., "roles[0].business_details.name"),
    ],
)
def test_malformed_credentials_get_2001_naming_the_field(client, pending, fake_cpo, path, value, named):
    credentials = _break(_example_credentials(fake_cpo), path, value)
    response = OcpiTestClient(client, token=TOKEN_A).post("/ocpi/2.2.1/credentials", json=credentials)
    assert response.status_code == 400
    body = response.get_json()
    assert body["status_code"] == 2001
    assert body["status_message"].startswith(named)
    assert _reload(pending).status == PartnerStatus.PENDING
    assert fake_cpo.received == []  # refused before calling them
    assert OcpiTestClient(client, token=TOKEN_A).get("/ocpi/versions").status_code == 200


def test_body_that_is_not_json_is_2001(client, pending):
    response = client.post(
        "/ocpi/2.2.1/credentials",
        data="{not json",
        headers={"Authorization": f"Token {_b64(TOKEN_A)}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.get_json()["status_code"] == 2001


def test_roles_must_include_the_party_the_token_was_issued_to(client, pending, fake_cpo):
    credentials = _example_credentials(fake_cpo)
    credentials["roles"][0]["party_id"] = "OTH"
    response = OcpiTestClient(client, token=TOKEN_A).post("/ocpi/2.2.1/credentials", json=credentials)
    assert response.status_code == 400
    assert response.get_json()["status_code"] == 2001
    assert response.get_json()["status_message"].startswith("roles")


def test_no_common_version_is_3002_and_nothing_changes(client, pending, fake_cpo):
    fake_cpo.misbehave["versions"] = [{"version": "2.1.1", "url": fake_cpo.url("/ocpi/cpo/2.1.1")}]
    response = OcpiTestClient(client, token=TOKEN_A).post(
        "/ocpi/2.2.1/credentials", json=_example_credentials(fake_cpo)
    )
    body = response.get_json()
    assert body["status_code"] == 3002
    assert "Unsupported version" in body["status_message"]
    partner = _reload(pending)
    assert partner.status == PartnerStatus.PENDING and partner.outgoing_token is None
    assert partner.incoming_token_hash == hash_token(TOKEN_A)


def test_their_api_refusing_our_call_is_3001(client, pending, fake_cpo):
    credentials = _example_credentials(fake_cpo)
    fake_cpo.accepted_tokens.discard(credentials["token"])  # they gave us a token they do not accept
    response = OcpiTestClient(client, token=TOKEN_A).post("/ocpi/2.2.1/credentials", json=credentials)
    assert response.get_json()["status_code"] == 3001
    assert _reload(pending).status == PartnerStatus.PENDING


def test_unreachable_versions_url_is_3001(client, pending, fake_cpo):
    credentials = _example_credentials(fake_cpo)
    credentials["url"] = "http://127.0.0.1:9/ocpi/versions"  # discard port: nothing listens
    response = OcpiTestClient(client, token=TOKEN_A).post("/ocpi/2.2.1/credentials", json=credentials)
    assert response.get_json()["status_code"] == 3001
    assert _reload(pending).status == PartnerStatus.PENDING


def test_a_platform_announces_several_cpos(client, db_session, fake_cpo):
    """credentials_example4: one connection serving three CPOs."""
    add_partner(name="Excellent Operator", country_code="NL", party_id="EXO", role="CPO", token=TOKEN_A)
    credentials = _example_credentials(fake_cpo, "credentials_example4.json")
    response = OcpiTestClient(client, token=TOKEN_A).post("/ocpi/2.2.1/credentials", json=credentials)
    assert response.status_code == 200, response.get_json()
    partner = db.session.scalar(db.select(Partner).filter_by(party_id="EXO"))
    assert sorted(p.party_id for p in partner.parties) == ["CGP", "EXO", "PFC"]


def test_a_party_of_another_connection_cannot_be_claimed(client, partner, pending, fake_cpo):
    """``partner`` (the conftest CPO) is NL/TCP: EXA may not announce it."""
    credentials = _example_credentials(fake_cpo)
    credentials["roles"].append(
        {"role": "CPO", "party_id": "TCP", "country_code": "NL", "business_details": {"name": "Not mine"}}
    )
    response = OcpiTestClient(client, token=TOKEN_A).post("/ocpi/2.2.1/credentials", json=credentials)
    assert response.status_code == 400
    assert response.get_json()["status_message"].startswith("roles[1]")


@pytest.mark.parametrize("name", ["credentials_example2.json", "credentials_example3.json"])
def test_the_other_official_credentials_examples_register_too(client, pending, fake_cpo, name):
    """Example 2: one party in two roles (CPO and EMSP); example 3: business details with a logo and website."""
    response = OcpiTestClient(client, token=TOKEN_A).post(
        "/ocpi/2.2.1/credentials", json=_example_credentials(fake_cpo, name)
    )
    assert response.status_code == 200, response.get_json()
    partner = _reload(pending)
    assert partner.status == PartnerStatus.REGISTERED
    assert [role["role"] for role in partner.credentials["roles"]] == [
        role["role"] for role in json.loads((EXAMPLES / name).read_text())["roles"]
    ]


def test_a_partner_writing_roles_and_endpoints_in_lower_case_registers(client, pending, fake_cpo):
    """Issue 13: ``"role": "cpo"``, ``"party_id": "exa"``, endpoint roles ``"sender"`` and module identifiers in
    upper case (the fake CPO's ``lowercase_roles``). Accepted; codes stored upper-case, endpoints found."""
    fake_cpo.misbehave["lowercase_roles"] = True
    credentials = _example_credentials(fake_cpo)
    for role in credentials["roles"]:
        role.update(role=role["role"].lower(), party_id="exa", country_code="nl")
    response = OcpiTestClient(client, token=TOKEN_A).post("/ocpi/2.2.1/credentials", json=credentials)
    assert response.status_code == 200, response.get_json()
    partner = _reload(pending)
    assert partner.status == PartnerStatus.REGISTERED
    assert [(p.role, p.country_code, p.party_id) for p in partner.parties] == [("CPO", "NL", "EXA")]
    assert {(e["identifier"], e["role"]) for e in partner.endpoints} == set(CPO_ENDPOINTS)
    assert partner.endpoint_url("tokens", "RECEIVER") == module_url(fake_cpo, "tokens")
    assert partner.endpoint_url("Tokens", "receiver") == module_url(fake_cpo, "tokens")

    # Rotating works the same way.
    token_c = response.get_json()["data"]["token"]
    rotated = OcpiTestClient(client, token=token_c).put(
        "/ocpi/2.2.1/credentials", json=_example_credentials(fake_cpo, token="their-rotated-b")
    )
    assert rotated.status_code == 200, rotated.get_json()


def test_without_a_configured_url_the_exchange_is_refused_before_anything_changes(app, client, pending, fake_cpo):
    previous = app.config["PUBLIC_BASE_URL"]
    app.config["PUBLIC_BASE_URL"] = None
    try:
        response = OcpiTestClient(client, token=TOKEN_A).post(
            "/ocpi/2.2.1/credentials", json=_example_credentials(fake_cpo)
        )
    finally:
        app.config["PUBLIC_BASE_URL"] = previous
    assert response.get_json()["status_code"] == 3000
    assert "cannot tell the partner where our versions endpoint is" in response.get_json()["status_message"]
    assert fake_cpo.received == []
    partner = _reload(pending)
    assert partner.status == PartnerStatus.PENDING and partner.incoming_token_hash == hash_token(TOKEN_A)
