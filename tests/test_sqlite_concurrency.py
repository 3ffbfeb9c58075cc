"""The embedded default (SQLite on a file) never answers 500 to a partner's sequential traffic while the background
writers run (issue 17).

`make run` answered HTTP 500 "database is locked" to 2 of 40 sequential OCPI session PATCHes: a unit of work began
with SQLite's default (deferred) BEGIN, read, and then needed the write lock while another connection had written
since; SQLite refuses that upgrade at once, whatever the busy timeout. Here our app is served by a real threaded
server on a SQLite file of its own (whatever database the suite runs on), a CPO sends 200 session PUT/PATCHes and
CDR POSTs one after the other over HTTP, and meanwhile other threads write as the embedded set-up's processes do:
the authorization log writer, token push runs to the CPO, rating runs, and a unit of work that reads then writes,
in a loop. Every answer must be a success and every object stored exactly once; no background writer may fail.
The second test shows how (app.db): a unit of work takes the write lock at its first write, a reader never.
"""

from __future__ import annotations

import base64
import datetime as dt
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, select

from app import create_app
from app.audit.models import AuditEntry
from app.audit.services import Actor, record
from app.cards import services as card_services
from app.cards.models import BlockReason, Card, CardStatus
from app.charging.models import Cdr, ChargingSession
from app.db import utcnow
from app.extensions import db, limiter
from app.plans import services as plan_services
from app.plans.services import seed_default_plans
from app.rating.models import SessionCharge
from app.rating.pending import rate_pending
from app.roaming.send.authorization_log import flush_pending, writer_for
from app.roaming.send.token_push import run_push
from tests.browser.conftest import LiveServer
from tests.factories import add_stock, make_user
from tests.roaming.conftest import fake_cpo  # noqa: F401  (fixture)
from tests.roaming.fake_cpo import FakeCpo
from tests.roaming.fake_cpo.handshake import versions_url

SESSIONS = 50  # each: PUT, two PATCHes, the CDR POST → 200 requests
TOKEN_A = "concurrency-token-a"
TOKEN_B = "concurrency-token-b-for-the-cpo"
START = dt.datetime(2026, 10, 5, 7, 0, tzinfo=dt.UTC)
TARIFF = {
    "country_code": "NL",
    "party_id": "TCP",
    "id": "AC-1",
    "currency": "EUR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": 0.35, "vat": 21.0, "step_size": 1}]}],
    "last_updated": "2026-01-01T00:00:00Z",
}
CONNECTOR = {
    "id": "1",
    "standard": "IEC_62196_T2",
    "format": "SOCKET",
    "power_type": "AC_3_PHASE",
    "max_voltage": 230,
    "max_amperage": 32,
    "tariff_ids": ["AC-1"],
    "last_updated": "2026-01-01T00:00:00Z",
}
PLACE = {
    "name": "Neude",
    "address": "Neude 11",
    "city": "Utrecht",
    "postal_code": "3512 AE",
    "country": "NLD",
    "coordinates": {"latitude": "52.092876", "longitude": "5.118919"},
}
LOCATION = {
    "country_code": "NL",
    "party_id": "TCP",
    "id": "LOC-1",
    "publish": True,
    **PLACE,
    "time_zone": "Europe/Amsterdam",
    "evses": [
        {
            "uid": "EVSE-1",
            "evse_id": "NL*TCP*E1",
            "status": "AVAILABLE",
            "connectors": [CONNECTOR],
            "last_updated": "2026-01-01T00:00:00Z",
        }
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}


class Cpo:
    """The CPO's platform: HTTP calls to our live server with its token, one after the other."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.http.headers["Authorization"] = "Token " + base64.b64encode(token.encode()).decode()

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.http.request(method, self.base_url + path, json=body, timeout=60)


@dataclass
class BackgroundWriter:
    """A thread repeating one unit of work in the app until told to stop; counts its rounds, keeps its errors."""

    name: str
    app: Flask
    unit: Callable[[], object]
    pause: float  # seconds between rounds
    rounds: int = 0
    errors: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            with self.app.app_context():  # one per round, as a Celery task has (its session ends with it)
                try:
                    self.unit()
                    self.rounds += 1
                except Exception as error:  # kept for the assertion: a writer must never fail either
                    self.errors.append(f"{type(error).__name__}: {error}")
            self.stopping.wait(self.pause)

    def stop(self) -> None:
        self.stopping.set()
        assert self.thread is not None
        self.thread.join(timeout=60)


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[Flask]:
    """Our app on a SQLite file of its own, schema built by the migrations, as `make run` has it."""
    app = create_app(
        "test",
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'emsp.sqlite3'}",
        MAIL_OUTBOX_DIR=str(tmp_path / "outbox"),
        SERVER_NAME=None,
        # The background log writer of the embedded set-up (the tests' default writes inside the request).
        AUTHORIZATION_LOG_BUFFERED=True,
        AUTHORIZATION_LOG_FLUSH_SECONDS=0.05,
    )
    with app.app_context():
        upgrade()
        limiter.reset()
        seed_default_plans()
        db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


def _register(server: LiveServer, cpo_server: FakeCpo) -> Cpo:
    """We add the CPO with token A; it registers through our credentials endpoint and gets token C."""
    added = server.app.test_cli_runner().invoke(
        args=[
            *("roaming", "partner-add", "--name", "Test CPO", "--country-code", "NL", "--party-id", "TCP"),
            *("--role", "CPO", "--token", TOKEN_A),
        ]
    )
    assert added.exit_code == 0, added.output
    cpo_server.accepted_tokens.add(TOKEN_B)
    credentials = {
        "token": TOKEN_B,
        "url": versions_url(cpo_server),
        "roles": [{"role": "CPO", "party_id": "TCP", "country_code": "NL", "business_details": {"name": "Test CPO"}}],
    }
    registered = Cpo(server.url, TOKEN_A).call("POST", "/ocpi/2.2.1/credentials", credentials)
    assert registered.status_code == 200, registered.text
    return Cpo(server.url, registered.json()["data"]["token"])


def _issue_cards(app: Flask, count: int) -> list[tuple[int, dict[str, str]]]:
    """Active cards of one driver: (card id, the cdr_token a CPO sends for it)."""
    with app.app_context():
        user = make_user(email="concurrency@example.com")
        for stretch in plan_services.history(user.account.id):
            stretch.starts_at = START - dt.timedelta(days=30)  # on a plan when the sessions took place
        add_stock(count, start=52000)
        actor = Actor.system("test")
        issued = []
        for _ in range(count):
            card = card_services.order_card(user.account, actor)
            card_services.ship_card(card, actor)
            card_services.activate_by_operations(card, actor)
            issued.append(card)
        db.session.commit()
        return [(card.id, _cdr_token(card)) for card in issued]


def _cdr_token(card: Card) -> dict[str, str]:
    return {"country_code": "BE", "party_id": "VLT", "uid": card.uid, "type": "RFID", "contract_id": card.contract_id}


def _session(session_id: str, token: dict[str, str], start: dt.datetime) -> dict[str, Any]:
    return {
        "country_code": "NL",
        "party_id": "TCP",
        "id": session_id,
        "start_date_time": start.isoformat(),
        "kwh": 0,
        "cdr_token": token,
        "auth_method": "WHITELIST",
        "location_id": "LOC-1",
        "evse_uid": "EVSE-1",
        "connector_id": "1",
        "currency": "EUR",
        "status": "ACTIVE",
        "last_updated": start.isoformat(),
    }


def _cdr(number: int, token: dict[str, str], start: dt.datetime, kwh: float) -> dict[str, Any]:
    end = start + dt.timedelta(hours=1)
    return {
        "country_code": "NL",
        "party_id": "TCP",
        "id": f"CDR-{number}",
        "start_date_time": start.isoformat(),
        "end_date_time": end.isoformat(),
        "session_id": f"S-{number}",
        "cdr_token": token,
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": "LOC-1",
            **PLACE,
            "evse_uid": "EVSE-1",
            "evse_id": "NL*TCP*E1",
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": "EUR",
        "tariffs": [TARIFF],
        "charging_periods": [
            {
                "start_date_time": start.isoformat(),
                "tariff_id": "AC-1",
                "dimensions": [{"type": "ENERGY", "volume": kwh}],
            }
        ],
        "total_cost": {"excl_vat": round(kwh * 0.35, 2), "incl_vat": round(kwh * 0.35 * 1.21, 2)},
        "total_energy": kwh,
        "total_time": 1,
        "last_updated": end.isoformat(),
    }


def _partner_traffic(cpo: Cpo, tokens: list[dict[str, str]]) -> list[tuple[str, str, int, str]]:
    """200 calls, one after the other, as one CPO's platform makes them: (method, path, status, body) each."""
    answers = []

    def call(method: str, path: str, body: Any) -> None:
        response = cpo.call(method, path, body)
        answers.append((method, path, response.status_code, response.text[:300]))

    for number in range(SESSIONS):
        token = tokens[number % len(tokens)]
        start = START + dt.timedelta(hours=2 * number)
        path = f"/ocpi/2.2.1/sessions/NL/TCP/S-{number}"
        call("PUT", path, _session(f"S-{number}", token, start))
        midway = (start + dt.timedelta(minutes=30)).isoformat()
        call("PATCH", path, {"kwh": 5.5, "last_updated": midway})
        end = (start + dt.timedelta(hours=1)).isoformat()
        call("PATCH", path, {"status": "COMPLETED", "kwh": 11, "end_date_time": end, "last_updated": end})
        call("POST", "/ocpi/2.2.1/cdrs", _cdr(number, token, start, 11.0))
    return answers


def _background_writers(app: Flask, pushed_card_id: int) -> list[BackgroundWriter]:
    """What writes beside the partner in the embedded set-up: each in its own thread and connections."""
    staff = Actor.system("concurrency-test")
    log_rows = iter(range(1_000_000))

    def authorization_log() -> None:  # other partners' authorizations, written by the log writer's own thread
        for _ in range(5):
            writer_for(app).add(
                {
                    "partner_id": None,
                    "card_id": None,
                    "account_id": None,
                    "token_uid": f"OTHER{next(log_rows)}",
                    "token_type": "RFID",
                    "allowed": "ALLOWED",
                    "reason": "concurrency test",
                    "authorization_reference": None,
                    "location_references": None,
                    "created_at": utcnow(),
                }
            )

    def token_push() -> None:  # a card blocked or unblocked, and pushed to the CPO at once (HTTP)
        card = db.session.get_one(Card, pushed_card_id)
        if card.status == CardStatus.BLOCKED:
            card_services.unblock_card(card, staff, note="found")
        else:
            card_services.block_card(card, BlockReason.LOST, staff, note="lost")
        db.session.commit()
        run_push(commit=True)

    def rating() -> None:
        rate_pending()
        db.session.commit()

    def read_then_write() -> None:  # the pattern that upgraded a read to a write lock mid-transaction
        count = db.session.scalar(select(func.count()).select_from(ChargingSession))
        record("test.tick", "concurrency", "writer", actor=staff, details={"sessions_seen": count})
        db.session.commit()

    # Far more often than their schedules in `make run` (the log every 0.2 s, pushes every 5 s, rating every 5 min).
    return [
        BackgroundWriter("authorization-log", app, authorization_log, pause=0.01),
        BackgroundWriter("token-push", app, token_push, pause=0.05),
        BackgroundWriter("rating", app, rating, pause=0.05),
        BackgroundWriter("read-then-write", app, read_then_write, pause=0.01),
    ]


def test_a_partners_sequential_traffic_gets_no_5xx_beside_the_background_writers(sqlite_app, fake_cpo, tmp_path):  # noqa: F811
    server = LiveServer(sqlite_app, tmp_path / "outbox")
    server.start()
    try:
        sqlite_app.config["OCPI_BASE_URL"] = server.url
        cpo = _register(server, fake_cpo)
        assert cpo.call("PUT", "/ocpi/2.2.1/tariffs/NL/TCP/AC-1", TARIFF).status_code in (200, 201)
        assert cpo.call("PUT", "/ocpi/2.2.1/locations/NL/TCP/LOC-1", LOCATION).status_code in (200, 201)
        cards = _issue_cards(sqlite_app, 4)
        pushed_card_id = cards[-1][0]
        writers = _background_writers(sqlite_app, pushed_card_id)
        for writer in writers:
            writer.start()
        try:
            answers = _partner_traffic(cpo, [token for _, token in cards[:-1]])
        finally:
            for writer in writers:
                writer.stop()
    finally:
        server.stop()

    failed = [answer for answer in answers if answer[2] >= 300]
    assert len(answers) == 4 * SESSIONS
    assert failed == [], f"{len(failed)} of {len(answers)} calls failed, first: {failed[:3]}"
    for writer in writers:
        assert writer.errors == [], f"{writer.name} failed {len(writer.errors)} times: {writer.errors[:3]}"
        assert writer.rounds >= 3, f"{writer.name} ran only {writer.rounds} times beside the traffic"
    with sqlite_app.app_context():
        flush_pending(sqlite_app)
        sessions = db.session.execute(
            select(ChargingSession.ocpi_id, ChargingSession.status, ChargingSession.kwh)
        ).all()
        assert sorted(ocpi_id for ocpi_id, _, _ in sessions) == sorted(f"S-{n}" for n in range(SESSIONS))
        assert {(status, float(kwh)) for _, status, kwh in sessions} == {("COMPLETED", 11.0)}
        cdr_ids = db.session.scalars(select(Cdr.ocpi_id)).all()
        assert sorted(cdr_ids) == sorted(f"CDR-{n}" for n in range(SESSIONS))
        charged = db.session.scalars(select(SessionCharge.cdr_id)).all()
        assert len(charged) == len(set(charged)) == SESSIONS  # every CDR rated, once
    assert any(entry["uid"] for entry in fake_cpo.state.get("tokens", []))  # the pushes reached the CPO


def test_a_unit_of_work_takes_the_write_lock_at_its_first_write_and_a_reader_never(sqlite_app, tmp_path):
    """How app.db begins SQLite transactions: another connection (as the worker's) tries to take the write lock."""
    other = sqlite3.connect(tmp_path / "emsp.sqlite3", timeout=0.05, isolation_level=None)

    def write_lock_taken() -> bool:
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return True
        other.execute("ROLLBACK")
        return False

    with sqlite_app.app_context():
        db.session.scalars(select(Card)).all()
        assert not write_lock_taken()  # reads only: a writer elsewhere goes on
        db.session.scalars(select(Card).with_for_update()).all()
        assert write_lock_taken()  # "I am about to write": the lock is ours until the end of the unit of work
        db.session.rollback()
        assert not write_lock_taken()

        with db.session.begin_nested():  # a savepoint inside the transaction, released
            record("test.savepoint", "concurrency", "x", actor=Actor.system("test"))
            assert write_lock_taken()
        db.session.rollback()  # undoes what the released savepoint wrote: BEGIN came before the SAVEPOINT
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0
        assert not write_lock_taken()
        db.session.close()

        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})  # the authorize fast path
        db.session.scalars(select(Card)).all()
        assert not write_lock_taken()
        db.session.close()
        with db.engine.begin() as connection:  # after it, a unit of work still takes the lock at its first write
            connection.execute(select(Card).with_for_update())
            assert write_lock_taken()
    other.close()
