"""We register with a partner: ``flask roaming partner-add / partners / register / update-credentials /
unregister`` against the fake CPO over real HTTP. What we hand out is built on the one configured OCPI base URL
(here ``OUR_URL``); ``--our-url`` may only repeat it."""

from __future__ import annotations

import base64
import contextlib

import pytest

from app.extensions import db
from app.roaming.models import Partner, PartnerStatus
from app.roaming.ocpi.auth import hash_token
from app.roaming.ocpi.client import OcpiClient, OcpiClientError
from tests.roaming.conftest import OcpiTestClient
from tests.roaming.fake_cpo.handshake import module_url, versions_url

OUR_URL = "https://emsp.example.test"


@pytest.fixture(autouse=True)
def our_public_url(app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Partners reach us at OUR_URL: the one setting every URL we hand out is built on. (Through the test's
    own monkeypatch, so changes a test makes on top are undone in the right order.)"""
    monkeypatch.setitem(app.config, "OCPI_BASE_URL", OUR_URL)


def _run(app, *args: str):  # type: ignore[no-untyped-def]
    return app.test_cli_runner().invoke(args=["roaming", *args])


def _add(app, fake_cpo, *extra: str, name: str = "Fake CPO"):  # type: ignore[no-untyped-def]
    result = _run(
        app,
        "partner-add",
        "--name",
        name,
        "--country-code",
        fake_cpo.country_code,
        "--party-id",
        fake_cpo.party_id,
        "--role",
        "CPO",
        "--token",
        "our-token-a-for-them",
        "--versions-url",
        versions_url(fake_cpo),
        "--their-token",
        fake_cpo.token_a_for_emsp,
        *extra,
    )
    assert result.exit_code == 0, result.output
    return result


def _partner(name: str = "Fake CPO") -> Partner:
    db.session.expire_all()
    return db.session.scalar(db.select(Partner).filter_by(name=name))


def test_partner_add_stores_a_pending_partner_with_token_a_hashed(app, db_session):
    result = _run(
        app,
        "partner-add",
        "--name",
        "Hubject-ish",
        "--country-code",
        "de",
        "--party-id",
        "hbj",
        "--role",
        "hub",
        "--token",
        "secret-token-a",
    )
    assert result.exit_code == 0, result.output
    assert "added hub Hubject-ish (DE/HBJ)" in result.output
    partner = _partner("Hubject-ish")
    assert partner.is_hub and partner.status == PartnerStatus.PENDING
    assert (partner.country_code, partner.party_id) == ("DE", "HBJ")
    assert partner.incoming_token_hash == hash_token("secret-token-a")
    assert partner.outgoing_token is None and partner.send_base64_tokens

    listing = _run(app, "partners")
    assert listing.exit_code == 0
    assert "Hubject-ish" in listing.output and "HUB" in listing.output and "pending" in listing.output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--country-code", "NLD"], "country_code: must be 2 letters"),
        (["--country-code", "N1"], "country_code: must be 2 letters"),
        (["--party-id", "TOOLONG"], "party_id: must be 3 letters or digits"),
        (["--party-id", "T-P"], "party_id: must be 3 letters or digits"),
        (["--token", "with space"], "token: must be"),
        (["--versions-url", "not a url"], "versions_url"),
    ],
)
def test_partner_add_refuses_bad_input(app, db_session, options, message):
    args = {"--name": "Bad", "--country-code": "NL", "--party-id": "BAD", "--role": "CPO", "--token": "t-a"}
    args.update(dict(zip(options[::2], options[1::2], strict=True)))
    result = _run(app, "partner-add", *[part for pair in args.items() for part in pair])
    assert result.exit_code != 0
    assert message in result.output
    assert _partner("Bad") is None


def test_partner_add_refuses_duplicates(app, db_session, fake_cpo):
    _add(app, fake_cpo)
    same_name = _run(
        app,
        "partner-add",
        "--name",
        "Fake CPO",
        "--country-code",
        "DE",
        "--party-id",
        "XYZ",
        "--role",
        "CPO",
        "--token",
        "other-token",
    )
    assert same_name.exit_code != 0 and "already exists" in same_name.output
    same_party = _run(
        app,
        "partner-add",
        "--name",
        "Other",
        "--country-code",
        "nl",
        "--party-id",
        "tcp",
        "--role",
        "CPO",
        "--token",
        "other-token",
    )
    assert same_party.exit_code != 0 and "NL/TCP is already partner 'Fake CPO'" in same_party.output
    same_token = _run(
        app,
        "partner-add",
        "--name",
        "Other",
        "--country-code",
        "DE",
        "--party-id",
        "XYZ",
        "--role",
        "CPO",
        "--token",
        "our-token-a-for-them",
    )
    assert same_token.exit_code != 0 and "token is already in use" in same_token.output
    bad_role = _run(
        app,
        "partner-add",
        "--name",
        "Other",
        "--country-code",
        "DE",
        "--party-id",
        "XYZ",
        "--role",
        "EMSP",
        "--token",
        "x",
    )
    assert bad_role.exit_code != 0


def test_register_with_the_fake_cpo(app, client, db_session, fake_cpo):
    _add(app, fake_cpo)
    result = _run(app, "register", "Fake CPO")  # on the configured base URL
    assert result.exit_code == 0, result.output
    assert "registered with Fake CPO: OCPI 2.2.1, 7 endpoints" in result.output

    # They received our credentials: token B, our versions URL, our role.
    ours = fake_cpo.emsp_credentials
    assert ours["url"] == f"{OUR_URL}/ocpi/versions"
    assert ours["roles"] == [
        {"role": "EMSP", "party_id": "VLT", "country_code": "BE", "business_details": {"name": "Voltaro BV"}}
    ]
    token_b = ours["token"]

    partner = _partner()
    assert partner.status == PartnerStatus.REGISTERED and partner.registered_at is not None
    assert partner.outgoing_token == fake_cpo.state["token_c"]
    assert partner.incoming_token_hash == hash_token(token_b)
    assert partner.endpoint_url("tokens", "RECEIVER") == module_url(fake_cpo, "tokens")
    assert [(p.role, p.country_code, p.party_id) for p in partner.parties] == [("CPO", "NL", "TCP")]

    # Every handshake call used their token A, base64-encoded, and no routing headers.
    calls = fake_cpo.requests_to("/ocpi/cpo")
    assert [(c.method, c.path) for c in calls] == [
        ("GET", "/ocpi/cpo/versions"),
        ("GET", "/ocpi/cpo/2.2.1"),
        ("POST", "/ocpi/cpo/2.2.1/credentials"),
    ]
    expected = base64.b64encode(fake_cpo.token_a_for_emsp.encode()).decode()
    assert {c.headers["Authorization"] for c in calls} == {f"Token {expected}"}
    assert not any(name.lower().startswith("ocpi-") for c in calls for name in c.headers)

    # The CPO now calls us with token B; our token A for them is gone.
    assert OcpiTestClient(client, token=token_b).get("/ocpi/2.2.1").status_code == 200
    assert OcpiTestClient(client, token="our-token-a-for-them").get("/ocpi/versions").status_code == 401

    again = _run(app, "register", "Fake CPO", "--our-url", OUR_URL)
    assert again.exit_code != 0 and "already registered" in again.output


def test_raw_tokens_are_sent_unencoded_when_the_partner_wants_them(app, db_session, fake_cpo):
    _add(app, fake_cpo, "--raw-tokens")
    assert _run(app, "register", "Fake CPO", "--our-url", OUR_URL).exit_code == 0
    headers = {c.headers["Authorization"] for c in fake_cpo.requests_to("/ocpi/cpo")}
    assert headers == {f"Token {fake_cpo.token_a_for_emsp}"}
    partners = _run(app, "partners")
    assert "registered" in partners.output and "tokens raw" in partners.output


def test_functional_calls_carry_routing_headers(app, db_session, fake_cpo):
    _add(app, fake_cpo)
    assert _run(app, "register", "Fake CPO", "--our-url", OUR_URL).exit_code == 0
    partner = _partner()
    with contextlib.suppress(OcpiClientError):  # the locations Sender may or may not be installed in the fake
        OcpiClient(partner).get(partner.endpoint_url("locations", "SENDER"))
    call = fake_cpo.requests_to("/ocpi/cpo/2.2.1/locations")[-1]
    assert call.headers["Ocpi-From-Country-Code"] == "BE"
    assert call.headers["Ocpi-From-Party-Id"] == "VLT"
    assert call.headers["Ocpi-To-Country-Code"] == "NL"
    assert call.headers["Ocpi-To-Party-Id"] == "TCP"
    token_c = base64.b64encode(fake_cpo.state["token_c"].encode()).decode()
    assert call.headers["Authorization"] == f"Token {token_c}"


def test_update_credentials_rotates_both_tokens(app, client, db_session, fake_cpo):
    _add(app, fake_cpo)
    assert _run(app, "register", "Fake CPO", "--our-url", OUR_URL).exit_code == 0
    old_b, old_c = fake_cpo.emsp_credentials["token"], fake_cpo.state["token_c"]

    result = _run(app, "update-credentials", "Fake CPO", "--our-url", OUR_URL)
    assert result.exit_code == 0, result.output
    put = fake_cpo.requests_to("/ocpi/cpo/2.2.1/credentials", "PUT")[-1]
    assert put.headers["Authorization"] == f"Token {base64.b64encode(old_c.encode()).decode()}"
    new_b, new_c = fake_cpo.emsp_credentials["token"], fake_cpo.state["token_c"]
    assert new_b != old_b and new_c != old_c
    partner = _partner()
    assert partner.outgoing_token == new_c
    assert OcpiTestClient(client, token=old_b).get("/ocpi/versions").status_code == 401
    assert OcpiTestClient(client, token=new_b).get("/ocpi/versions").status_code == 200


def test_unregister_deletes_at_their_side_and_ends_the_connection(app, client, db_session, fake_cpo):
    _add(app, fake_cpo)
    assert _run(app, "register", "Fake CPO", "--our-url", OUR_URL).exit_code == 0
    token_b = fake_cpo.emsp_credentials["token"]
    partner_id = _partner().id

    result = _run(app, "unregister", str(partner_id), "--reason", "contract ended")  # by id this time
    assert result.exit_code == 0, result.output
    assert fake_cpo.requests_to("/ocpi/cpo/2.2.1/credentials", "DELETE")
    assert fake_cpo.emsp_credentials is None
    partner = _partner()
    assert partner.status == PartnerStatus.UNREGISTERED
    assert (partner.status_changed_by, partner.status_reason) == ("cli", "contract ended")
    assert partner.outgoing_token is None and partner.incoming_token_hash is None
    assert "unregistered since" in _run(app, "partners").output
    assert OcpiTestClient(client, token=token_b).get("/ocpi/versions").status_code == 401

    # A fresh token A lets them start over.
    reset = _run(app, "partner-token", str(partner_id), "--token", "second-token-a")
    assert reset.exit_code == 0, reset.output
    assert OcpiTestClient(client, token="second-token-a").get("/ocpi/versions").status_code == 200


def test_register_errors_are_clear_and_change_nothing(app, db_session, fake_cpo):
    _add(app, fake_cpo)

    fake_cpo.misbehave["versions"] = [{"version": "2.1.1", "url": fake_cpo.url("/ocpi/cpo/2.1.1")}]
    no_version = _run(app, "register", "Fake CPO", "--our-url", OUR_URL)
    assert no_version.exit_code != 0
    assert "Unsupported version" in no_version.output and "3002" in no_version.output
    del fake_cpo.misbehave["versions"]

    fake_cpo.misbehave["no_credentials_endpoint"] = True
    no_credentials = _run(app, "register", "Fake CPO", "--our-url", OUR_URL)
    assert no_credentials.exit_code != 0 and "offers no credentials endpoint" in no_credentials.output
    del fake_cpo.misbehave["no_credentials_endpoint"]

    fake_cpo.accepted_tokens.discard(fake_cpo.token_a_for_emsp)
    refused = _run(app, "register", "Fake CPO", "--our-url", OUR_URL)
    assert refused.exit_code != 0 and "HTTP 401" in refused.output

    partner = _partner()
    assert partner.status == PartnerStatus.PENDING
    assert partner.incoming_token_hash == hash_token("our-token-a-for-them")
    assert fake_cpo.requests_to("/ocpi/cpo/2.2.1/credentials") == []

    assert "no partner with id or name 'Nobody'" in _run(app, "register", "Nobody").output


def test_register_hands_out_the_configured_url_only(app, db_session, fake_cpo, monkeypatch):
    _add(app, fake_cpo)
    other = _run(app, "register", "Fake CPO", "--our-url", "https://elsewhere.example.test")
    assert other.exit_code != 0
    assert "is not the configured OCPI base URL 'https://emsp.example.test'" in other.output
    # The operator's environment says the same through OCPI_PUBLIC_URL.
    monkeypatch.setenv("OCPI_PUBLIC_URL", "https://stale.example.test")
    stale = _run(app, "register", "Fake CPO")
    assert stale.exit_code != 0 and "stale.example.test" in stale.output
    assert fake_cpo.received == [] and _partner().status == PartnerStatus.PENDING

    monkeypatch.setenv("OCPI_PUBLIC_URL", OUR_URL + "/")  # the same URL, trailing slash aside
    assert _run(app, "register", "Fake CPO").exit_code == 0
    assert fake_cpo.emsp_credentials["url"] == f"{OUR_URL}/ocpi/versions"


def test_register_refuses_clearly_without_a_configured_url(app, db_session, fake_cpo, monkeypatch):
    _add(app, fake_cpo)
    monkeypatch.setitem(app.config, "OCPI_BASE_URL", None)
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", None)
    result = _run(app, "register", "Fake CPO")
    assert result.exit_code != 0
    assert "cannot tell the partner where our versions endpoint is" in result.output
    assert "PUBLIC_BASE_URL" in result.output
    assert fake_cpo.received == [] and _partner().status == PartnerStatus.PENDING
    # A base URL no partner can reach is refused outside development and tests.
    monkeypatch.setitem(app.config, "OCPI_BASE_URL", "http://localhost:5000")
    monkeypatch.setitem(app.config, "APP_ENV", "production")
    loopback = _run(app, "register", "Fake CPO")
    assert loopback.exit_code != 0 and "no partner can reach" in loopback.output
    assert fake_cpo.received == []


def test_register_unreachable_partner(app, db_session):
    result = _run(
        app,
        "partner-add",
        "--name",
        "Gone",
        "--country-code",
        "NL",
        "--party-id",
        "GON",
        "--role",
        "CPO",
        "--token",
        "t-a",
        "--versions-url",
        "http://127.0.0.1:9/ocpi/versions",
        "--their-token",
        "x",
    )
    assert result.exit_code == 0
    failed = _run(app, "register", "Gone", "--our-url", OUR_URL)
    assert failed.exit_code != 0 and "Unable to use the client's API" in failed.output
    missing = _run(
        app,
        "partner-add",
        "--name",
        "NoUrl",
        "--country-code",
        "NL",
        "--party-id",
        "NOU",
        "--role",
        "CPO",
        "--token",
        "t-b",
    )
    assert missing.exit_code == 0
    assert "--versions-url" in _run(app, "register", "NoUrl", "--our-url", OUR_URL).output


def test_post_refused_by_them_restores_our_token(app, client, db_session, fake_cpo):
    """Token B is published before the POST (they may call us back with it); when they refuse, it is withdrawn
    and token A works again."""
    _add(app, fake_cpo)
    fake_cpo.emsp_credentials = {"token": "someone-else"}  # they believe we are registered already → 405
    result = _run(app, "register", "Fake CPO", "--our-url", OUR_URL)
    assert result.exit_code != 0 and "HTTP 405" in result.output
    assert _partner().incoming_token_hash == hash_token("our-token-a-for-them")
    assert OcpiTestClient(client, token="our-token-a-for-them").get("/ocpi/versions").status_code == 200


def test_register_rotate_and_unregister_with_a_peer_writing_lower_case(app, client, db_session, fake_cpo):
    """Issue 13: the fake CPO's ``lowercase_roles`` (``"role": "cpo"``, ``"sender"``, ``"CREDENTIALS"``): its
    credentials endpoint is still found for POST, PUT and DELETE, its parties stored upper-case."""
    fake_cpo.misbehave["lowercase_roles"] = True
    _add(app, fake_cpo)
    registered = _run(app, "register", "Fake CPO")
    assert registered.exit_code == 0, registered.output
    partner = _partner()
    assert [(p.role, p.country_code, p.party_id) for p in partner.parties] == [("CPO", "NL", "TCP")]
    assert partner.endpoint_url("tokens", "RECEIVER") == module_url(fake_cpo, "tokens")
    assert _run(app, "update-credentials", "Fake CPO").exit_code == 0
    assert fake_cpo.requests_to("/ocpi/cpo/2.2.1/credentials", "PUT")
    assert _run(app, "unregister", "Fake CPO").exit_code == 0
    assert fake_cpo.requests_to("/ocpi/cpo/2.2.1/credentials", "DELETE") and fake_cpo.emsp_credentials is None


def test_partners_lists_every_status_with_who_and_why(app, db_session, fake_cpo):
    _add(app, fake_cpo)
    assert _run(app, "register", "Fake CPO").exit_code == 0
    assert _run(app, "suspend", "Fake CPO", "--reason", "fraud check").exit_code == 0
    listing = _run(app, "partners").output
    assert "suspended" in listing and "by cli: fraud check" in listing
