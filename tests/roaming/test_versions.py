"""Versions and version details (version_information_endpoint): strict field names, token required, token A of
a pending partner enough, absolute URLs that lead to real routes."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

import pytest

from app.roaming.partners.services import add_partner
from tests.roaming.conftest import PARTNER_TOKEN, OcpiTestClient
from tests.shared_data import EXAMPLES as SHARED_EXAMPLES

EXAMPLES = SHARED_EXAMPLES

EXPECTED_ENDPOINTS = {
    ("credentials", "SENDER"),
    ("credentials", "RECEIVER"),
    ("locations", "RECEIVER"),
    ("tariffs", "RECEIVER"),
    ("sessions", "RECEIVER"),
    ("cdrs", "RECEIVER"),
    ("tokens", "SENDER"),
    ("commands", "SENDER"),
    ("hubclientinfo", "RECEIVER"),
}


def _example(name: str):  # type: ignore[no-untyped-def]
    return json.loads((EXAMPLES / name).read_text())


def test_versions_lists_221_with_the_fields_of_the_spec_example(ocpi):
    response = ocpi.get("/ocpi/versions")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"data", "status_code", "timestamp"}
    assert body["status_code"] == 1000
    example = _example("versions_info_example.json")
    assert [set(item) for item in body["data"]] == [set(example[0])]
    assert body["data"] == [{"version": "2.2.1", "url": "http://localhost/ocpi/2.2.1"}]
    assert response.headers["X-Request-ID"] == "req-1"
    assert response.headers["X-Correlation-ID"] == "corr-1"


def test_version_details_list_our_endpoints(ocpi, app):
    response = ocpi.get("/ocpi/2.2.1")
    assert response.status_code == 200
    data = response.get_json()["data"]
    example = _example("version_details_example.json")
    assert set(data) == set(example)
    assert data["version"] == "2.2.1"
    assert all(set(endpoint) == set(example["endpoints"][0]) for endpoint in data["endpoints"])
    assert {(e["identifier"], e["role"]) for e in data["endpoints"]} == EXPECTED_ENDPOINTS
    assert len(data["endpoints"]) == len(EXPECTED_ENDPOINTS)
    adapter = app.url_map.bind("localhost")
    for endpoint in data["endpoints"]:
        assert endpoint["url"] == f"http://localhost/ocpi/2.2.1/{endpoint['identifier']}"
    # The modules we own answer on exactly the advertised URLs.
    for identifier, method in (("credentials", "POST"), ("hubclientinfo", "PUT")):
        path = urlsplit(f"http://localhost/ocpi/2.2.1/{identifier}").path
        if identifier == "hubclientinfo":
            path += "/NL/TCP"
        assert adapter.match(path, method=method)


def test_version_url_from_the_list_leads_to_the_details(ocpi):
    details_url = ocpi.get("/ocpi/versions").get_json()["data"][0]["url"]
    response = ocpi.get(urlsplit(details_url).path)
    assert response.get_json()["data"]["version"] == "2.2.1"


@pytest.mark.parametrize("path", ["/ocpi/versions", "/ocpi/2.2.1"])
@pytest.mark.parametrize("base64_token", [True, False])
def test_unknown_token_is_401(client, partner, path, base64_token):
    response = OcpiTestClient(client, token="not-a-token-we-issued", base64_token=base64_token).get(path)
    assert response.status_code == 401
    assert response.get_json()["status_code"] == 2000


@pytest.mark.parametrize("path", ["/ocpi/versions", "/ocpi/2.2.1"])
def test_missing_or_malformed_authorization_is_401(client, partner, path):
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {PARTNER_TOKEN}"}).status_code == 401
    assert client.get(path, headers={"Authorization": "Token "}).status_code == 401


@pytest.mark.parametrize("base64_token", [True, False])
def test_raw_and_base64_tokens_are_both_accepted(client, partner, base64_token):
    response = OcpiTestClient(client, base64_token=base64_token).get("/ocpi/versions")
    assert response.status_code == 200


def test_token_a_of_a_pending_partner_opens_versions_but_not_the_modules(client, db_session):
    add_partner(name="Pending CPO", country_code="DE", party_id="PND", role="CPO", token="token-a-pending")
    pending = OcpiTestClient(client, token="token-a-pending")
    assert pending.get("/ocpi/versions").status_code == 200
    assert pending.get("/ocpi/2.2.1").status_code == 200
    # transport_and_format: token A on any other module than credentials and versions → 401.
    assert pending.get("/ocpi/2.2.1/hubclientinfo/NL/TCP").status_code == 401
    assert pending.put("/ocpi/2.2.1/hubclientinfo/NL/TCP", json={}).status_code == 401


def test_base64_of_the_spec_example_token_is_decoded(client, db_session):
    """transport_and_format's example token, base64-encoded as the spec prescribes."""
    add_partner(name="Example", country_code="NL", party_id="EXM", role="CPO", token="example-token")
    encoded = base64.b64encode(b"example-token").decode()
    assert client.get("/ocpi/versions", headers={"Authorization": f"Token {encoded}"}).status_code == 200
