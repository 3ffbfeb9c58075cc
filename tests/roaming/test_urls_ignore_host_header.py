"""Pen test, issue 12 (1), on the partners' door: the URLs we hand partners (versions, endpoints, a CDR's
Location, a command's response_url, the next page's Link) come from configuration, not from the Host header."""

from __future__ import annotations

from app.public_urls import ocpi_url_of_current_path
from app.roaming.send.commands import response_url

FORGED = {"Host": "evil.example"}


def test_versions_and_endpoints_ignore_a_forged_host(ocpi):
    versions = ocpi.get("/ocpi/versions", headers=FORGED).get_json()["data"]
    assert versions == [{"version": "2.2.1", "url": "http://localhost/ocpi/2.2.1"}]
    endpoints = ocpi.get("/ocpi/2.2.1", headers=FORGED).get_json()["data"]["endpoints"]
    assert endpoints and all(endpoint["url"].startswith("http://localhost/ocpi/2.2.1/") for endpoint in endpoints)


def test_command_response_url_and_next_page_link_ignore_a_forged_host(app, db_session):
    with app.test_request_context("/ocpi/2.2.1/tokens", headers=FORGED):
        assert response_url("START_SESSION", "abc") == "http://localhost/ocpi/2.2.1/commands/START_SESSION/abc"
        assert ocpi_url_of_current_path() == "http://localhost/ocpi/2.2.1/tokens"
    app.config["OCPI_BASE_URL"] = "https://ocpi.emsp.example.com"
    try:
        with app.test_request_context("/ocpi/2.2.1/tokens", headers=FORGED):
            assert ocpi_url_of_current_path() == "https://ocpi.emsp.example.com/ocpi/2.2.1/tokens"
    finally:
        app.config["OCPI_BASE_URL"] = None
