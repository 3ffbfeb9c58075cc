"""The quarantine (issue 13): nothing a partner sends is lost. Objects we cannot store — pulled from the fake CPO
over real HTTP, or pushed to our OCPI door — are kept raw with the reason, once however often they come, bounded per
partner; after a fix, re-processing stores them exactly once."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pytest

from app.audit.services import Actor
from app.cards import services as card_services
from app.cards.models import Card
from app.charging.models import Cdr, ChargingSession
from app.extensions import db
from app.plans import services as plan_services
from app.rating.models import SessionCharge
from app.roaming import tasks
from app.roaming.models import Partner, PullCursor, QuarantinedObject, QuarantineOverflow
from app.roaming.ocpi.reader import Bounds
from app.roaming.receive import cdrs as cdr_service
from app.roaming.receive import quarantine
from app.roaming.receive import sessions as session_service
from app.roaming.receive.locations import BatchResult, upsert_locations
from app.roaming.receive.pull import pull
from tests.factories import make_user, one_connector_location
from tests.roaming.conftest import OcpiTestClient
from tests.roaming.fake_cpo import FakeCpo
from tests.roaming.fake_cpo.sender import sender_endpoints
from tests.roaming.token_fixtures import allow_parties, example, our_cdr_token

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)  # a pull's run start: after every last_updated served


def no_sleep(_: float) -> None:
    pass


def cdr(n: int, party: tuple[str, str] = ("NL", "TCP"), **changes: Any) -> dict[str, Any]:
    """The official example CDR as CDR-<n> of ``party``, charged in October 2026."""
    data = example("cdr_example.json")
    data.update(
        country_code=party[0],
        party_id=party[1],
        id=f"CDR-{n}",
        start_date_time="2026-10-01T10:00:00Z",
        end_date_time="2026-10-01T11:58:23Z",
        last_updated=f"2026-10-01T12:{n // 60:02d}:{n % 60:02d}Z",
    )
    data["charging_periods"][0]["start_date_time"] = "2026-10-01T10:00:00Z"
    data.update(changes)
    return data


def bad_cdrs() -> dict[str, dict[str, Any]]:
    """What the reason must say → a CDR we cannot store."""
    missing = cdr(90)
    del missing["auth_method"]
    nul = cdr(91)
    nul["cdr_location"]["name"] = "Gent\x00Zuid"
    return {
        "missing required field auth_method": missing,
        "field cdr_location.name contains a control character": nul,
        "field total_energy is too large a number": cdr(92, total_energy=1e30),
    }


def kept() -> list[QuarantinedObject]:
    db.session.expire_all()
    return list(db.session.query(QuarantinedObject).order_by(QuarantinedObject.id))


def stored_cdrs() -> dict[str, Cdr]:
    db.session.expire_all()
    return {row.ocpi_id: row for row in db.session.query(Cdr)}


@pytest.fixture
def cpo(fake_cpo: FakeCpo, partner: Partner) -> FakeCpo:
    """The fake CPO; our partner (NL/TCP, a direct CPO) pulls from its Sender interface."""
    fake_cpo.accepted_tokens.add(partner.outgoing_token or "")
    partner.endpoints = sender_endpoints(fake_cpo)
    db.session.commit()
    return fake_cpo


@pytest.fixture
def driver_card(db_session: Any) -> Card:
    """A card of a driver whose plan started before October 2026: a CDR of it can be rated."""
    user = make_user()
    for stretch in plan_services.history(user.account.id):
        stretch.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return card_services.issue_app_token(user.account, Actor.of(user))


def post_cdr(ocpi: OcpiTestClient, body: str | bytes) -> Any:
    return ocpi.call("POST", "/ocpi/2.2.1/cdrs", data=body, content_type="application/json")


# --------------------------------------------------------------------------------------------------- pull


def test_a_pull_stores_the_good_keeps_every_bad_one_and_moves_on(cpo, partner):
    good = [cdr(n) for n in range(7)]
    bad = bad_cdrs()
    served = good[:3] + list(bad.values()) + good[3:]
    cpo.data["cdrs"] = served

    result = pull(partner, "cdrs", limit=4, sleep=no_sleep, clock=lambda: START)

    assert (result.pages, result.received, result.stored, len(result.errors)) == (3, 10, 7, 3)
    rows = kept()
    assert len(stored_cdrs()) + len(rows) == len(served)  # nothing lost
    by_id = {row.ocpi_id: row for row in rows}
    for fragment, obj in bad.items():
        row = by_id[obj["id"]]
        assert fragment in row.reason
        assert (row.partner_id, row.module, row.via, row.method) == (partner.id, "cdrs", "pull", None)
        assert (row.country_code, row.party_id, row.received_count, row.resolved_at) == ("NL", "TCP", 1, None)
    assert json.loads(by_id["CDR-90"].raw) == bad["missing required field auth_method"]
    assert "\x00" not in by_id["CDR-91"].raw and "Gent\\u0000Zuid" in by_id["CDR-91"].raw  # PostgreSQL text
    cursor = db.session.query(PullCursor).one()
    assert cursor.synced_until == START and cursor.next_url is None  # the cursor moved on

    later = pull(partner, "cdrs", sleep=no_sleep, clock=lambda: START + dt.timedelta(hours=1))
    assert later.received == 0 and len(kept()) == 3

    cursor.synced_until = None  # a full sync again: the same bad objects count on their rows
    db.session.commit()
    again = pull(partner, "cdrs", limit=4, sleep=no_sleep, clock=lambda: START + dt.timedelta(hours=2))
    assert again.received == 10 and len(stored_cdrs()) == 7
    assert [row.received_count for row in kept()] == [2, 2, 2]


def test_reprocess_stores_them_once_the_partner_may_deliver_their_party(app, cpo, partner, driver_card):
    foreign = [cdr(n, party=("BE", "BEC")) for n in range(3)]
    foreign[0]["cdr_token"] = our_cdr_token(driver_card)  # our driver's session: billed once stored
    cpo.data["cdrs"] = [*foreign, cdr(5), cdr(9, total_energy=1e30)]
    result = pull(partner, "cdrs", sleep=no_sleep, clock=lambda: START)
    assert result.stored == 1  # a direct CPO delivers its own party's CDRs only
    assert sorted(message for _, message in result.errors) == [
        "field total_energy is too large a number",
        *["party BE/BEC not allowed"] * 3,
    ]
    assert set(stored_cdrs()) == {"CDR-5"}

    allow_parties(partner, ("BE", "BEC"))  # the CPO's second party, announced later
    db.session.commit()
    runner = app.test_cli_runner()
    first = runner.invoke(args=["roaming", "quarantine-reprocess", "--partner", "NL/TCP"])

    assert first.exit_code == 0, first.output
    assert "reprocessed 4: 3 resolved (3 stored), 1 still refused" in first.output
    cdrs = stored_cdrs()
    assert set(cdrs) == {"CDR-0", "CDR-1", "CDR-2", "CDR-5"}
    rows = {row.ocpi_id: row for row in kept()}
    assert {rows[f"CDR-{n}"].outcome for n in range(3)} == {"stored"}
    assert all(rows[f"CDR-{n}"].resolved_at is not None for n in range(3))  # kept for audit
    assert rows["CDR-9"].resolved_at is None and "total_energy" in rows["CDR-9"].reason
    [charge] = db.session.query(SessionCharge).all()  # rated: the listeners were told after the commit
    assert charge.cdr_id == cdrs["CDR-0"].id

    before = [(row.id, row.resolved_at, row.outcome, row.reason) for row in kept()]
    second = runner.invoke(args=["roaming", "quarantine-reprocess", "--partner", "NL/TCP"])
    assert "reprocessed 1: 0 resolved (none), 1 still refused" in second.output
    assert [(row.id, row.resolved_at, row.outcome, row.reason) for row in kept()] == before
    assert len(stored_cdrs()) == 4 and db.session.query(SessionCharge).count() == 1


def test_reprocess_stores_them_once_a_rule_is_relaxed(cpo, partner, monkeypatch):
    monkeypatch.setattr(cdr_service, "SESSION_KWH", Bounds(-10, 10, places=4))  # a rule too strict for 15.342
    cpo.data["cdrs"] = [cdr(n) for n in range(3)]
    assert pull(partner, "cdrs", sleep=no_sleep, clock=lambda: START).stored == 0
    assert [row.reason for row in kept()] == ["field total_energy must be between -10 and 10"] * 3

    monkeypatch.undo()  # the fix is deployed
    report = quarantine.reprocess(partner.id)
    db.session.commit()

    assert (report.examined, dict(report.outcomes), report.still_failing) == (3, {"stored": 3}, [])
    assert set(stored_cdrs()) == {"CDR-0", "CDR-1", "CDR-2"}
    assert quarantine.reprocess(partner.id).examined == 0
    assert quarantine.reprocess(ids=[row.id for row in kept()]).not_pending == [row.id for row in kept()]
    assert len(stored_cdrs()) == 3


def test_an_object_kept_beyond_the_size_limit_is_marked_and_not_read_again(app, db_session, partner, monkeypatch):
    monkeypatch.setitem(app.config, "OCPI_MAX_BODY_BYTES", 400)
    huge = cdr(1, remark="é" * 300)  # 600 bytes of UTF-8 in this field alone
    quarantine.keep_pulled(partner.id, "cdrs", [huge], BatchResult(errors=[(0, "CDR-1", "a reason")]))
    [row] = kept()
    assert row.raw_truncated and len(row.raw.encode("utf-8")) <= 400 and row.raw.startswith('{"country_code"')
    report = quarantine.reprocess(partner.id)
    assert report.still_failing == [(row.id, "only the first 400 bytes were kept: the object cannot be read again")]


# --------------------------------------------------------------------------------------------------- push


def test_a_refused_push_is_kept_once_and_a_retry_counts_on_its_row(ocpi, partner):
    body = json.dumps(bad_cdrs()["missing required field auth_method"])
    for _ in range(2):  # the CPO retries its 2001
        response = post_cdr(ocpi, body)
        assert response.status_code == 400
        assert response.get_json()["status_code"] == 2001
        assert "missing required field auth_method" in response.get_json()["status_message"]
    [row] = kept()
    assert (row.module, row.via, row.method, row.received_count) == ("cdrs", "push", "POST", 2)
    assert (row.country_code, row.party_id, row.ocpi_id, row.object_key) == ("NL", "TCP", "CDR-90", "NL/TCP/CDR-90//")
    assert row.raw == body and row.first_received_at <= row.last_received_at
    assert stored_cdrs() == {}  # bad input changes nothing else


LOCATION_URL = "/ocpi/2.2.1/locations/NL/TCP/LOC-Q"
NUL_PATCH = {"status": "AVAIL\x00ABLE", "last_updated": "2026-02-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("method", "path", "body", "module", "keys"),
    [
        ("PUT", "/ocpi/2.2.1/sessions/nl/TCP/S1", {"id": "S1", "kwh": 1e30}, "sessions", ("S1", None, None)),
        ("PATCH", "/ocpi/2.2.1/sessions/NL/TCP/S1", NUL_PATCH, "sessions", ("S1", None, None)),
        ("PUT", LOCATION_URL, {"id": "LOC-Q"}, "locations", ("LOC-Q", None, None)),
        ("PATCH", LOCATION_URL + "/E1", NUL_PATCH, "locations", ("LOC-Q", "E1", None)),
        ("PUT", LOCATION_URL + "/E1/1", NUL_PATCH, "locations", ("LOC-Q", "E1", "1")),
        ("PUT", "/ocpi/2.2.1/tariffs/NL/TCP/T1", example("tariff_put_example.json"), "tariffs", ("T1", None, None)),
    ],
)
def test_every_module_keeps_what_it_refuses_under_the_url_key(ocpi, partner, method, path, body, module, keys):
    text = json.dumps(body)
    response = ocpi.call(method, path, data=text, content_type="application/json")
    assert response.status_code == 400 and response.get_json()["status_code"] == 2001, response.get_json()
    [row] = kept()
    assert (row.module, row.via, row.method, row.raw) == (module, "push", method, text)
    assert (row.country_code, row.party_id) == ("NL", "TCP")
    assert (row.ocpi_id, row.evse_uid, row.connector_id) == keys
    assert row.reason == response.get_json()["status_message"]


def test_an_unreadable_body_is_kept_as_text(ocpi, partner):
    assert post_cdr(ocpi, b'{"id": "CDR-\x00", "total_energy": 1').status_code == 400  # a NUL byte, cut short
    [row] = kept()
    assert row.raw == '{"id": "CDR-\\u0000", "total_energy": 1' and row.object_key == "////"
    assert row.reason.startswith("request body is not valid JSON")


def test_nothing_is_kept_for_an_unknown_caller(client, partner):
    stranger = OcpiTestClient(client, token="not-a-partner-token")
    assert post_cdr(stranger, json.dumps(bad_cdrs()["missing required field auth_method"])).status_code == 401
    assert kept() == []


def test_a_partner_cannot_fill_the_disk(app, ocpi, partner, monkeypatch, caplog):
    monkeypatch.setitem(app.config, "OCPI_QUARANTINE_MAX_PENDING", 2)
    bodies = [json.dumps({**cdr(n), "auth_method": None}) for n in range(5)]
    caplog.set_level(logging.WARNING, logger="app.roaming.receive.quarantine")
    for body in [*bodies, bodies[0]]:
        assert post_cdr(ocpi, body).get_json()["status_code"] == 2001  # the partner's answer is the same
    assert [(row.ocpi_id, row.received_count) for row in kept()] == [("CDR-0", 2), ("CDR-1", 1)]
    [overflow] = db.session.query(QuarantineOverflow).all()
    assert (overflow.partner_id, overflow.module, overflow.dropped) == (partner.id, "cdrs", 3)
    assert "missing required field auth_method" in overflow.last_reason
    [warning] = [r for r in caplog.records if "is full" in r.getMessage()]  # the first, not one per object
    assert "counted, not kept (1 so far)" in warning.getMessage()


def test_a_pushed_session_is_stored_by_the_task_once_the_rule_is_relaxed(ocpi, partner, monkeypatch):
    session = example("session_example_2_short_finished.json")
    allow_parties(partner, (session["country_code"], session["party_id"]))
    url = f"/ocpi/2.2.1/sessions/{session['country_code']}/{session['party_id']}/{session['id']}"
    monkeypatch.setattr(session_service, "SESSION_KWH", Bounds(0, 1, places=4))
    assert ocpi.put(url, session).get_json()["status_code"] == 2001
    assert db.session.query(ChargingSession).count() == 0

    monkeypatch.undo()
    assert tasks.reprocess_quarantine(partner.id) == {"examined": 1, "resolved": 1, "still_failing": 0}
    db.session.expire_all()
    [stored] = db.session.query(ChargingSession).all()
    assert stored.ocpi_id == session["id"] and kept()[0].outcome == "stored"
    assert tasks.reprocess_quarantine(partner.id) == {"examined": 0, "resolved": 0, "still_failing": 0}


def test_objects_refused_but_since_held_as_new_are_superseded(ocpi, partner):
    location = {**one_connector_location("T1"), "id": "LOC-Q"}
    wrong = {**location, "coordinates": {"latitude": "95", "longitude": "5.1"}}
    assert ocpi.put(LOCATION_URL, wrong).get_json()["status_code"] == 2001
    assert ocpi.put(LOCATION_URL, location).status_code == 201  # the CPO fixed it, same last_updated
    assert ocpi.patch(LOCATION_URL + "/E1", NUL_PATCH).get_json()["status_code"] == 2001
    newer = {"status": "CHARGING", "last_updated": "2026-02-02T00:00:00Z"}
    assert ocpi.patch(LOCATION_URL + "/E1", newer).status_code == 200

    report = quarantine.reprocess(partner.id)
    assert dict(report.outcomes) == {"superseded": 2} and report.still_failing == []
    assert [row.outcome for row in kept()] == ["superseded", "superseded"]


def test_the_first_received_is_reprocessed_first(ocpi, partner, monkeypatch):
    """Two versions of a session refused by the same rule: re-processed in the order received, the newer ends up
    held (the other order would leave the older one acknowledged as stale)."""
    session = example("session_example_2_short_finished.json")
    allow_parties(partner, (session["country_code"], session["party_id"]))
    url = f"/ocpi/2.2.1/sessions/{session['country_code']}/{session['party_id']}/{session['id']}"
    newer = {**session, "kwh": 42, "last_updated": "2015-06-30T08:00:00Z"}
    monkeypatch.setattr(session_service, "SESSION_KWH", Bounds(0, 1, places=4))
    for body in (session, newer):
        assert ocpi.put(url, body).get_json()["status_code"] == 2001
    monkeypatch.undo()

    report = quarantine.reprocess(partner.id)
    assert dict(report.outcomes) == {"stored": 2}
    assert db.session.query(ChargingSession).one().kwh == 42


# --------------------------------------------------------------------------------------------------- reading


def test_the_read_services_and_the_listing(app, ocpi, partner, cpo):
    cpo.data["cdrs"] = [bad_cdrs()["field total_energy is too large a number"]]
    pull(partner, "cdrs", sleep=no_sleep, clock=lambda: START)
    body = json.dumps(bad_cdrs()["missing required field auth_method"])
    post_cdr(ocpi, body)
    post_cdr(ocpi, body)

    [summary] = quarantine.quarantine_summary()
    assert summary[:3] == (partner.id, "cdrs", 2) and summary.oldest == kept()[0].first_received_at
    assert quarantine.count_quarantined(partner.id, "cdrs") == 2
    assert [row.ocpi_id for row in quarantine.list_quarantined(partner.id, limit=1, offset=1)] == ["CDR-92"]
    assert [reason.pending for reason in quarantine.pending_by_reason(partner.id)] == [1, 1]

    output = app.test_cli_runner().invoke(args=["roaming", "quarantine", "--partner", "NL/TCP", "--module", "cdrs"])
    assert output.exit_code == 0, output.output
    assert "Test CPO (NL/TCP) cdrs: 2 pending, oldest received" in output.output
    assert "1  Test CPO (NL/TCP) cdrs: missing required field auth_method" in output.output
    assert "NL/TCP/CDR-90 by push POST, received 2x" in output.output
    assert "NL/TCP/CDR-92 by pull, received 1x" in output.output

    [pulled] = [row for row in kept() if row.via == "pull"]
    pulled.resolved_at, pulled.outcome = START, "stored"  # as re-processing leaves it
    db.session.commit()
    assert [row.ocpi_id for row in quarantine.list_quarantined(partner.id)] == ["CDR-90"]
    assert len(quarantine.list_quarantined(partner.id, pending_only=False)) == 2
    listing = app.test_cli_runner().invoke(args=["roaming", "quarantine", "--all"])
    assert "(stored)" in listing.output and "1 pending" in listing.output


# --------------------------------------------------------------------------------------------------- derivable


def test_a_session_missing_only_derivable_fields_is_stored_not_kept(ocpi, partner, driver_card):
    upsert_locations([{**one_connector_location("T1"), "id": "LOC-Q"}], partner=partner)
    token = {key: value for key, value in our_cdr_token(driver_card).items() if key != "contract_id"}
    session = {
        "country_code": "NL",
        "party_id": "TCP",
        "id": "S-DERIVED",
        "start_date_time": "2026-10-01T10:00:00Z",
        "kwh": 0,
        "cdr_token": token,
        "auth_method": "WHITELIST",
        "location_id": "LOC-Q",
        "evse_uid": "E1",
        "currency": "EUR",
        "status": "ACTIVE",
        "last_updated": "2026-10-01T10:00:00Z",
    }  # no connector_id: the EVSE we hold has one
    assert ocpi.put("/ocpi/2.2.1/sessions/NL/TCP/S-DERIVED", session).status_code == 201
    db.session.expire_all()
    stored = db.session.query(ChargingSession).one()
    assert stored.connector_id == "1" and stored.data["cdr_token"]["contract_id"] == driver_card.contract_id
    assert stored.account_id == driver_card.account_id and kept() == []
