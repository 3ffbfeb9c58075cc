"""Where partners reach us (issue 13, item 3): every URL we hand a partner is built on one setting (OCPI_BASE_URL,
else PUBLIC_BASE_URL), and a command is refused, with nothing sent or recorded, when the CPO could never post
its result back: no base URL, an invalid OCPI_BASE_URL, or a loopback address outside development and tests."""

from __future__ import annotations

import pytest

from app.cards.models import CardStatus
from app.extensions import db
from app.public_urls import (
    PublicUrlNotConfiguredError,
    PublicUrlUnreachableError,
    is_loopback_url,
    partner_reachable_ocpi_base_url,
)
from app.roaming.models import Command
from app.roaming.send.commands import CommandError, send_command
from tests.roaming.test_token_push import connect
from tests.roaming.token_fixtures import card_in

OCPI_HOST = "https://ocpi.emsp.example.com"


@pytest.fixture
def in_production(app, monkeypatch):  # type: ignore[no-untyped-def]
    """The application as production runs it, with a base URL set per test."""
    monkeypatch.setitem(app.config, "APP_ENV", "production")
    monkeypatch.setitem(app.config, "OCPI_BASE_URL", None)
    return app


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:5000",
        "https://LOCALHOST.",
        "http://app.localhost",
        "http://127.0.0.1:5000",
        "http://127.1.2.3",
        "http://[::1]:5000",
        "http://[::ffff:127.0.0.1]",
        "http://0.0.0.0:5000",
    ],
)
def test_loopback_addresses_are_recognised(url):
    assert is_loopback_url(url)


@pytest.mark.parametrize("url", ["https://emsp.example.com", "https://10.0.0.5", "https://localhost.example.com"])
def test_other_addresses_are_not_loopback(url):
    assert not is_loopback_url(url)


@pytest.mark.parametrize("base", ["http://localhost:5000", "https://127.0.0.1", "http://[::1]:8000"])
def test_a_command_is_refused_when_our_base_url_is_loopback_in_production(
    in_production, monkeypatch, partner, fake_cpo, db_session, base
):
    monkeypatch.setitem(in_production.config, "PUBLIC_BASE_URL", base)
    connect(partner, fake_cpo)
    with pytest.raises(CommandError, match="could not post the result back") as refused:
        send_command(partner, "STOP_SESSION", {"session_id": "101"})
    assert "OCPI_BASE_URL" in str(refused.value)
    assert db.session.query(Command).count() == 0 and not fake_cpo.received


def test_the_cli_refuses_it_with_words_and_records_nothing(in_production, monkeypatch, partner, fake_cpo, db_session):
    monkeypatch.setitem(in_production.config, "PUBLIC_BASE_URL", "http://localhost:5000")
    connect(partner, fake_cpo)
    card = card_in(CardStatus.ACTIVE)
    result = in_production.test_cli_runner().invoke(
        args=["roaming", "send-command", "NL/TCP", "START_SESSION", "--card", card.uid, "--location", "LOC1"]
    )
    assert result.exit_code == 1 and "could not post the result back" in result.output
    assert "localhost:5000" in result.output and "OCPI_BASE_URL" in result.output
    assert db.session.query(Command).count() == 0 and not fake_cpo.received


@pytest.mark.parametrize(
    ("public", "ocpi"),
    [(None, None), ("", None), ("https://emsp.example.com", "ocpi.emsp.example.com")],
    ids=["nothing configured", "empty", "OCPI_BASE_URL without scheme"],
)
def test_a_command_is_refused_without_a_valid_base_url(app, monkeypatch, partner, fake_cpo, db_session, public, ocpi):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", public)
    monkeypatch.setitem(app.config, "OCPI_BASE_URL", ocpi)
    connect(partner, fake_cpo)
    with pytest.raises(CommandError, match="could not post the result back"):
        send_command(partner, "STOP_SESSION", {"session_id": "101"})
    assert db.session.query(Command).count() == 0 and not fake_cpo.received


def test_ocpi_base_url_makes_commands_possible_beside_a_loopback_portal(in_production, monkeypatch, partner, fake_cpo):
    monkeypatch.setitem(in_production.config, "PUBLIC_BASE_URL", "http://localhost:5000")
    monkeypatch.setitem(in_production.config, "OCPI_BASE_URL", OCPI_HOST + "/")
    connect(partner, fake_cpo)
    command = send_command(partner, "STOP_SESSION", {"session_id": "101"})
    sent = fake_cpo.state["commands"][0]["body"]["response_url"]
    assert sent == f"{OCPI_HOST}/ocpi/2.2.1/commands/STOP_SESSION/{command.uid}"


def test_loopback_is_fine_in_development_and_tests(app, monkeypatch, db_session):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    for environment in ("development", "test"):
        monkeypatch.setitem(app.config, "APP_ENV", environment)
        assert partner_reachable_ocpi_base_url() == "http://127.0.0.1:5000"
    monkeypatch.setitem(app.config, "APP_ENV", "production")
    with pytest.raises(PublicUrlUnreachableError):
        partner_reachable_ocpi_base_url()
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", None)
    with pytest.raises(PublicUrlNotConfiguredError):
        partner_reachable_ocpi_base_url()


def test_every_url_we_hand_a_partner_is_on_the_ocpi_base_url(app, monkeypatch, ocpi, partner, fake_cpo):
    """Credentials ``url``, versions, endpoints, a command's response_url and the next page's ``Link`` of our
    Tokens Sender: all on OCPI_BASE_URL when it differs from the portal's PUBLIC_BASE_URL."""
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://portal.example.com")
    monkeypatch.setitem(app.config, "OCPI_BASE_URL", OCPI_HOST)
    card_in(CardStatus.ACTIVE)
    card_in(CardStatus.ACTIVE)
    handed_out = [ocpi.get("/ocpi/2.2.1/credentials").get_json()["data"]["url"]]
    handed_out += [version["url"] for version in ocpi.get("/ocpi/versions").get_json()["data"]]
    handed_out += [endpoint["url"] for endpoint in ocpi.get("/ocpi/2.2.1").get_json()["data"]["endpoints"]]
    link = ocpi.get("/ocpi/2.2.1/tokens?limit=1").headers["Link"]
    handed_out.append(link[1 : link.index(">")])
    connect(partner, fake_cpo)
    handed_out.append(send_command(partner, "STOP_SESSION", {"session_id": "101"}).request["response_url"])
    assert len(handed_out) > 5
    assert all(url.startswith(OCPI_HOST + "/ocpi/") for url in handed_out), handed_out
