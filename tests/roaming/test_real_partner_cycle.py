"""A full cycle with a CPO that behaves like the real ones (issue 13, "Done means"): it writes its roles and ids in
lower case, sends a broken ``Link`` header, answers 307 to every call, wraps its command answers in a list and
aligns its charging periods on the hour; one of its CDRs is unstorable. We register with it, pull every module,
push our tokens, start and stop a session by command with its asynchronous results, and bill the month: every CDR
is billed once and no object is lost (stored + quarantined = served), also after a full re-pull."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from app.billing.models import Invoice, InvoiceLine
from app.cards import services
from app.cards.models import BlockReason, Card, CardStatus
from app.charging.models import Cdr, ChargingSession
from app.extensions import db
from app.plans import services as plan_services
from app.rating.models import SessionCharge
from app.roaming.models import Command, CommandState, Location, Partner, PartnerStatus, QuarantinedObject
from tests.roaming.conftest import OcpiTestClient
from tests.roaming.fake_cpo.handshake import versions_url
from tests.roaming.token_fixtures import STAFF, card_in

OUR_URL = "https://emsp.example.test"
NOV = dt.datetime(2026, 11, 3, 12, 20, tzinfo=dt.UTC)  # 13:20 in Brussels; the periods start at the hour
TARIFF = {
    "country_code": "nl",
    "party_id": "tcp",
    "id": "t-cycle",
    "currency": "EUR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": 0.40, "vat": 21.0, "step_size": 1}]}],
    "last_updated": "2026-10-01 00:00:00Z",  # a space for the T, as some CPOs write it
}
LOCATION = {
    "country_code": "nl",
    "party_id": "tcp",
    "id": "loc-cycle",
    "publish": True,
    "name": "Stadhuisplein",
    "address": "Stadhuisplein 1",
    "city": "Utrecht",
    "postal_code": "3511 LX",
    "country": "NLD",
    "coordinates": {"latitude": "52.091260", "longitude": "5.121420"},
    "time_zone": "Europe/Amsterdam",
    "evses": [
        {
            "uid": "evse-1",
            "evse_id": "NL*TCP*E0001",
            "status": "AVAILABLE",
            "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
            "connectors": [
                {
                    "id": "1",
                    "standard": "IEC_62196_T2",
                    "format": "SOCKET",
                    "power_type": "AC_3_PHASE",
                    "max_voltage": 230,
                    "max_amperage": 16,
                    "tariff_ids": ["t-cycle"],
                    "last_updated": "2026-10-01T00:00:00Z",
                }
            ],
            "last_updated": "2026-10-01T00:00:00Z",
        }
    ],
    "last_updated": "2026-10-01T00:00:00Z",
}
GOOD_CDRS = 5


def _cdr(card: Card, number: int, *, kwh: float = 12.0, **changes: Any) -> dict[str, Any]:
    """A CDR as the CPO writes it: lower-case ids and token uid, the first period at the top of the hour."""
    start = NOV + dt.timedelta(days=number)
    end = start + dt.timedelta(hours=1, minutes=45)
    hour = start.replace(minute=0)
    data: dict[str, Any] = {
        "country_code": "nl",
        "party_id": "tcp",
        "id": f"cdr-cycle-{number}",
        "start_date_time": start.isoformat(),
        "end_date_time": end.isoformat(),
        "session_id": f"sess-cycle-{number}",
        "cdr_token": {
            "country_code": "be",
            "party_id": "vlt",
            "uid": card.uid.lower(),
            "type": "RFID",
            "contract_id": card.contract_id.lower(),
        },
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": "loc-cycle",
            "name": "Stadhuisplein",
            "address": "Stadhuisplein 1",
            "city": "Utrecht",
            "postal_code": "3511 LX",
            "country": "NLD",
            "coordinates": {"latitude": "52.091260", "longitude": "5.121420"},
            "evse_uid": "evse-1",
            "evse_id": "NL*TCP*E0001",
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": "EUR",
        "tariffs": [copy.deepcopy(TARIFF)],
        "charging_periods": [
            {
                "start_date_time": (hour + dt.timedelta(hours=i)).isoformat(),
                "tariff_id": "T-CYCLE",  # the tariff "t-cycle", in another case
                "dimensions": [{"type": "ENERGY", "volume": kwh / 2}],
            }
            for i in range(2)
        ],
        "total_cost": {"excl_vat": round(kwh * 0.40, 2), "incl_vat": round(kwh * 0.40 * 1.21, 2)},
        "total_energy": kwh,
        "total_time": 1.75,
        "last_updated": (end + dt.timedelta(minutes=5)).isoformat(),
    }
    data.update(changes)
    return data


def _cli(app, *args: str, exit_code: int = 0):  # type: ignore[no-untyped-def]
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == exit_code, result.output
    return result


@pytest.fixture
def driver_card(db_session) -> Card:  # type: ignore[no-untyped-def]
    card = card_in(CardStatus.ACTIVE)
    for stretch in plan_services.history(card.account_id):  # on pay as you go since before November
        stretch.starts_at = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    db.session.commit()
    return card


def test_a_full_cycle_with_a_cpo_that_behaves_like_the_real_ones(app, client, fake_cpo, driver_card, monkeypatch):
    monkeypatch.setitem(app.config, "OCPI_BASE_URL", OUR_URL)
    card = driver_card
    fake_cpo.misbehave.update(
        lowercase_roles=True,  # "role": "cpo", "party_id": "tcp", endpoint roles "sender"
        broken_link_path=True,  # next Link at .../VersionNumber.v_2_2_1/...
        redirect_every_call=True,  # 307 first, every time
        command_answer_shape="list",  # "data": [{"result": "ACCEPTED", ...}]
        page_size=2,
    )
    fake_cpo.data["tariffs"] = [TARIFF]
    fake_cpo.data["locations"] = [LOCATION]
    good = [_cdr(card, number) for number in range(1, GOOD_CDRS)]
    without_evse_uid = _cdr(card, GOOD_CDRS)
    del without_evse_uid["cdr_location"]["evse_uid"]  # derivable from evse_id: accepted
    unstorable = _cdr(card, GOOD_CDRS + 1, total_energy=1e30)  # physics: refused, kept in quarantine
    fake_cpo.data["cdrs"] = [*good, without_evse_uid, unstorable]
    served = len(fake_cpo.data["cdrs"]) + 2

    # Register with the CPO (it writes its roles and codes in lower case).
    _cli(
        app,
        "roaming",
        "partner-add",
        "--name",
        "Cycle CPO",
        "--country-code",
        "NL",
        "--party-id",
        "TCP",
        "--role",
        "CPO",
        "--token",
        "our-token-a-for-the-cycle-cpo",
        "--versions-url",
        versions_url(fake_cpo),
        "--their-token",
        fake_cpo.token_a_for_emsp,
    )
    _cli(app, "roaming", "register", "Cycle CPO")
    db.session.expire_all()
    partner = db.session.scalar(select(Partner).where(Partner.name == "Cycle CPO"))
    assert partner.status == PartnerStatus.REGISTERED
    assert {(p.country_code, p.party_id) for p in partner.parties} == {("NL", "TCP")}
    assert partner.endpoint_url("cdrs", "SENDER")

    # Pull every module: the broken Link is replaced by offset paging; nothing is skipped for good.
    _cli(app, "roaming", "pull", "Cycle CPO")
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Location.id))) == 1
    stored = db.session.scalars(select(Cdr).order_by(Cdr.ocpi_id)).all()
    quarantined = db.session.scalars(select(QuarantinedObject)).all()
    assert len(stored) == GOOD_CDRS and len(quarantined) == 1
    assert len(stored) + len(quarantined) + 2 == served  # + the location and the tariff: nothing lost
    assert quarantined[0].module == "cdrs" and "total_energy" in quarantined[0].reason
    # The lower-case uid is our card: each CDR is the driver's, rated, with the clamped period noted.
    assert {cdr.card_id for cdr in stored} == {card.id}
    charges = db.session.scalars(select(SessionCharge)).all()
    assert len(charges) == GOOD_CDRS
    assert all(charge.pricing_notes for charge in charges)

    # The CPO pulls our tokens (what existed before it registered); our card is in the list.
    cpo = OcpiTestClient(client, token=fake_cpo.emsp_credentials["token"])
    tokens = cpo.get("/ocpi/2.2.1/tokens?limit=1000")
    assert tokens.status_code == 200 and card.uid in {token["uid"] for token in tokens.get_json()["data"]}

    # Start a session by command: the list-wrapped ACCEPTED is read as accepted (pending its result).
    started = _cli(
        app,
        "roaming",
        "send-command",
        "Cycle CPO",
        "START_SESSION",
        "--card",
        card.uid,
        "--location",
        "loc-cycle",
        "--evse",
        "evse-1",
    )
    assert "PENDING" in started.output.upper()
    start = db.session.scalar(select(Command).where(Command.command == "START_SESSION"))
    assert start.state == CommandState.PENDING
    result_path = start.request["response_url"].removeprefix(OUR_URL)
    assert cpo.post(result_path, {"result": "accepted"}).status_code == 200  # its async result, in lower case
    db.session.expire_all()
    assert db.session.get(Command, start.id).state == CommandState.ACCEPTED

    # The CPO reports the session (lower-case ids in the URL), then we stop it the same way.
    session = {
        "country_code": "nl",
        "party_id": "tcp",
        "id": "sess-live",
        "start_date_time": "2026-12-06T10:00:00Z",
        "kwh": 0,
        "cdr_token": {
            "country_code": "BE",
            "party_id": "VLT",
            "uid": card.uid.lower(),
            "type": "RFID",
            "contract_id": card.contract_id,
        },
        "auth_method": "COMMAND",
        "location_id": "loc-cycle",
        "evse_uid": "evse-1",
        "connector_id": "1",
        "currency": "EUR",
        "status": "ACTIVE",
        "last_updated": "2026-12-06T10:00:00Z",
    }
    assert cpo.put("/ocpi/2.2.1/sessions/nl/tcp/sess-live", session).status_code in (200, 201)
    assert db.session.scalar(select(ChargingSession).where(ChargingSession.ocpi_id == "sess-live")).card_id == card.id
    _cli(app, "roaming", "send-command", "Cycle CPO", "STOP_SESSION", "--session", "SESS-LIVE")
    stop = db.session.scalar(select(Command).where(Command.command == "STOP_SESSION"))
    assert cpo.post(stop.request["response_url"].removeprefix(OUR_URL), {"result": "ACCEPTED"}).status_code == 200
    db.session.expire_all()
    assert db.session.get(Command, stop.id).state == CommandState.ACCEPTED

    # A full re-pull changes nothing: the same objects, the same bad one counted again, not stored twice.
    _cli(app, "roaming", "pull", "Cycle CPO", "--restart")
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Cdr.id))) == GOOD_CDRS
    assert db.session.scalar(select(func.count(QuarantinedObject.id))) == 1

    # November is invoiced: every CDR exactly once.
    for args in (
        ["run", "--period", "2026-11", "--dry-run"],
        ["approve", "--period", "2026-11"],
        ["run", "--period", "2026-11", "--no-deliver"],
    ):
        _cli(app, "billing", *args)
    db.session.expire_all()
    invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == card.account_id))
    lines = db.session.scalars(select(InvoiceLine).where(InvoiceLine.session_charge_id.is_not(None))).all()
    assert invoice is not None and len(lines) == GOOD_CDRS
    assert sorted(line.session_charge_id for line in lines) == sorted(charge.id for charge in charges)
    _cli(app, "billing", "uninvoiced", "--period", "2026-11")

    # The card is lost: the change is pushed to the CPO (through its 307s), which stops accepting it.
    services.block_card(db.session.get(Card, card.id), BlockReason.LOST, STAFF)
    db.session.commit()
    _cli(app, "roaming", "push-tokens")
    pushed = [entry for entry in fake_cpo.state.get("tokens", []) if entry["uid"] == card.uid]
    assert pushed and pushed[-1]["body"]["valid"] is False
