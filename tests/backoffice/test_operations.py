"""Operations back office: the roaming network per partner and hub, its figures on a small network, the buttons
(each runs its job inline here, against the fake CPO over HTTP, and is audited), access by role, CSRF, and the
landing page's count of charge points our cards work at."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from app.accounts.models import Role
from app.audit.models import AuditEntry
from app.cards.models import CardStatus, TokenUpdate
from app.charging.models import Authorization, Cdr
from app.db import utcnow
from app.extensions import db
from app.roaming.models import (
    Connector,
    DeliveryStatus,
    Evse,
    Location,
    Partner,
    PartnerParty,
    PartnerStatus,
    PullCursor,
    QuarantinedObject,
    TariffVersion,
    TokenDelivery,
)
from app.roaming.network.overview import network_overview, partner_overview
from app.roaming.network.reach import charge_points_reachable
from app.roaming.ocpi.auth import hash_token
from tests.factories import login, make_user
from tests.helpers import csrf_token_from, submit_form
from tests.roaming.fake_cpo import FakeCpo, start_fake_cpo
from tests.roaming.fake_cpo.receiver import TOKENS_PATH
from tests.roaming.fake_cpo.sender import sender_endpoints
from tests.roaming.token_fixtures import card_in
from tests.shared_data import EXAMPLES

NOW = utcnow()
HOUR = dt.timedelta(hours=1)
OVERVIEW = "/backoffice/operations/"


def partner_url(partner: Partner) -> str:
    return f"/backoffice/operations/partners/{partner.id}"


# --- a small network ----------------------------------------------------------------------------------------------


def _partner(name: str, country_code: str, party_id: str, *, hub: bool = False, status=PartnerStatus.REGISTERED):  # type: ignore[no-untyped-def]
    partner = Partner(
        name=name,
        is_hub=hub,
        country_code=country_code,
        party_id=party_id,
        status=status,
        incoming_token_hash=hash_token(f"token-{party_id}"),
        outgoing_token=f"our-token-for-{party_id}",
        registered_at=NOW - 30 * 24 * HOUR,
        version="2.2.1",
        endpoints=[],
    )
    db.session.add(partner)
    db.session.flush()
    return partner


def _party(partner: Partner, country_code: str, party_id: str, role: str = "CPO", status: str = "CONNECTED") -> None:
    db.session.add(
        PartnerParty(
            partner_id=partner.id,
            country_code=country_code,
            party_id=party_id,
            role=role,
            name=f"{country_code}{party_id}",
            status=status,
            last_updated=NOW - 2 * HOUR,
        )
    )


def _location(
    partner: Partner,
    country_code: str,
    party_id: str,
    ocpi_id: str,
    evses: list[tuple[str, int]],
    *,
    publish: bool = True,
    updated: dt.datetime = NOW - HOUR,
) -> Location:  # type: ignore[no-untyped-def]
    """A location with EVSEs given as (status, connector count)."""
    location = Location(
        partner_id=partner.id,
        country_code=country_code,
        party_id=party_id,
        ocpi_id=ocpi_id,
        address="Meir 1",
        city="Antwerpen",
        country="BEL",
        latitude=Decimal("51.2"),
        longitude=Decimal("4.4"),
        publish=publish,
        data={"id": ocpi_id},
        last_updated=updated,
    )
    for number, (status, connectors) in enumerate(evses, start=1):
        evse = Evse(uid=f"{ocpi_id}-{number}", status=status, data={}, last_updated=updated)
        for connector in range(1, connectors + 1):
            evse.connectors.append(
                Connector(
                    connector_id=str(connector),
                    standard="IEC_62196_T2",
                    format="SOCKET",
                    power_type="AC_3_PHASE",
                    max_voltage=230,
                    max_amperage=16,
                    data={},
                    last_updated=updated,
                )
            )
        location.evses.append(evse)
    db.session.add(location)
    return location


def _answer(partner: Partner, allowed: str, reason: str, at: dt.datetime) -> None:
    db.session.add(
        Authorization(
            partner_id=partner.id,
            token_uid="04AB0001",
            token_type="RFID",
            allowed=allowed,
            reason=reason,
            created_at=at,
        )
    )


class Network:
    """Two direct CPOs (Alpha registered, Beta suspended) and a registered hub (Gamma) relaying two parties."""

    def __init__(self) -> None:
        self.alpha = _partner("Alpha Charging", "NL", "ALP")
        _party(self.alpha, "NL", "ALP")
        _location(self.alpha, "NL", "ALP", "A1", [("AVAILABLE", 1), ("CHARGING", 2), ("REMOVED", 1)])
        _location(self.alpha, "NL", "ALP", "A2", [("AVAILABLE", 1), ("OUTOFORDER", 1)], updated=NOW - 10 * HOUR)
        _location(self.alpha, "NL", "ALP", "A3", [("AVAILABLE", 1)], publish=False, updated=NOW - 20 * HOUR)

        self.beta = _partner("Beta Power", "BE", "BET", status=PartnerStatus.SUSPENDED)
        _party(self.beta, "BE", "BET")
        _location(self.beta, "BE", "BET", "B1", [("AVAILABLE", 1)])

        self.hub = _partner("Gamma Hub", "DE", "GHB", hub=True)
        _party(self.hub, "DE", "GHB", role="HUB")
        _party(self.hub, "NL", "CP1")
        _party(self.hub, "NL", "CP2", status="OFFLINE")
        _location(self.hub, "NL", "CP1", "C1", [("AVAILABLE", 1), ("AVAILABLE", 1)])
        _location(self.hub, "NL", "CP2", "C2", [("AVAILABLE", 2)])

        # Alpha: in the window three accepted, one refused, one unknown token; one more accepted a day ago.
        for minutes in (5, 50, 500):
            _answer(self.alpha, "ALLOWED", "card active, account in good standing", NOW - dt.timedelta(minutes=minutes))
        _answer(self.alpha, "BLOCKED", "card blocked: lost", NOW - 3 * HOUR)
        _answer(self.alpha, "UNKNOWN", "unknown token", NOW - 4 * HOUR)
        _answer(self.alpha, "ALLOWED", "card active, account in good standing", NOW - 25 * HOUR)
        _answer(self.hub, "NO_CREDIT", "card blocked: payment", NOW - 2 * HOUR)
        _answer(self.hub, "NO_CREDIT", "card blocked: payment", NOW - 23 * HOUR)

        db.session.add(
            PullCursor(
                partner_id=self.alpha.id,
                module="locations",
                synced_until=NOW - 6 * HOUR,
                objects_received=3,
                last_error="page 2: HTTP 502 from the partner",
            )
        )
        db.session.add(
            TariffVersion(
                partner_id=self.alpha.id,
                country_code="NL",
                party_id="ALP",
                ocpi_id="T1",
                currency="EUR",
                data={"id": "T1"},
                last_updated=NOW - 7 * HOUR,
                received_at=NOW - 7 * HOUR,
            )
        )
        db.session.add(_cdr(self.alpha, "CDR1", received_at=NOW - 8 * HOUR))
        self.quarantined = _quarantined(self.alpha, "cdrs", "CDR2", "total_energy: must be at most 1000000")
        resolved = _quarantined(self.alpha, "cdrs", "CDR3", "an old reason")
        resolved.resolved_at, resolved.outcome = NOW - HOUR, "stored"
        db.session.flush()


def _cdr(partner: Partner, ocpi_id: str, received_at: dt.datetime) -> Cdr:
    return Cdr(
        partner_id=partner.id,
        country_code=partner.country_code,
        party_id=partner.party_id,
        ocpi_id=ocpi_id,
        token_uid="04AB0001",
        start_date_time=received_at - 2 * HOUR,
        end_date_time=received_at - HOUR,
        location_ocpi_id="A1",
        evse_uid="A1-1",
        country="NLD",
        currency="EUR",
        total_energy=Decimal("10"),
        total_time=Decimal("1"),
        total_cost_excl_vat=Decimal("4"),
        data={"id": ocpi_id},
        last_updated=received_at,
        received_at=received_at,
    )


def _quarantined(partner: Partner, module: str, ocpi_id: str, reason: str, raw: Any = None) -> QuarantinedObject:
    text = (
        json.dumps(raw) if raw is not None else f'{{"id":"{ocpi_id}","total_energy":1E+30,"cost":{{"excl_vat":0.10}}}}'
    )
    row = QuarantinedObject(
        partner_id=partner.id,
        module=module,
        via="pull",
        country_code=partner.country_code,
        party_id=partner.party_id,
        ocpi_id=ocpi_id,
        object_key=f"{partner.country_code}/{partner.party_id}/{ocpi_id}",
        content_hash=f"{ocpi_id:0>64}"[:64],
        raw=text,
        reason=reason,
        received_count=2,
        first_received_at=NOW - 5 * HOUR,
        last_received_at=NOW - HOUR,
    )
    db.session.add(row)
    return row


@pytest.fixture
def network(db_session) -> Network:  # type: ignore[no-untyped-def]
    return Network()


@pytest.fixture(autouse=True)
def counted_now(app) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The overview keeps its infrastructure counts a minute per process: these tests count afresh each time."""
    from app.roaming.network.overview import INFRASTRUCTURE_CACHE_KEY

    previous = app.config.get("OPERATIONS_FIGURES_CACHE_SECONDS")
    app.config["OPERATIONS_FIGURES_CACHE_SECONDS"] = 0
    app.extensions.pop(INFRASTRUCTURE_CACHE_KEY, None)
    yield
    app.extensions.pop(INFRASTRUCTURE_CACHE_KEY, None)
    if previous is None:
        del app.config["OPERATIONS_FIGURES_CACHE_SECONDS"]
    else:
        app.config["OPERATIONS_FIGURES_CACHE_SECONDS"] = previous


@pytest.fixture
def fake_cpo() -> Iterator[FakeCpo]:
    running = start_fake_cpo()
    try:
        yield running.cpo
    finally:
        running.stop()


def _staff(client, role: Role):  # type: ignore[no-untyped-def]
    user = make_user(role)
    login(client, user)
    return user


# --- figures ----------------------------------------------------------------------------------------------------


def test_figures_of_a_small_network(network):
    overview = network_overview(NOW)
    assert [partner.name for partner in overview.partners] == ["Alpha Charging", "Beta Power", "Gamma Hub"]
    alpha, beta, hub = overview.partners

    # EVSEs count while not REMOVED (an unpublished location is still brought); connectors of those EVSEs only.
    assert alpha.infrastructure.locations == 3
    assert (alpha.infrastructure.evses, alpha.infrastructure.evses_available) == (5, 3)
    assert alpha.infrastructure.connectors == 6
    assert alpha.infrastructure.available_percent == Decimal("60.0")
    assert (hub.infrastructure.locations, hub.infrastructure.evses, hub.infrastructure.connectors) == (2, 3, 4)
    assert hub.infrastructure.available_percent == Decimal("100.0")
    assert overview.infrastructure.evses == 9 and overview.unassigned_locations == 0

    # Parties: a hub relays several, some not connected now.
    assert (alpha.parties.total, alpha.parties.connected, alpha.parties.roles) == (1, 1, ("CPO",))
    assert (hub.parties.total, hub.parties.connected, hub.parties.roles) == (3, 2, ("CPO", "HUB"))

    # Authorization answers of the last 24 hours only, by reason; the last answer whenever it was.
    answers = alpha.authorizations
    assert (answers.accepted, answers.refused, answers.unknown) == (3, 1, 1)
    assert [(row.allowed, row.reason, row.count) for row in answers.by_reason] == [
        ("ALLOWED", "card active, account in good standing", 3),
        ("BLOCKED", "card blocked: lost", 1),
        ("UNKNOWN", "unknown token", 1),
    ]
    assert alpha.sent["authorization"] == NOW - dt.timedelta(minutes=5)
    assert (hub.authorizations.refused, hub.authorizations.total) == (2, 2)
    assert beta.authorizations.total == 0 and beta.sent["authorization"] is None

    # Last received per module, from what we store.
    assert alpha.received["locations"] == NOW - HOUR
    assert alpha.received["tariffs"] == NOW - 7 * HOUR
    assert alpha.received["cdrs"] == NOW - 8 * HOUR
    assert alpha.received["sessions"] is None
    assert "hubclientinfo" not in alpha.received and hub.received["hubclientinfo"] == NOW - 2 * HOUR

    # Pull cursors with their error; the quarantine counts only what still waits.
    assert [(cursor.module, cursor.last_error) for cursor in alpha.cursor_errors] == [
        ("locations", "page 2: HTTP 502 from the partner")
    ]
    assert alpha.quarantine.pending == 1 and alpha.quarantine.oldest_at == NOW - 5 * HOUR
    assert hub.quarantine.pending == 0


def test_one_partner_has_the_same_figures_as_its_row(network):
    row = next(partner for partner in network_overview(NOW).partners if partner.id == network.hub.id)
    assert partner_overview(network.hub.id, NOW) == row
    assert partner_overview(999_999, NOW) is None


def test_infrastructure_counts_are_kept_a_minute_the_rest_is_read_now(app, network):
    app.config["OPERATIONS_FIGURES_CACHE_SECONDS"] = 60
    first = network_overview(NOW)
    _location(network.alpha, "NL", "ALP", "A4", [("AVAILABLE", 1)])
    _answer(network.alpha, "EXPIRED", "card validity ended", NOW - HOUR)
    db.session.flush()
    again = network_overview(NOW)
    assert again.counted_at == first.counted_at
    assert again.partners[0].infrastructure == first.partners[0].infrastructure  # counted a moment ago
    assert again.partners[0].authorizations.refused == 2  # read now
    assert partner_overview(network.alpha.id, NOW).infrastructure.locations == 4  # one partner: counted now
    app.config["OPERATIONS_FIGURES_CACHE_SECONDS"] = 0
    assert network_overview(NOW).partners[0].infrastructure.locations == 4


def test_token_pushes_pending_failing_and_last_delivered(network):
    card = card_in(CardStatus.ACTIVE)  # shipped, active: two token updates
    shipped, active = db.session.scalars(
        select(TokenUpdate).where(TokenUpdate.card_id == card.id).order_by(TokenUpdate.id)
    ).all()
    db.session.add_all(
        [
            TokenDelivery(
                token_update_id=shipped.id,
                partner_id=network.alpha.id,
                status=DeliveryStatus.DELIVERED,
                attempts=1,
                delivered_at=NOW - 3 * HOUR,
            ),
            TokenDelivery(
                token_update_id=active.id,
                partner_id=network.alpha.id,
                status=DeliveryStatus.PENDING,
                attempts=4,
                last_error="HTTP 503",
            ),
            TokenDelivery(token_update_id=active.id, partner_id=network.hub.id, status=DeliveryStatus.PENDING),
        ]
    )
    db.session.flush()
    alpha = partner_overview(network.alpha.id, NOW)
    hub = partner_overview(network.hub.id, NOW)
    assert (alpha.tokens.pending, alpha.tokens.failing, alpha.sent["tokens"]) == (1, 1, NOW - 3 * HOUR)
    assert (hub.tokens.pending, hub.tokens.failing, hub.sent["tokens"]) == (1, 0, None)


def test_charge_points_reachable_through_registered_partners_and_connected_hub_parties(network):
    # Alpha: A1 (2 live EVSEs) and A2 (2); A3 is not published. Beta is suspended. Through the hub: NL/CP1 (2),
    # not NL/CP2 (OFFLINE at the hub).
    reach = charge_points_reachable()
    assert (reach.locations, reach.evses) == (3, 6)

    network.alpha.status = PartnerStatus.SUSPENDED
    db.session.flush()
    assert (charge_points_reachable().locations, charge_points_reachable().evses) == (1, 2)


def test_nothing_reachable_without_registered_partners(db_session):
    partner = _partner("Pending CPO", "NL", "PEN", status=PartnerStatus.PENDING)
    _location(partner, "NL", "PEN", "P1", [("AVAILABLE", 1)])
    db.session.flush()
    assert charge_points_reachable().evses == 0


# --- access -----------------------------------------------------------------------------------------------------


def _client_as(app, role: Role):  # type: ignore[no-untyped-def]
    """Another browser, logged in with a new user of ``role``."""
    other = app.test_client()
    _staff(other, role)
    return other


def test_only_operations_and_admin_see_the_area(app, client, network):
    pages = [OVERVIEW, partner_url(network.alpha), f"{partner_url(network.alpha)}/quarantine/{network.quarantined.id}"]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    for role, status in (
        (Role.DRIVER, 403),
        (Role.SUPPORT, 403),
        (Role.FINANCE, 403),
        (Role.OPERATIONS, 200),
        (Role.ADMIN, 200),
    ):
        browser = _client_as(app, role)
        assert [browser.get(page).status_code for page in pages] == [status] * len(pages), role


def test_buttons_are_refused_to_other_roles(app, client, network):
    for role in (Role.SUPPORT, Role.FINANCE, Role.DRIVER):
        browser = _client_as(app, role)
        token = csrf_token_from(
            browser.get("/backoffice/" if role != Role.DRIVER else "/profile").get_data(as_text=True)
        )
        for path in (
            f"{partner_url(network.alpha)}/pull",
            "/backoffice/operations/push-tokens",
            f"{partner_url(network.alpha)}/reprocess-quarantine",
            f"{partner_url(network.alpha)}/suspend",
            f"{partner_url(network.beta)}/resume",
        ):
            data = {
                "csrf_token": token,
                "suspend-csrf_token": token,
                "suspend-reason": "test",
                "resume-csrf_token": token,
            }
            assert browser.post(path, data=data).status_code == 403, (role, path)
    assert network.alpha.status == PartnerStatus.REGISTERED and network.beta.status == PartnerStatus.SUSPENDED
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action.like("roaming.%"))) == 0
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action.like("partner.%"))) == 0


def test_dashboard_and_navigation_link_to_the_area(app, client, db_session):
    page = _client_as(app, Role.OPERATIONS).get("/backoffice/").get_data(as_text=True)
    assert page.count('href="/backoffice/operations/"') == 2  # the card and the navigation
    assert "/backoffice/operations/" not in _client_as(app, Role.SUPPORT).get("/backoffice/").get_data(as_text=True)


# --- pages ------------------------------------------------------------------------------------------------------


def test_overview_page_shows_each_partner_with_its_figures(client, network):
    _staff(client, Role.OPERATIONS)
    page = client.get(OVERVIEW).get_data(as_text=True)
    for name in ("Alpha Charging", "Beta Power", "Gamma Hub"):
        assert name in page
    assert "60.0 % available" in page
    assert "<dt>Connectors</dt><dd>6</dd>" in page
    assert "3 accepted · 1 refused · 1 unknown" in page
    assert "card blocked: lost" in page  # the most frequent refusal
    assert "3 parties" in page and "2 connected" in page
    assert "Suspended" in page and "Registered" in page


def test_partner_page_in_detail(client, network):
    _staff(client, Role.OPERATIONS)
    page = client.get(partner_url(network.alpha)).get_data(as_text=True)
    assert "page 2: HTTP 502 from the partner" in page  # the cursor's last error
    assert "total_energy: must be at most 1000000" in page  # the quarantined object, with its reason
    assert "an old reason" not in page  # resolved: not waiting any more
    assert f"/quarantine/{network.quarantined.id}" in page
    assert "card blocked: lost" in page and "Unknown token" in page
    assert "It announced no Sender interface" in page and "Suspend Alpha Charging" in page
    hub_page = client.get(partner_url(network.hub)).get_data(as_text=True)
    assert "NL/CP2" in hub_page and "offline" in hub_page  # the parties behind the hub
    assert client.get("/backoffice/operations/partners/999999").status_code == 404


def test_one_quarantined_object_raw(client, network):
    _staff(client, Role.OPERATIONS)
    url = f"{partner_url(network.alpha)}/quarantine/{network.quarantined.id}"
    page = client.get(url).get_data(as_text=True)
    assert "total_energy: must be at most 1000000" in page
    # Laid out one member per line, every token as the partner sent it (1E+30, 0.10: not re-written by a parser).
    assert "&#34;total_energy&#34;: 1E+30,\n  &#34;cost&#34;: {\n    &#34;excl_vat&#34;: 0.10\n  }" in page
    # Another partner's object is not found under this partner.
    assert client.get(f"{partner_url(network.hub)}/quarantine/{network.quarantined.id}").status_code == 404


# --- buttons ----------------------------------------------------------------------------------------------------


def _audit(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def _served_location(ocpi_id: str) -> dict[str, Any]:
    """An OCPI Location of Alpha's party as its Sender interface serves it (the official example, re-keyed)."""
    location = json.loads((EXAMPLES / "location_example.json").read_text())
    location.update(country_code="NL", party_id="ALP", id=ocpi_id, last_updated="2026-11-30T10:00:00Z")
    return location


def test_pull_now_pulls_from_the_partner_and_is_audited(client, network, fake_cpo):
    fake_cpo.country_code, fake_cpo.party_id = "NL", "ALP"
    fake_cpo.accepted_tokens.add(network.alpha.outgoing_token)
    fake_cpo.data["locations"] = [_served_location("P1"), _served_location("P2")]
    network.alpha.endpoints = [entry for entry in sender_endpoints(fake_cpo) if entry["identifier"] == "locations"]
    staff = _staff(client, Role.OPERATIONS)
    page = partner_url(network.alpha)
    assert '<option value="locations">Locations</option>' in client.get(page).get_data(as_text=True)
    # From the beginning: the cursor of the fixture stands after these locations' last_updated.
    data = {"pull-module": "locations", "pull-restart": "y"}
    response = submit_form(client, f"{page}/pull", data, form_url=page, prefix="pull-", follow_redirects=True)
    assert "Pulled from Alpha Charging" in response.get_data(as_text=True)
    assert "date_from" not in fake_cpo.requests_to("/ocpi/cpo/2.2.1/locations", "GET")[0].query
    assert fake_cpo.requests_to("/ocpi/cpo/2.2.1/locations", "GET")  # it really asked the partner
    stored = db.session.scalars(select(Location.ocpi_id).where(Location.partner_id == network.alpha.id)).all()
    assert {"P1", "P2"} <= set(stored)
    [entry] = _audit("roaming.pull_requested")
    assert (entry.actor_label, entry.subject_id) == (staff.email, str(network.alpha.id))
    assert entry.details == {"modules": ["locations"], "restart": True}


def test_pull_now_says_which_module_failed(client, network, fake_cpo):
    # Alpha announces a Sessions Sender that answers 404: the pull of that module fails, and the page says so.
    network.alpha.endpoints = [
        {"identifier": "sessions", "role": "SENDER", "url": fake_cpo.url("/ocpi/cpo/2.2.1/no-such-module")}
    ]
    fake_cpo.accepted_tokens.add(network.alpha.outgoing_token)
    _staff(client, Role.OPERATIONS)
    page = partner_url(network.alpha)
    response = submit_form(client, f"{page}/pull", {}, form_url=page, prefix="pull-", follow_redirects=True)
    assert "sessions not pulled" in response.get_data(as_text=True)
    assert len(_audit("roaming.pull_requested")) == 1


def test_pull_now_is_refused_for_a_suspended_partner(client, network, fake_cpo):
    _staff(client, Role.OPERATIONS)
    page = partner_url(network.beta)
    token = csrf_token_from(client.get(OVERVIEW).get_data(as_text=True))
    response = client.post(f"{page}/pull", data={"pull-csrf_token": token}, follow_redirects=True)
    assert "is not registered: nothing is pulled" in response.get_data(as_text=True)
    assert _audit("roaming.pull_requested") == [] and fake_cpo.received == []


def test_push_pending_tokens_delivers_them_and_is_audited(client, network, fake_cpo):
    network.alpha.endpoints = [{"identifier": "tokens", "role": "RECEIVER", "url": fake_cpo.url(TOKENS_PATH)}]
    network.alpha.registered_at = NOW - 48 * HOUR
    fake_cpo.accepted_tokens.add(network.alpha.outgoing_token)
    card = card_in(CardStatus.ACTIVE)
    staff = _staff(client, Role.OPERATIONS)
    response = submit_form(
        client, "/backoffice/operations/push-tokens", {"partner_id": str(network.alpha.id)}, form_url=OVERVIEW
    )
    assert response.status_code == 302 and response.headers["Location"].endswith(partner_url(network.alpha))
    pushed = [entry["uid"] for entry in fake_cpo.state["tokens"]]
    assert pushed == [card.uid, card.uid]  # shipped, then active
    deliveries = db.session.scalars(select(TokenDelivery).where(TokenDelivery.partner_id == network.alpha.id)).all()
    assert deliveries and all(delivery.status == DeliveryStatus.DELIVERED for delivery in deliveries)
    [entry] = _audit("roaming.token_push_requested")
    assert entry.actor_label == staff.email


def test_reprocess_quarantine_stores_what_can_be_stored_now_and_is_audited(client, network):
    location = {
        "country_code": "NL",
        "party_id": "ALP",
        "id": "A9",
        "publish": True,
        "address": "Coolsingel 40",
        "city": "Rotterdam",
        "country": "NLD",
        "coordinates": {"latitude": "51.922", "longitude": "4.479"},
        "time_zone": "Europe/Amsterdam",
        "last_updated": "2026-11-30T10:00:00Z",
    }
    # Kept while a rule refused it; the object itself is a valid Location, so re-processing stores it now.
    waiting = _quarantined(network.alpha, "locations", "A9", "party NL/ALP: refused then", raw=location)
    db.session.flush()
    staff = _staff(client, Role.OPERATIONS)
    url = f"{partner_url(network.alpha)}/reprocess-quarantine"
    response = submit_form(client, url, {}, form_url=partner_url(network.alpha))
    assert response.status_code == 302
    db.session.refresh(waiting)
    assert waiting.resolved_at is not None and waiting.outcome == "stored"
    assert db.session.scalar(select(Location).where(Location.ocpi_id == "A9")) is not None
    [entry] = _audit("roaming.quarantine_reprocess_requested")
    assert (entry.actor_label, entry.subject_id) == (staff.email, str(network.alpha.id))


def test_suspend_needs_a_reason_then_resume(client, network):
    staff = _staff(client, Role.OPERATIONS)
    page = partner_url(network.alpha)
    submit_form(client, f"{page}/suspend", {"suspend-reason": ""}, form_url=page, prefix="suspend-")
    assert network.alpha.status == PartnerStatus.REGISTERED and _audit("partner.suspended") == []

    response = submit_form(
        client, f"{page}/suspend", {"suspend-reason": "CDRs without prices"}, form_url=page, prefix="suspend-"
    )
    assert response.status_code == 302
    db.session.refresh(network.alpha)
    assert network.alpha.status == PartnerStatus.SUSPENDED
    [suspended] = _audit("partner.suspended")
    assert (suspended.actor_label, suspended.reason) == (staff.email, "CDRs without prices")
    assert "Resume Alpha Charging" in client.get(page).get_data(as_text=True)

    submit_form(client, f"{page}/resume", {"resume-reason": "prices fixed"}, form_url=page, prefix="resume-")
    db.session.refresh(network.alpha)
    assert network.alpha.status == PartnerStatus.REGISTERED
    assert [entry.reason for entry in _audit("partner.resumed")] == ["prices fixed"]


def test_a_refused_move_changes_nothing_and_says_why(client, network):
    _staff(client, Role.OPERATIONS)
    page = partner_url(network.alpha)
    response = submit_form(client, f"{page}/resume", {}, form_url=page, prefix="resume-", follow_redirects=True)
    assert "Not resumed" in response.get_data(as_text=True) and "not suspended" in response.get_data(as_text=True)
    assert network.alpha.status == PartnerStatus.REGISTERED and _audit("partner.resumed") == []


def test_buttons_need_the_csrf_token(client, network):
    _staff(client, Role.OPERATIONS)
    for path, data in (
        (f"{partner_url(network.alpha)}/pull", {}),
        ("/backoffice/operations/push-tokens", {}),
        (f"{partner_url(network.alpha)}/reprocess-quarantine", {}),
        (f"{partner_url(network.alpha)}/suspend", {"suspend-reason": "no token"}),
        (f"{partner_url(network.beta)}/resume", {}),
    ):
        assert client.post(path, data=data).status_code == 400, path
    assert network.alpha.status == PartnerStatus.REGISTERED and network.beta.status == PartnerStatus.SUSPENDED
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.subject_type != "user")) == 0


# --- the landing page -------------------------------------------------------------------------------------------


@pytest.fixture
def fresh_count(app):  # type: ignore[no-untyped-def]
    """The landing page counts at most every few minutes per process: start each test without a stored count."""
    from app.portal.views import REACH_CACHE_KEY

    app.extensions.pop(REACH_CACHE_KEY, None)
    yield
    app.extensions.pop(REACH_CACHE_KEY, None)


def test_landing_page_says_how_many_charge_points_our_cards_work_at(client, network, fresh_count):
    page = client.get("/").get_data(as_text=True)
    assert "6 charge points" in page and "at 3 locations" in page


def test_landing_page_says_nothing_without_partners(client, db_session, fresh_count):
    page = client.get("/").get_data(as_text=True)
    assert "Where your card works today" not in page and "0 charge points" not in page


def test_landing_page_count_is_kept_a_few_minutes(client, network, fresh_count):
    assert "6 charge points" in client.get("/").get_data(as_text=True)
    network.hub.status = PartnerStatus.SUSPENDED
    db.session.flush()
    assert "6 charge points" in client.get("/").get_data(as_text=True)  # counted a moment ago
    assert charge_points_reachable().evses == 4  # what the page says once the count is renewed


def test_demo_seed_has_an_operations_user(app, client, db_session):
    assert app.test_cli_runner().invoke(args=["demo", "seed"]).exit_code == 0
    response = submit_form(client, "/login", {"email": "operations@example.com", "password": "demo-password-1"})
    assert response.status_code == 302
    assert client.get(OVERVIEW).status_code == 200


def test_pull_now_of_a_partner_without_sender_interface_says_so(client, network):
    _staff(client, Role.OPERATIONS)
    page = partner_url(network.alpha)
    token = csrf_token_from(client.get(OVERVIEW).get_data(as_text=True))
    response = client.post(f"{page}/pull", data={"pull-csrf_token": token}, follow_redirects=True)
    assert "offers no module to pull" in response.get_data(as_text=True)
    assert "Pulled from" not in response.get_data(as_text=True)
    assert len(_audit("roaming.pull_requested")) == 1


def test_overview_of_an_empty_network(client, db_session):
    _staff(client, Role.OPERATIONS)
    page = client.get(OVERVIEW).get_data(as_text=True)
    assert "No partner yet" in page
