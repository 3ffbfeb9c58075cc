"""The SSRF defect of issue 12, item 7, through the doors: a partner's credentials ``url`` (OCPI POST
credentials and ``flask roaming register``) and a pull's ``Link`` cannot make us call an internal service,
cannot hold a worker beyond the handshake deadline, and never get its answer echoed back."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from app.extensions import db
from app.roaming.models import Location, Partner, PartnerStatus, PullCursor
from app.roaming.ocpi.auth import hash_token
from app.roaming.partners.services import add_partner
from app.roaming.receive.pull import PullError, pull
from tests.roaming.conftest import OcpiTestClient
from tests.roaming.loopback_servers import ScriptedServer, delayed, ocpi, raw, start_scripted
from tests.shared_data import NL_DATA

TOKEN_A = "token-a-for-the-guard-test"
THEIR_TOKEN = "their-token-for-the-guard-test"
SECRET = "internal-db-password-7f3a"


@pytest.fixture
def internal() -> Iterator[ScriptedServer]:
    """A service inside our network: it answers whatever it is asked, with a secret in it."""
    running = start_scripted()
    for path in ("/ocpi/versions", "/admin"):
        running.scripted.routes[path] = ocpi(None, status_code=3000, http_status=500, status_message=SECRET)
    yield running.scripted
    running.stop()


@pytest.fixture
def partner_server() -> Iterator[ScriptedServer]:
    running = start_scripted()
    yield running.scripted
    running.stop()


@pytest.fixture
def pending(db_session) -> Partner:  # type: ignore[no-untyped-def]
    return add_partner(name="Guarded CPO", country_code="NL", party_id="GRD", role="CPO", token=TOKEN_A)


@pytest.fixture
def settings(app, monkeypatch):  # type: ignore[no-untyped-def]
    def change(**values: object) -> None:
        for name, value in values.items():
            monkeypatch.setitem(app.config, name, value)

    return change


def credentials(url: str) -> dict[str, Any]:
    return {
        "token": THEIR_TOKEN,
        "url": url,
        "roles": [
            {"role": "CPO", "party_id": "GRD", "country_code": "NL", "business_details": {"name": "Guarded CPO"}}
        ],
    }


def register(client, url: str):  # type: ignore[no-untyped-def]
    return OcpiTestClient(client, token=TOKEN_A).post("/ocpi/2.2.1/credentials", json=credentials(url))


def assert_nothing_changed(partner: Partner) -> None:
    db.session.expire_all()
    partner = db.session.get(Partner, partner.id)
    assert partner.status == PartnerStatus.PENDING and partner.outgoing_token is None
    assert partner.incoming_token_hash == hash_token(TOKEN_A)


# --- they register with us: POST /ocpi/2.2.1/credentials ----------------------------------------------------------


@pytest.mark.parametrize(("require_https", "reason"), [(True, "https required"), (False, "address not allowed")])
def test_credentials_url_into_our_network_is_refused_under_the_strict_guard(
    client, pending, internal, settings, require_https, reason
):
    settings(OCPI_REQUIRE_HTTPS=require_https, OCPI_ALLOWED_PRIVATE_HOSTS=[])

    response = register(client, internal.url("/ocpi/versions"))

    # A failed credentials exchange: 3001 "Unable to use the client's API", HTTP 200 (status_codes.asciidoc).
    assert response.status_code == 200
    body = response.get_json()
    assert body["status_code"] == 3001
    assert body["status_message"] == f"Unable to use the client's API: GET versions failed: {reason}"
    assert internal.seen == []
    assert_nothing_changed(pending)


def test_the_answer_of_a_reachable_server_is_never_echoed(client, pending, internal):
    """Admitted by the test allow-list (127.0.0.1), the server answers; its answer stays in our log. (One test
    for the three answers: an OCPI error, an HTML page, a plain refusal.)"""
    answers = {
        "HTTP 500 from partner": ocpi(None, status_code=3000, http_status=500, status_message=SECRET),
        "not an OCPI answer": raw(200, f"<html><h1>Jenkins</h1>{SECRET}</html>".encode()),
        "HTTP 403 from partner": raw(403, f"forbidden: {SECRET}".encode(), "text/plain"),
    }
    for reason, answer in answers.items():
        internal.routes["/ocpi/versions"] = answer
        body = register(client, internal.url("/ocpi/versions")).get_json()
        assert SECRET not in json.dumps(body), reason
        assert (body["status_code"], body["status_message"]) == (
            3001,
            f"Unable to use the client's API: GET versions failed: {reason}",
        )
        assert_nothing_changed(pending)


def test_a_slow_partner_cannot_hold_the_worker_beyond_the_handshake_deadline(client, pending, partner_server, settings):
    """Each answer comes in time for its own call (0.6 s of 5 s), the sequence does not (1.2 s of 0.8 s)."""
    settings(OCPI_CALL_DEADLINE=5.0, OCPI_READ_TIMEOUT=5.0, OCPI_HANDSHAKE_DEADLINE=0.8)
    details = {
        "version": "2.2.1",
        "endpoints": [{"identifier": "credentials", "role": "SENDER", "url": partner_server.url("/2.2.1/credentials")}],
    }
    partner_server.routes["/versions"] = delayed(0.6, ocpi([{"version": "2.2.1", "url": partner_server.url("/2.2.1")}]))
    partner_server.routes["/2.2.1"] = delayed(0.6, ocpi(details))

    started = time.monotonic()
    response = register(client, partner_server.url("/versions"))

    assert time.monotonic() - started < 3
    body = response.get_json()
    assert (body["status_code"], body["status_message"]) == (
        3001,
        "Unable to use the client's API: GET version details failed: timed out",
    )
    assert_nothing_changed(pending)


def test_slow_handshakes_cannot_take_every_thread_of_the_door(app, client, pending, internal, settings, monkeypatch):
    """Eight slow handshakes froze every worker: only OCPI_CONCURRENT_HANDSHAKES exchanges run at once per
    process; one more is asked to come back (503, OCPI 3000) at once, without calling anybody."""
    from app.roaming.door.v221 import credentials as credentials_door

    settings(OCPI_CONCURRENT_HANDSHAKES=1)
    monkeypatch.setitem(app.extensions, credentials_door._SLOTS_KEY, threading.BoundedSemaphore(1))
    slots = credentials_door._handshake_slots()
    assert slots.acquire(blocking=False)  # one exchange under way (a partner that is slow to answer)
    try:
        started = time.monotonic()
        response = register(client, internal.url("/ocpi/versions"))
        assert time.monotonic() - started < 1
        assert response.status_code == 503
        assert response.get_json()["status_code"] == 3000
        assert internal.seen == []
        assert_nothing_changed(pending)
    finally:
        slots.release()
    # The slot is free again: the next exchange runs (and fails on the internal address, as it should).
    assert register(client, internal.url("/ocpi/versions")).get_json()["status_code"] == 3001


# --- we register with them: flask roaming register -----------------------------------------------------------------


def _run(app, *args: str):  # type: ignore[no-untyped-def]
    return app.test_cli_runner().invoke(args=["roaming", *args])


def test_register_cli_neither_echoes_nor_reaches_inside(app, db_session, internal, settings):
    added = _run(
        app,
        "partner-add",
        "--name",
        "Inside",
        "--country-code",
        "NL",
        "--party-id",
        "INS",
        "--role",
        "CPO",
        "--token",
        "t-a",
        "--versions-url",
        internal.url("/admin"),
        "--their-token",
        "x",
    )
    assert added.exit_code == 0, added.output

    echoed = _run(app, "register", "Inside")
    assert echoed.exit_code != 0
    assert "HTTP 500 from partner" in echoed.output and SECRET not in echoed.output

    settings(OCPI_REQUIRE_HTTPS=True, OCPI_ALLOWED_PRIVATE_HOSTS=[])
    before = len(internal.seen)
    refused = _run(app, "register", "Inside")
    assert refused.exit_code != 0 and "https required" in refused.output
    assert len(internal.seen) == before


# --- pulls: the Link of the next page -------------------------------------------------------------------------------


@pytest.fixture
def one_location() -> dict[str, Any]:
    with gzip.open(NL_DATA / "locations.json.gz", "rt") as locations:
        return json.load(locations)[0]


def _sender(partner: Partner, url: str) -> None:
    partner.is_hub = True  # the NDW data carries many parties
    partner.endpoints = [{"identifier": "locations", "role": "SENDER", "url": url}]
    db.session.commit()


def test_a_next_page_link_to_another_host_is_not_followed(partner, partner_server, internal, one_location):
    """The Link would carry our token for this partner to another host: it is not followed. The next page is
    asked for by offset at the partner's endpoint instead (issue 13), noted on the cursor; the other host is
    never reached."""
    link = f'<{internal.url("/admin")}?offset=1&limit=1>; rel="next"'

    def locations(handler, seen):  # type: ignore[no-untyped-def]
        first_page = "offset=0" in handler.path
        ocpi([one_location] if first_page else [], headers={"Link": link, "X-Total-Count": "2"})(handler, seen)

    partner_server.routes["/locations"] = locations
    _sender(partner, partner_server.url("/locations"))

    result = pull(partner, "locations", limit=1, sleep=lambda _: None)

    assert internal.seen == []
    assert [seen.path for seen in partner_server.seen] == ["/locations", "/locations"]
    assert (result.received, db.session.query(Location).count()) == (1, 1)
    cursor = db.session.query(PullCursor).one()
    assert cursor.next_url is None and "leaves the origin" in (cursor.last_error or "")


def test_a_refused_endpoint_is_not_retried(partner, internal, settings):
    settings(OCPI_ALLOWED_PRIVATE_HOSTS=[])
    _sender(partner, internal.url("/admin"))
    delays: list[float] = []
    with pytest.raises(PullError, match="address not allowed"):
        pull(partner, "locations", retries=3, sleep=delays.append)
    assert delays == [] and internal.seen == []
