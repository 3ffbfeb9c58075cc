"""Outgoing OCPI calls through the guard (issue 12, item 7), over real HTTP on loopback: redirects are checked
hop by hop, the connection goes to the checked address, slow servers meet the deadline, errors do not echo."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterator

import pytest

from app.roaming.ocpi import safe_urls, transport
from app.roaming.ocpi.client import OcpiClient, OcpiClientError
from tests.roaming.fake_cpo import start_fake_cpo
from tests.roaming.fake_cpo.receiver import TOKENS_PATH
from tests.roaming.fake_cpo.server import REDIRECT_PREFIX
from tests.roaming.loopback_servers import (
    ScriptedServer,
    Tarpit,
    TlsFiles,
    delayed,
    drip,
    echo_request,
    make_tls_files,
    ocpi,
    raw,
    redirect,
    start_scripted,
)

SECRET = "internal-db-password-7f3a"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    """The partner (or a redirector in its name)."""
    running = start_scripted()
    yield running.scripted
    running.stop()


@pytest.fixture
def internal() -> Iterator[ScriptedServer]:
    """A service inside our network that must never be reached through a partner's URL."""
    running = start_scripted()
    running.scripted.routes["/secret"] = ocpi({"secret": SECRET}, status_message=SECRET)
    yield running.scripted
    running.stop()


@pytest.fixture
def settings(app, monkeypatch):  # type: ignore[no-untyped-def]
    """Change outgoing-call settings for one test."""

    def change(**values: object) -> None:
        for name, value in values.items():
            monkeypatch.setitem(app.config, name, value)

    return change


def failure_of(call) -> OcpiClientError:  # type: ignore[no-untyped-def]
    with pytest.raises(OcpiClientError) as failed:
        call()
    return failed.value


# --- redirects --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/secret",
        "http://localhost:{port}/secret",
        "http://2130706433:{port}/secret",
        "http://0x7f000001:{port}/secret",
        "http://[::ffff:127.0.0.1]:{port}/secret",
    ],
)
def test_redirect_to_an_internal_address_is_refused(partner, server, internal, settings, target):
    """Only the redirector's exact host:port is admitted: its redirect into the internal service is refused."""
    settings(OCPI_ALLOWED_PRIVATE_HOSTS=[server.host_port])
    server.routes["/ocpi/versions"] = redirect(target.format(port=internal.port))

    failure = failure_of(lambda: OcpiClient(partner).get(server.url("/ocpi/versions")))

    assert failure.reason == "address not allowed"
    assert internal.seen == []
    assert SECRET not in str(failure) and str(internal.port) not in str(failure)


def test_redirects_follow_the_method_and_body_rules(partner, server, settings):
    """Within the partner's origin: 307/308 keep the method, the body and the token; 302/303 turn into GET."""
    settings(OCPI_ALLOWED_PRIVATE_HOSTS=["127.0.0.1"])
    server.routes["/echo"] = echo_request()
    server.routes["/307"] = redirect(server.url("/echo"), 307)
    server.routes["/308-here"] = redirect("/echo", 308)
    server.routes["/303"] = redirect("/echo", 303)
    server.routes["/302"] = redirect("/echo", 302)
    client = OcpiClient(partner)
    body = {"hello": "partner"}

    temporary = client.post(server.url("/307"), body).data
    assert (temporary["method"], json.loads(temporary["body"])) == ("POST", body)
    assert temporary["authorization"].startswith("Token ")  # same origin: the token goes along

    permanent = client.put(server.url("/308-here"), body).data
    assert (permanent["method"], json.loads(permanent["body"])) == ("PUT", body)
    assert permanent["authorization"].startswith("Token ")

    for status in ("303", "302"):
        rewritten = client.post(server.url(f"/{status}"), body).data
        assert (rewritten["method"], rewritten["body"]) == ("GET", ""), status


@pytest.mark.parametrize(("method", "status"), [("GET", 307), ("GET", 302), ("PUT", 308), ("POST", 307), ("POST", 303)])
def test_a_redirect_to_another_origin_is_refused_and_takes_nothing_there(partner, server, settings, method, status):
    """Our token for a partner (and what we send it: credentials carry a token) stays at its origin: following
    without the token would only earn a 401 from the other host, so the redirect is refused, not retried."""
    settings(OCPI_ALLOWED_PRIVATE_HOSTS=["127.0.0.1"])
    other = start_scripted()
    try:
        other.scripted.routes["/echo"] = echo_request()
        server.routes["/moved"] = redirect(other.scripted.url("/echo"), status)
        body = None if method == "GET" else {"token": "the-token-they-call-us-with"}

        failure = failure_of(lambda: OcpiClient(partner).request(method, server.url("/moved"), json=body))

        assert failure.reason == "redirect to another origin refused"
        assert failure.retryable is False
        assert other.scripted.seen == []
    finally:
        other.stop()


def test_a_call_without_credentials_or_body_may_follow_a_redirect_to_another_origin(server, settings, app):
    """The rule is about what a request would hand over: with nothing to hand over, the hop is only guarded."""
    other = start_scripted()
    try:
        other.scripted.routes["/echo"] = echo_request()
        server.routes["/moved"] = redirect(other.scripted.url("/echo"), 307)
        fetched = transport.fetch(
            "GET",
            server.url("/moved"),
            headers={"Accept": "application/json"},
            policy=safe_urls.UrlPolicy(
                require_https=False, allowed_private=(safe_urls.AllowedPrivate.parse("127.0.0.1"),)
            ),
            limits=transport.FetchLimits(),
        )
        assert fetched.status == 200 and fetched.url == other.scripted.url("/echo")
        assert [seen.path for seen in other.scripted.seen] == ["/echo"]
    finally:
        other.stop()


def test_a_partner_that_redirects_every_call_is_followed_with_method_body_and_token(partner, fake_cpo):
    """The fake CPO 307s every request to the same path under /moved on its own origin (a real CPO's gateway)."""
    fake_cpo.accepted_tokens.add(partner.outgoing_token)
    fake_cpo.misbehave["redirect_every_call"] = True
    token = {"uid": "0102030405", "type": "RFID", "valid": True}

    answer = OcpiClient(partner).put(fake_cpo.url(f"{TOKENS_PATH}/BE/VLT/0102030405"), token)

    assert answer.status_code == 1000
    assert [(r.method, r.path) for r in fake_cpo.received] == [
        ("PUT", f"{TOKENS_PATH}/BE/VLT/0102030405"),
        ("PUT", f"{REDIRECT_PREFIX}{TOKENS_PATH}/BE/VLT/0102030405"),
    ]
    assert fake_cpo.received[1].body == token  # the body went along: 307 repeats the request
    assert fake_cpo.state["tokens"][0]["body"] == token


def test_a_partner_that_redirects_every_call_elsewhere_gets_nothing_there(partner, fake_cpo):
    """The same switch towards another origin: refused before anything is sent there."""
    elsewhere = start_fake_cpo()
    try:
        elsewhere.cpo.accepted_tokens.add(partner.outgoing_token)
        fake_cpo.accepted_tokens.add(partner.outgoing_token)
        fake_cpo.misbehave["redirect_every_call"] = elsewhere.cpo.base_url

        failure = failure_of(
            lambda: OcpiClient(partner).put(fake_cpo.url(f"{TOKENS_PATH}/BE/VLT/0102030405"), {"uid": "0102030405"})
        )

        assert failure.reason == "redirect to another origin refused"
        assert elsewhere.cpo.received == [] and "tokens" not in elsewhere.cpo.state
    finally:
        elsewhere.stop()


def test_a_redirect_within_the_bound_is_followed(partner, server, settings):
    settings(OCPI_MAX_REDIRECTS=3)
    server.routes["/a"] = redirect("/b", 307)
    server.routes["/b"] = redirect("/c", 308)
    server.routes["/c"] = redirect("/versions", 301)
    server.routes["/versions"] = ocpi([{"version": "2.2.1", "url": server.url("/2.2.1")}])
    assert OcpiClient(partner).get(server.url("/a")).data[0]["version"] == "2.2.1"
    assert server.paths_seen() == ["/a", "/b", "/c", "/versions"]


def test_redirect_loops_stop(partner, server, settings):
    settings(OCPI_MAX_REDIRECTS=3)
    server.routes["/loop"] = redirect("/loop")
    assert failure_of(lambda: OcpiClient(partner).get(server.url("/loop"))).reason == "too many redirects"
    assert server.paths_seen() == ["/loop"] * 4


# --- where the connection goes ------------------------------------------------------------------------------------


def test_the_connection_goes_to_the_checked_address(partner, server, settings, monkeypatch):
    """partner.test exists only in our stand-in name server, asked once: reaching the server proves the
    connection used the checked address, not a second lookup (which could answer differently: DNS rebinding)."""
    lookups: list[str] = []

    def name_server(host: str, port: int, timeout: float) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(safe_urls, "resolve", name_server)
    settings(OCPI_ALLOWED_PRIVATE_HOSTS=["partner.test"])
    server.routes["/echo"] = echo_request()

    answer = OcpiClient(partner).get(f"http://partner.test:{server.port}/echo").data

    assert answer["host"] == f"partner.test:{server.port}"
    assert lookups == ["partner.test"]


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> TlsFiles:  # type: ignore[no-untyped-def]
    # Not skipped: the TLS checks are part of the SSRF defence. .ci/run installs openssl where it is missing.
    assert shutil.which("openssl"), "the TLS tests need the openssl command line tool (apt-get install openssl)"
    return make_tls_files(tmp_path_factory.mktemp("tls"), "partner.test")


def test_tls_to_the_pinned_address_is_verified_against_the_host_name(partner, tls_files, settings, monkeypatch):
    """Connecting to the checked address must not weaken TLS: the certificate is checked for the name."""
    monkeypatch.setattr(safe_urls, "resolve", lambda host, port, timeout: ["127.0.0.1"])
    monkeypatch.setattr(transport, "ca_bundle_path", lambda: str(tls_files.ca))
    settings(OCPI_REQUIRE_HTTPS=True, OCPI_ALLOWED_PRIVATE_HOSTS=["partner.test", "127.0.0.1"])
    running = start_scripted(tls_files)
    try:
        port = running.scripted.port
        running.scripted.routes["/echo"] = echo_request()

        assert OcpiClient(partner).get(f"https://partner.test:{port}/echo").data["host"] == f"partner.test:{port}"
        # The same server by its address: the certificate names partner.test, not 127.0.0.1.
        by_address = failure_of(lambda: OcpiClient(partner).get(f"https://127.0.0.1:{port}/echo"))
        assert by_address.reason == "TLS handshake failed"
        # And a certificate from a CA we do not trust is refused.
        monkeypatch.setattr(transport, "ca_bundle_path", lambda: None)
        untrusted = failure_of(lambda: OcpiClient(partner).get(f"https://partner.test:{port}/echo"))
        assert untrusted.reason == "TLS handshake failed"
    finally:
        running.stop()


# --- deadlines --------------------------------------------------------------------------------------------------


def test_a_trickling_server_meets_the_call_deadline(partner, server, settings):
    """One byte every 50 ms never trips the 5 s read timeout, and the whole answer would take 20 s: the call
    deadline ends it."""
    settings(OCPI_READ_TIMEOUT=5.0, OCPI_CALL_DEADLINE=0.5)
    server.routes["/slow"] = drip(400, 0.05)
    started = time.monotonic()
    failure = failure_of(lambda: OcpiClient(partner).get(server.url("/slow")))
    assert failure.reason == "timed out"
    assert time.monotonic() - started < 5  # far below the 20 s the server would take


def test_a_server_that_never_answers_tls_meets_the_deadline(partner, settings):
    settings(OCPI_REQUIRE_HTTPS=True, OCPI_CONNECT_TIMEOUT=5.0, OCPI_READ_TIMEOUT=5.0, OCPI_CALL_DEADLINE=0.5)
    tarpit = Tarpit()
    try:
        started = time.monotonic()
        failure = failure_of(lambda: OcpiClient(partner).get(tarpit.url("/ocpi/versions")))
        assert failure.reason == "timed out"
        assert time.monotonic() - started < 5
    finally:
        tarpit.stop()


def test_a_slow_answer_within_the_limits_is_fine(partner, server, settings):
    settings(OCPI_READ_TIMEOUT=2.0, OCPI_CALL_DEADLINE=3.0)
    server.routes["/versions"] = delayed(0.2, ocpi([{"version": "2.2.1", "url": server.url("/2.2.1")}]))
    assert OcpiClient(partner).get(server.url("/versions")).data[0]["version"] == "2.2.1"


def test_an_oversized_answer_is_refused(partner, server, settings):
    settings(OCPI_MAX_RESPONSE_BYTES=1000)
    server.routes["/big"] = ocpi(["x" * 5000])
    assert failure_of(lambda: OcpiClient(partner).get(server.url("/big"))).reason == "answer too large"


# --- errors that do not echo --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        (ocpi(None, status_code=3000, http_status=500, status_message=SECRET), "HTTP 500 from partner"),
        (raw(502, f"<html>upstream {SECRET}</html>".encode()), "HTTP 502 from partner"),
        (raw(200, f"<html>admin console {SECRET}</html>".encode()), "not an OCPI answer"),
        (ocpi(None, status_code=2001, status_message=SECRET), "OCPI status 2001 from partner"),
        (raw(200, json.dumps([SECRET]).encode(), "application/json"), "not an OCPI answer"),
    ],
)
def test_errors_say_what_kind_of_failure_and_log_the_rest(partner, server, caplog, route, reason):
    server.routes["/ocpi/versions"] = route
    with caplog.at_level(logging.WARNING, logger="app.roaming.ocpi.client"):
        failure = failure_of(lambda: OcpiClient(partner).get(server.url("/ocpi/versions")))
    assert failure.reason == reason
    assert str(failure) == f"GET {server.url('/ocpi/versions')}: {reason}"
    assert SECRET in caplog.text  # the operator can still see what happened


def test_a_closed_port_says_could_not_connect_and_no_more(partner):
    failure = failure_of(lambda: OcpiClient(partner).get("http://127.0.0.1:9/ocpi/versions"))
    assert failure.reason == "could not connect"
    assert "Errno" not in str(failure) and "refused" not in str(failure).lower()
