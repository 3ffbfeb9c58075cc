"""A roaming partner over its lifetime, end to end: ``flask roaming register / suspend / resume / unregister /
partner-token / partner-remove`` against the fake CPO over real HTTP, and the CPO calling our OCPI door (Flask
test client) in each status."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.audit.services import entries_for
from app.cards import services as card_services
from app.cards.models import BlockReason, CardStatus
from app.charging.models import Authorization, Cdr, ChargingSession
from app.extensions import db
from app.roaming.models import (
    DeliveryStatus,
    Location,
    Partner,
    PartnerParty,
    PartnerStatus,
    PartyConflict,
    TokenDelivery,
)
from app.roaming.ocpi.auth import hash_token
from app.roaming.partners import callers, lifecycle
from app.roaming.partners.services import PartnerError, add_partner
from app.roaming.partners.states import Move, check, check_may_call
from app.roaming.places import visible_locations_filter, works_with_our_cards_filter
from app.roaming.receive.pull import PullError, pull
from app.roaming.send.token_push import enqueue_token_deliveries, run_push
from app.roaming.send.whitelist import export_whitelist, partners_for_file_whitelist
from app.timestamps import ocpi_timestamp
from tests.factories import one_connector_location
from tests.roaming.conftest import OcpiTestClient, add_registered_hub
from tests.roaming.fake_cpo.handshake import cpo_credentials, versions_url
from tests.roaming.fake_cpo.receiver import TOKENS_PATH
from tests.roaming.token_fixtures import STAFF, card_in, example, our_cdr_token

BASE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
LOCATION_URL = "/ocpi/2.2.1/locations/NL/TCP/LOC-EST"
SESSION_URL = "/ocpi/2.2.1/sessions/NL/TCP/S-1"
CREDENTIALS_PATH = "/ocpi/cpo/2.2.1/credentials"


def _cli(app: Flask, *args: str):  # type: ignore[no-untyped-def]
    return app.test_cli_runner().invoke(args=["roaming", *args])


def _connected(app: Flask, fake_cpo) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """The fake CPO (NL/TCP) added and registered through the real handshake; returns its id and the token it
    calls us with (our token B)."""
    added = _cli(
        app,
        "partner-add",
        "--name",
        "Fake CPO",
        "--country-code",
        "NL",
        "--party-id",
        "TCP",
        "--role",
        "CPO",
        "--token",
        "our-token-a-for-them",
        "--versions-url",
        versions_url(fake_cpo),
        "--their-token",
        fake_cpo.token_a_for_emsp,
    )
    assert added.exit_code == 0, added.output
    registered = _cli(app, "register", "Fake CPO")
    assert registered.exit_code == 0, registered.output
    partner = _reload()
    return partner.id, fake_cpo.emsp_credentials["token"]


def _reload(name: str = "Fake CPO") -> Partner:
    db.session.expire_all()
    return db.session.scalars(select(Partner).filter_by(name=name)).one()


def _session(card, session_id: str = "S-1") -> dict[str, Any]:  # type: ignore[no-untyped-def]
    session = example("session_example_1_simple_start.json")
    session.update(country_code="NL", party_id="TCP", id=session_id, cdr_token=our_cdr_token(card))
    return session


def _cdr(card, session_id: str = "S-1") -> dict[str, Any]:  # type: ignore[no-untyped-def]
    cdr = example("cdr_example.json")
    cdr.update(country_code="NL", party_id="TCP", id="CDR-1", session_id=session_id, cdr_token=our_cdr_token(card))
    return cdr


def _actions(partner_id: int) -> list[tuple[str, str, str | None]]:
    """The partner's audit trail, oldest first: (action, actor, reason)."""
    entries = reversed(entries_for("roaming_partner", partner_id))
    return [(entry.action, entry.actor_label, entry.reason) for entry in entries]


@pytest.fixture
def partner_cache(app: Flask) -> Iterator[None]:
    """The per-process partner cache switched on, as in production: a change must still take effect at once."""
    app.config["OCPI_PARTNER_CACHE_SECONDS"] = 60
    callers._partner_cache.clear()
    callers._parties_cache.clear()
    yield
    app.config["OCPI_PARTNER_CACHE_SECONDS"] = 0
    callers._partner_cache.clear()
    callers._parties_cache.clear()


# --- suspend and resume -------------------------------------------------------------------------------------------


def test_a_suspended_partner_refuses_our_cards_but_still_delivers_what_is_owed(app, client, fake_cpo):
    active, other = card_in(CardStatus.ACTIVE), card_in(CardStatus.ACTIVE)  # issued before the connection
    for card in (active, other):
        card.last_updated = BASE  # unchanged since long before: an incremental pull would skip them
    db.session.commit()
    partner_id, token_b = _connected(app, fake_cpo)
    cpo = OcpiTestClient(client, token=token_b)
    assert cpo.put(LOCATION_URL, one_connector_location("T1")).status_code in (200, 201)
    since = ocpi_timestamp(BASE + dt.timedelta(hours=1))
    assert cpo.get(f"/ocpi/2.2.1/tokens?date_from={since}").get_json()["data"] == []

    suspended = _cli(app, "suspend", "Fake CPO", "--reason", "unpaid roaming invoices")
    assert suspended.exit_code == 0, suspended.output
    partner = _reload()
    assert partner.status == PartnerStatus.SUSPENDED
    assert (partner.status_changed_by, partner.status_reason) == ("cli", "unpaid roaming invoices")
    assert partner.tokens_restated_at == partner.status_changed_at
    assert "suspended since" in _cli(app, "partners").output

    # Real-time authorization: not allowed, with a text for the driver; logged with why.
    answer = cpo.post(f"/ocpi/2.2.1/tokens/{active.uid}/authorize")
    assert answer.status_code == 200, answer.get_json()
    info = answer.get_json()["data"]
    assert info["allowed"] == "NOT_ALLOWED" and info["info"]["text"]
    logged = db.session.scalars(select(Authorization).filter_by(card_id=active.id)).one()
    assert logged.allowed == "NOT_ALLOWED" and "suspended" in logged.reason

    # Their next incremental pull of our tokens: every token again, invalid, so their cache stops authorizing.
    tokens = cpo.get(f"/ocpi/2.2.1/tokens?date_from={since}").get_json()["data"]
    assert {token["uid"] for token in tokens} == {active.uid, other.uid}
    assert all(token["valid"] is False for token in tokens)
    assert {token["last_updated"] for token in tokens} == {ocpi_timestamp(partner.tokens_restated_at)}

    # Money that already happened still reaches us.
    assert cpo.put(SESSION_URL, _session(active)).status_code == 201
    assert cpo.post("/ocpi/2.2.1/cdrs", _cdr(active)).status_code == 201
    assert db.session.scalars(select(Cdr.account_id)).all() == [active.account_id]
    # Their objects are kept as they were; new ones wait for the resumption.
    refused = cpo.put(LOCATION_URL, {**one_connector_location("T1"), "name": "Renamed"})
    assert refused.status_code == 403
    assert refused.get_json()["status_code"] == 2000 and "suspended" in refused.get_json()["status_message"]
    assert db.session.scalars(select(Location.name).filter_by(ocpi_id="LOC-EST")).one() is None

    # Nothing is pushed (the block of a card waits), pulled or commanded.
    card_services.block_card(other, BlockReason.LOST, STAFF)
    db.session.commit()
    assert run_push()["delivered"] == 0 and fake_cpo.requests_to(TOKENS_PATH) == []
    for what in ("pulls", "commands"):
        with pytest.raises(PartnerError, match=f"Fake CPO is suspended since .*: no {what}"):
            check_may_call(_reload(), what)
    with pytest.raises(PullError, match="suspended"):
        pull(_reload(), "locations")
    assert fake_cpo.requests_to("/ocpi/cpo/2.2.1/locations") == []

    resumed = _cli(app, "resume", "Fake CPO", "--reason", "paid")
    assert resumed.exit_code == 0, resumed.output
    partner = _reload()
    assert partner.status == PartnerStatus.REGISTERED and partner.tokens_restated_at == partner.status_changed_at
    check_may_call(partner, "pulls")
    assert cpo.post(f"/ocpi/2.2.1/tokens/{active.uid}/authorize").get_json()["data"]["allowed"] == "ALLOWED"
    # The block made while suspended goes out now, and their next pull sets every token right again.
    assert run_push()["delivered"] == 1
    [pushed] = fake_cpo.requests_to(TOKENS_PATH)
    assert pushed.body["uid"] == other.uid and pushed.body["valid"] is False
    tokens = {token["uid"]: token for token in cpo.get(f"/ocpi/2.2.1/tokens?date_from={since}").get_json()["data"]}
    assert tokens[active.uid]["valid"] is True and tokens[other.uid]["valid"] is False
    assert tokens[active.uid]["last_updated"] == ocpi_timestamp(partner.tokens_restated_at)
    assert cpo.put(LOCATION_URL, {**one_connector_location("T1"), "name": "Renamed"}).status_code == 200

    assert _actions(partner_id)[-2:] == [
        ("partner.suspended", "cli", "unpaid roaming invoices"),
        ("partner.resumed", "cli", "paid"),
    ]


def test_moves_the_status_does_not_allow_are_refused_and_change_nothing(app, client, fake_cpo):
    partner_id, _ = _connected(app, fake_cpo)
    before = _reload().status_changed_at
    refusals = [
        (("resume", "Fake CPO"), "is registered: cannot resume (not suspended)"),
        (("suspend", "Fake CPO", "--reason", "   "), "reason: required"),
        (("suspend", "Fake CPO", "--reason", "bad\x00reason"), "reason: no control characters"),
        (("suspend", "Fake CPO", "--reason", "x" * 501), "reason: at most 500 characters"),
        (("register", "Fake CPO"), "already registered; rotate the credentials with update-credentials"),
    ]
    for args, message in refusals:
        result = _cli(app, *args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    assert _reload().status == PartnerStatus.REGISTERED and _reload().status_changed_at == before

    assert _cli(app, "suspend", "Fake CPO", "--reason", "audit").exit_code == 0
    assert "already suspended" in _cli(app, "suspend", "Fake CPO", "--reason", "again").output
    assert "resume it, or unregister it first" in _cli(app, "register", "Fake CPO").output
    assert _cli(app, "unregister", "Fake CPO").exit_code == 0
    assert "register again (register --their-token) first" in _cli(app, "update-credentials", "Fake CPO").output
    assert [action for action, _, _ in _actions(partner_id)] == [
        "partner.added",
        "partner.registered",
        "partner.suspended",
        "partner.unregistered",
    ]
    with pytest.raises(PartnerError, match="is unregistered: cannot resume"):
        check(_reload(), Move.RESUME)


@pytest.mark.parametrize(
    ("status", "calls"),
    [
        (
            PartnerStatus.SUSPENDED,
            {
                ("GET", "/ocpi/versions"): 200,
                ("GET", "/ocpi/2.2.1/credentials"): 200,
                ("GET", "/ocpi/2.2.1/cdrs/0"): 404,  # let in: an unknown CDR
                ("GET", "/ocpi/2.2.1/sessions/NL/TCP/none"): 404,
                ("GET", "/ocpi/2.2.1/tokens"): 200,
                ("PUT", "/ocpi/2.2.1/locations/NL/TCP/L1"): 403,
                ("PUT", "/ocpi/2.2.1/tariffs/NL/TCP/T1"): 403,
                ("GET", "/ocpi/2.2.1/hubclientinfo/NL/ABC"): 403,
            },
        ),
        (
            PartnerStatus.PENDING,
            {("GET", "/ocpi/versions"): 200, ("GET", "/ocpi/2.2.1/cdrs/0"): 401, ("GET", "/ocpi/2.2.1/tokens"): 401},
        ),
        # Still holding a token hash, as a stale row or another process' cache would: refused all the same.
        (PartnerStatus.UNREGISTERED, {("GET", "/ocpi/versions"): 401, ("GET", "/ocpi/2.2.1/cdrs/0"): 401}),
        (PartnerStatus.REMOVED, {("GET", "/ocpi/versions"): 401, ("GET", "/ocpi/2.2.1/tokens"): 401}),
    ],
)
def test_what_a_partner_may_call_in_each_status(ocpi, partner, status, calls):
    partner.status = status
    db.session.flush()
    for (method, path), expected in calls.items():
        response = ocpi.call(method, path, json={} if method == "PUT" else None)
        assert response.status_code == expected, (method, path, response.get_json())
        if expected == 403:
            assert response.get_json()["status_code"] == 2000
            assert "Connection suspended by Voltaro BV" in response.get_json()["status_message"]


def test_a_suspended_partner_may_rotate_and_then_unregister(app, client, fake_cpo, partner_cache):
    """They registered with us; we suspend them; they rotate their token (it must stay replaceable) and later
    unregister themselves: each old token dies at once, even with the partner cache on."""
    add_partner(name="Fake CPO", country_code="NL", party_id="TCP", role="CPO", token="token-a")
    fake_cpo.accepted_tokens.add("their-b")
    registered = OcpiTestClient(client, token="token-a").post(
        "/ocpi/2.2.1/credentials", json=cpo_credentials(fake_cpo, "their-b")
    )
    token_c = registered.get_json()["data"]["token"]
    lifecycle.suspend(_reload(), actor=STAFF, reason="security review")
    db.session.commit()

    ours = OcpiTestClient(client, token=token_c)
    assert ours.get("/ocpi/2.2.1/cdrs/0").status_code == 404  # cached from here on
    fake_cpo.accepted_tokens.add("their-b2")
    rotated = ours.put("/ocpi/2.2.1/credentials", json=cpo_credentials(fake_cpo, "their-b2"))
    assert rotated.status_code == 200, rotated.get_json()
    token_c2 = rotated.get_json()["data"]["token"]
    assert ours.get("/ocpi/2.2.1/cdrs/0").status_code == 401
    partner = _reload()
    assert partner.status == PartnerStatus.SUSPENDED and partner.outgoing_token == "their-b2"
    assert partner.status_reason == "security review"  # a rotation is no change of status
    again = OcpiTestClient(client, token=token_c2)
    assert again.get("/ocpi/2.2.1/cdrs/0").status_code == 404
    assert again.put(LOCATION_URL, one_connector_location("T1")).status_code == 403

    assert again.delete("/ocpi/2.2.1/credentials").status_code == 200
    assert again.get("/ocpi/2.2.1/cdrs/0").status_code == 401
    partner = _reload()
    assert partner.status == PartnerStatus.UNREGISTERED
    assert (partner.status_changed_by, partner.status_reason) == (
        "partner NL/TCP",
        "they unregistered (DELETE credentials)",
    )
    assert [action for action, _, _ in _actions(partner.id)][-3:] == [
        "partner.suspended",
        "partner.credentials_rotated",
        "partner.unregistered",
    ]


def test_a_hub_may_carry_a_suspended_partners_party_until_it_resumes(app, client, fake_cpo):
    add_partner(name="Fake CPO", country_code="NL", party_id="TCP", role="CPO", token="token-a")
    fake_cpo.accepted_tokens.add("their-b")
    registered = OcpiTestClient(client, token="token-a").post(
        "/ocpi/2.2.1/credentials", json=cpo_credentials(fake_cpo, "their-b")
    )
    ours = OcpiTestClient(client, token=registered.get_json()["data"]["token"])
    add_registered_hub("hub-token")
    hub = OcpiTestClient(client, token="hub-token")
    info = {"country_code": "NL", "party_id": "TCP", "role": "CPO", "status": "CONNECTED"}
    info["last_updated"] = "2026-06-01T10:00:00Z"
    assert hub.put("/ocpi/2.2.1/hubclientinfo/NL/TCP", info).status_code == 409  # held by the direct CPO

    lifecycle.suspend(_reload(), actor=STAFF, reason="moving to the hub")
    db.session.commit()
    assert hub.put("/ocpi/2.2.1/hubclientinfo/NL/TCP", info).status_code == 201  # a suspended partner holds none
    # Rotating while suspended takes nothing back from the hub.
    fake_cpo.accepted_tokens.add("their-b2")
    assert ours.put("/ocpi/2.2.1/credentials", json=cpo_credentials(fake_cpo, "their-b2")).status_code == 200

    def hub_parties() -> list[str]:
        db.session.expire_all()
        rows = db.session.scalars(select(PartnerParty).join(Partner).where(Partner.is_hub.is_(True)))
        return sorted(f"{row.country_code}/{row.party_id}" for row in rows)

    assert hub_parties() == ["NL/TCP"]
    assert db.session.scalars(select(PartyConflict.outcome).filter_by(outcome="hub_claim_ended")).all() == []

    lifecycle.resume(_reload(), actor=STAFF, reason="stays direct")
    db.session.commit()
    assert hub_parties() == []
    [ended] = db.session.scalars(select(PartyConflict).filter_by(outcome="hub_claim_ended")).all()
    assert (ended.party_id, ended.via) == ("TCP", "partner_resume")


# --- rotate -------------------------------------------------------------------------------------------------------


def test_we_rotate_after_they_rotated_and_every_old_token_dies_at_once(app, client, fake_cpo, partner_cache):
    partner_id, token_b = _connected(app, fake_cpo)
    first = OcpiTestClient(client, token=token_b)
    assert first.get("/ocpi/2.2.1/cdrs/0").status_code == 404  # warms this process's cache

    # They rotate at our side: a new token for us to call them with, a new one of ours for them.
    fake_cpo.accepted_tokens.discard(fake_cpo.state["token_c"])
    fake_cpo.accepted_tokens.add("cpo-token-c-rotated")
    rotated = first.put("/ocpi/2.2.1/credentials", json=cpo_credentials(fake_cpo, "cpo-token-c-rotated"))
    assert rotated.status_code == 200, rotated.get_json()
    token_b2 = rotated.get_json()["data"]["token"]
    fake_cpo.emsp_credentials["token"] = token_b2  # what they keep of ours
    assert first.get("/ocpi/2.2.1/cdrs/0").status_code == 401
    second = OcpiTestClient(client, token=token_b2)
    assert second.get("/ocpi/2.2.1/cdrs/0").status_code == 404

    # Then we rotate: with the token of their last PUT.
    result = _cli(app, "update-credentials", "Fake CPO", "--reason", "yearly rotation")
    assert result.exit_code == 0, result.output
    put = fake_cpo.requests_to(CREDENTIALS_PATH, "PUT")[-1]
    assert put.headers["Authorization"] == "Token " + base64.b64encode(b"cpo-token-c-rotated").decode()
    token_b3 = fake_cpo.emsp_credentials["token"]
    assert second.get("/ocpi/2.2.1/cdrs/0").status_code == 401
    assert OcpiTestClient(client, token=token_b3).get("/ocpi/2.2.1/cdrs/0").status_code == 404
    partner = _reload()
    assert partner.outgoing_token == fake_cpo.state["token_c"] and partner.status == PartnerStatus.REGISTERED
    assert [(action, actor) for action, actor, _ in _actions(partner_id)][-2:] == [
        ("partner.credentials_rotated", "partner NL/TCP"),
        ("partner.credentials_rotated", "cli"),
    ]


# --- unregister and register again --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["they", "we"])
def test_register_again_after_the_credentials_ended(app, client, fake_cpo, who):
    partner_id, token_b = _connected(app, fake_cpo)
    cpo = OcpiTestClient(client, token=token_b)
    assert cpo.put(LOCATION_URL, one_connector_location("T1")).status_code == 201
    if who == "they":
        assert cpo.delete("/ocpi/2.2.1/credentials").status_code == 200
        fake_cpo.emsp_credentials = None  # and they forgot ours at their side
    else:
        assert _cli(app, "unregister", "Fake CPO").exit_code == 0
    assert cpo.get("/ocpi/versions").status_code == 401
    partner = _reload()
    assert partner.status == PartnerStatus.UNREGISTERED
    assert partner.status_changed_by == ("partner NL/TCP" if who == "they" else "cli")

    # Their old token A was used up: they hand us a new one, and we register again, in place.
    missing = _cli(app, "register", "Fake CPO")
    assert missing.exit_code != 0 and "--their-token" in missing.output
    fake_cpo.accepted_tokens.add("cpo-token-a-2")
    again = _cli(app, "register", "Fake CPO", "--their-token", "cpo-token-a-2", "--reason", "new contract")
    assert again.exit_code == 0, again.output
    post = fake_cpo.requests_to(CREDENTIALS_PATH, "POST")[-1]
    assert post.headers["Authorization"] == "Token " + base64.b64encode(b"cpo-token-a-2").decode()

    partner = _reload()
    assert partner.id == partner_id and partner.status == PartnerStatus.REGISTERED
    assert partner.outgoing_token == fake_cpo.state["token_c"]
    assert [(p.country_code, p.party_id) for p in partner.parties] == [("NL", "TCP")]
    assert db.session.scalars(select(Location.partner_id).filter_by(ocpi_id="LOC-EST")).one() == partner_id
    new_b = fake_cpo.emsp_credentials["token"]
    assert OcpiTestClient(client, token=new_b).get("/ocpi/2.2.1/cdrs/0").status_code == 404
    assert _actions(partner_id)[-1] == ("partner.registered", "cli", "new contract")


def test_register_again_with_a_moved_versions_url(app, client, fake_cpo):
    _connected(app, fake_cpo)
    assert _cli(app, "unregister", "Fake CPO").exit_code == 0
    bad = _cli(app, "register", "Fake CPO", "--their-token", "t", "--versions-url", "ftp://x")
    assert bad.exit_code != 0 and "versions URL: not an http(s) URL" in bad.output
    assert _reload().outgoing_token is None  # refused before anything changed
    # They now announce their version details URL directly (a versions URL that is the details URL is accepted).
    moved = fake_cpo.url("/ocpi/cpo/2.2.1")
    fake_cpo.accepted_tokens.add("cpo-token-a-3")
    calls_before = len(fake_cpo.received)
    again = _cli(app, "register", "Fake CPO", "--their-token", "cpo-token-a-3", "--versions-url", moved)
    assert again.exit_code == 0, again.output
    assert [(r.method, r.path) for r in fake_cpo.received[calls_before:]] == [
        ("GET", "/ocpi/cpo/2.2.1"),
        ("POST", CREDENTIALS_PATH),
    ]
    assert _reload().status == PartnerStatus.REGISTERED


@pytest.mark.parametrize("before", [["suspend", "--reason", "paused"], ["unregister"], ["partner-remove"]])
def test_a_new_token_a_lets_them_register_again_from_any_status(app, client, fake_cpo, before):
    partner_id, token_b = _connected(app, fake_cpo)
    assert _cli(app, before[0], "Fake CPO", *before[1:]).exit_code == 0
    reset = _cli(app, "partner-token", "Fake CPO", "--token", "fresh-token-a", "--reason", "come back")
    assert reset.exit_code == 0, reset.output
    partner = _reload()
    assert partner.status == PartnerStatus.PENDING and partner.incoming_token_hash == hash_token("fresh-token-a")
    assert OcpiTestClient(client, token=token_b).get("/ocpi/versions").status_code == 401

    fake_cpo.accepted_tokens.add("their-new-b")
    response = OcpiTestClient(client, token="fresh-token-a").post(
        "/ocpi/2.2.1/credentials", json=cpo_credentials(fake_cpo, "their-new-b")
    )
    assert response.status_code == 200, response.get_json()
    assert _reload().status == PartnerStatus.REGISTERED
    assert [action for action, _, _ in _actions(partner_id)][-2:] == ["partner.token_a_issued", "partner.registered"]


# --- remove -------------------------------------------------------------------------------------------------------


def test_remove_waits_for_the_money_then_ends_the_connection_for_good(app, client, fake_cpo):
    partner_id, token_b = _connected(app, fake_cpo)
    cpo = OcpiTestClient(client, token=token_b)
    card = card_in(CardStatus.ACTIVE)
    db.session.commit()
    assert cpo.put(LOCATION_URL, one_connector_location("T1")).status_code == 201
    assert cpo.put(SESSION_URL, _session(card)).status_code == 201
    card_services.block_card(card, BlockReason.LOST, STAFF)
    queued = enqueue_token_deliveries()  # token changes waiting to be pushed to them
    db.session.commit()
    assert queued > 0

    waiting = _cli(app, "partner-remove", "Fake CPO")
    assert waiting.exit_code != 0
    assert "1 session(s) delivered by Fake CPO have no CDR yet" in waiting.output
    assert _reload().status == PartnerStatus.REGISTERED and not fake_cpo.requests_to(CREDENTIALS_PATH, "DELETE")

    assert cpo.post("/ocpi/2.2.1/cdrs", _cdr(card, session_id="s-1")).status_code == 201  # its CDR, any case
    removed = _cli(app, "partner-remove", "Fake CPO", "--reason", "left the market")
    assert removed.exit_code == 0, removed.output
    assert f"their side was told, {queued} pending token push(es) dropped" in removed.output
    assert fake_cpo.requests_to(CREDENTIALS_PATH, "DELETE")
    assert cpo.get("/ocpi/2.2.1/cdrs/0").status_code == 401

    partner = _reload()
    assert partner.status == PartnerStatus.REMOVED and partner.status_reason == "left the market"
    assert partner.incoming_token_hash is None and partner.outgoing_token is None
    assert db.session.scalars(select(TokenDelivery).filter_by(partner_id=partner_id)).all() == []
    assert run_push()["delivered"] == 0 and fake_cpo.requests_to(TOKENS_PATH) == []
    # Kept for the money owed, hidden from drivers.
    assert db.session.scalars(select(ChargingSession.partner_id)).all() == [partner_id]
    assert db.session.scalars(select(Cdr.partner_id)).all() == [partner_id]
    [location] = db.session.scalars(select(Location).filter_by(ocpi_id="LOC-EST")).all()
    assert location.partner_id == partner_id
    assert db.session.scalars(select(Location.id).where(visible_locations_filter())).all() == []
    assert "removed since" in _cli(app, "partners").output
    assert "already removed" in _cli(app, "partner-remove", "Fake CPO").output
    readd = _cli(
        app, "partner-add", "--name", "Back", "--country-code", "NL", "--party-id", "TCP", "--role", "CPO",
        "--token", "x-token",
    )  # fmt: skip
    assert readd.exit_code != 0 and "removed: hand it a new token A with partner-token" in readd.output
    assert _actions(partner_id)[-1][0] == "partner.removed"
    assert entries_for("roaming_partner", partner_id)[0].details == {
        "from": "registered",
        "to": "removed",
        "sessions_awaiting_cdr": 0,
        "told_them": True,
        "token_pushes_dropped": queued,
    }


def test_remove_with_force_when_their_side_cannot_be_told_or_money_is_open(app, client, fake_cpo):
    _, token_b = _connected(app, fake_cpo)
    card = card_in(CardStatus.ACTIVE)
    db.session.commit()
    assert OcpiTestClient(client, token=token_b).put(SESSION_URL, _session(card)).status_code == 201
    fake_cpo.misbehave["refuse_unregister"] = True
    assert "no CDR yet" in _cli(app, "partner-remove", "Fake CPO").output
    # Whatever was waiting: --force. Their side refused the DELETE: done here anyway, and said so.
    forced = _cli(app, "partner-remove", "Fake CPO", "--force")
    assert forced.exit_code == 0, forced.output
    assert "their side was not told" in forced.output and "1 session(s) without CDR" in forced.output
    assert _reload().status == PartnerStatus.REMOVED
    assert OcpiTestClient(client, token=token_b).get("/ocpi/versions").status_code == 401


# --- what drivers see ---------------------------------------------------------------------------------------------


def _partner(name: str, party: str, status: PartnerStatus, *, hub: bool = False) -> Partner:
    row = Partner(
        name=name,
        is_hub=hub,
        country_code=party[:2],
        party_id=party[3:],
        status=status,
        endpoints=[],
    )
    db.session.add(row)
    db.session.flush()
    return row


def _location(party: str, ocpi_id: str, partner: Partner | None) -> None:
    db.session.add(
        Location(
            partner_id=partner.id if partner else None,
            country_code=party[:2],
            party_id=party[3:],
            ocpi_id=ocpi_id,
            address="Stationsplein 1",
            city="Utrecht",
            country="NLD",
            latitude=Decimal("52.0894440"),
            longitude=Decimal("5.1102780"),
            data={},
            last_updated=BASE,
        )
    )


def test_which_locations_drivers_see_and_where_our_cards_work(db_session):
    direct = _partner("Direct", "NL/AAA", PartnerStatus.REGISTERED)
    paused = _partner("Paused", "NL/BBB", PartnerStatus.SUSPENDED)
    gone = _partner("Gone", "NL/CCC", PartnerStatus.REMOVED)
    hub = _partner("Hub", "DE/HUB", PartnerStatus.REGISTERED, hub=True)
    hub.parties.extend(
        [
            PartnerParty(country_code="NL", party_id="DDD", role="CPO", status="CONNECTED"),
            PartnerParty(country_code="NL", party_id="EEE", role="CPO", status="OFFLINE"),
        ]
    )
    pending_hub = _partner("Planned hub", "DE/PHB", PartnerStatus.PENDING, hub=True)
    pending_hub.parties.append(PartnerParty(country_code="NL", party_id="FFF", role="CPO", status="CONNECTED"))
    _location("NL/AAA", "A", direct)
    _location("NL/AAA", "A-FILE", None)  # imported from a file: nobody delivered it
    _location("NL/BBB", "B", paused)
    _location("NL/CCC", "C", gone)
    _location("NL/DDD", "D", hub)
    _location("NL/EEE", "E", hub)
    _location("NL/FFF", "F", pending_hub)
    db.session.flush()

    def ids(*conditions: Any) -> set[str]:
        return set(db.session.scalars(select(Location.ocpi_id).where(*conditions)))

    assert ids(visible_locations_filter()) == {"A", "A-FILE", "B", "D", "E", "F"}
    assert ids(works_with_our_cards_filter()) == {"A", "A-FILE", "D"}
    assert ids(visible_locations_filter(), works_with_our_cards_filter()) == {"A", "A-FILE", "D"}
    lifecycle.resume(paused, actor=STAFF)
    assert ids(works_with_our_cards_filter()) == {"A", "A-FILE", "B", "D"}


# --- whitelist files ----------------------------------------------------------------------------------------------


def test_a_suspended_partners_whitelist_file_lists_every_token_invalid(app, partner, tmp_path):
    card = card_in(CardStatus.ACTIVE)
    assert partners_for_file_whitelist() == [partner]  # no Tokens Receiver: files
    lifecycle.suspend(partner, actor=STAFF, reason="dispute")
    assert partners_for_file_whitelist() == [partner]
    written = export_whitelist(partner, tmp_path / "tokens.json")
    tokens = json.loads(written.json_path.read_text())
    assert [(token["uid"], token["valid"]) for token in tokens] == [(card.uid, False)]
    assert "false" in written.csv_path.read_text()
    lifecycle.unregister(partner, actor=STAFF, force=True)
    assert partners_for_file_whitelist() == []


def test_pending_token_pushes_wait_for_a_suspended_partner(app, partner, fake_cpo):
    """Deliveries already queued before the suspension are not pushed until it resumes, then in order."""
    partner.endpoints = [{"identifier": "tokens", "role": "RECEIVER", "url": fake_cpo.url(TOKENS_PATH)}]
    partner.registered_at = BASE
    partner.outgoing_token = fake_cpo.token_a_for_emsp
    card = card_in(CardStatus.ACTIVE)
    assert enqueue_token_deliveries() > 0
    lifecycle.suspend(partner, actor=STAFF, reason="dispute")
    db.session.commit()
    assert run_push()["delivered"] == 0 and fake_cpo.requests_to(TOKENS_PATH) == []
    pending = db.session.scalars(select(TokenDelivery).filter_by(partner_id=partner.id)).all()
    assert pending and {delivery.status for delivery in pending} == {DeliveryStatus.PENDING}
    lifecycle.resume(partner, actor=STAFF)
    db.session.commit()
    totals = run_push()
    assert totals["delivered"] == len(pending) and totals["pending"] == 0
    assert {recorded.body["uid"] for recorded in fake_cpo.requests_to(TOKENS_PATH)} == {card.uid}
