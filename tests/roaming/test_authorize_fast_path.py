"""The pieces that keep real-time authorization within its latency budget, each tested on its own and then
together as production runs them: the per-process partner cache, the card-and-standing query, the buffered
authorization log (background writer, no transaction in the request) and the idle-only connection ping."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, delete, event, func, insert, select
from sqlalchemy.engine import Engine

from app import create_app
from app.accounts.models import Account
from app.cards.models import BlockReason, Card, CardStatus, TokenType
from app.charging.models import Authorization
from app.db import ping_after_idle, utcnow
from app.extensions import db
from app.jobs import init_celery
from app.roaming.models import Partner, PartnerStatus
from app.roaming.ocpi.auth import hash_token
from app.roaming.partners import callers as auth
from app.roaming.send import authorization_log
from app.roaming.send.authorization_log import BufferedLogWriter


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement sent while the test runs."""
    seen: list[str] = []

    def remember(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", remember)
    yield seen
    event.remove(Engine, "before_cursor_execute", remember)


@pytest.fixture
def partner_cache(app: Flask) -> Iterator[None]:
    app.config["OCPI_PARTNER_CACHE_SECONDS"] = 60
    auth._partner_cache.clear()
    auth._parties_cache.clear()
    yield
    app.config["OCPI_PARTNER_CACHE_SECONDS"] = 0
    auth._partner_cache.clear()
    auth._parties_cache.clear()


def _partner_lookups(statements: list[str]) -> int:
    return sum(1 for statement in statements if "FROM roaming_partners" in statement)


def test_partner_cache_answers_without_a_query_and_forgets_on_change(ocpi, partner, partner_cache, statements):
    assert ocpi.get("/ocpi/2.2.1/cdrs/0").status_code == 404  # authenticated, then "unknown CDR"
    assert ocpi.get("/ocpi/2.2.1/cdrs/0").status_code == 404
    assert _partner_lookups(statements) == 1
    # A saved change to any partner clears this process's cache: a removal takes effect at once here.
    partner.status = PartnerStatus.REMOVED
    db.session.commit()
    assert ocpi.get("/ocpi/2.2.1/cdrs/0").status_code == 401
    assert _partner_lookups(statements) == 2


def test_parties_are_cached_with_the_partner_and_forgotten_when_a_hub_adds_one(
    app, ocpi, partner, partner_cache, statements
):
    from app.roaming.models import PartnerParty

    partner.parties.append(PartnerParty(country_code="BE", party_id="BEC", role="CPO"))
    db.session.commit()
    assert auth.parties_of(partner) >= {("BE", "BEC")}
    db.session.expire(partner)  # as in a later request: parties not loaded
    statements.clear()
    assert ("BE", "BEC") in auth.parties_of(partner) and not any("roaming_partner_parties" in s for s in statements)
    partner.parties.append(PartnerParty(country_code="BE", party_id="XYZ", role="CPO"))
    db.session.commit()  # clears the cache
    db.session.expire(partner)
    assert ("BE", "XYZ") in auth.parties_of(partner)


def test_partner_cache_entry_expires(app, ocpi, partner, partner_cache, statements):
    app.config["OCPI_PARTNER_CACHE_SECONDS"] = 0.05
    ocpi.get("/ocpi/2.2.1/cdrs/0")
    time.sleep(0.1)
    ocpi.get("/ocpi/2.2.1/cdrs/0")
    assert _partner_lookups(statements) == 2


def test_unknown_tokens_are_not_cached(ocpi, partner, partner_cache):
    ocpi.token = "not-a-token-we-issued"
    assert ocpi.get("/ocpi/2.2.1/cdrs/0").status_code == 401
    assert auth._partner_cache == {}


# --- the buffered log writer, on a database of its own ----------------------------------------------------


@pytest.fixture
def log_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'log.sqlite3'}")
    db.metadata.create_all(engine)  # SQLite wants the tables its foreign keys name
    yield engine
    engine.dispose()


def _row(n: int) -> dict[str, object]:
    return {
        "partner_id": None,
        "card_id": None,
        "account_id": None,
        "token_uid": f"UID{n}",
        "token_type": "RFID",
        "allowed": "ALLOWED",
        "reason": "test",
        "authorization_reference": None,
        "location_references": None,
        "created_at": utcnow(),
    }


def _logged_uids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(Authorization.token_uid).order_by(Authorization.id)))


def test_writer_flushes_rows_in_order(log_engine):
    writer = BufferedLogWriter(log_engine, flush_seconds=60)
    for n in range(5):
        writer.add(_row(n))
    assert _logged_uids(log_engine) == []  # nothing written on the request path
    assert writer.flush() == 5
    assert _logged_uids(log_engine) == [f"UID{n}" for n in range(5)]
    assert writer.flush() == 0


def test_writer_thread_writes_without_being_asked(log_engine):
    writer = BufferedLogWriter(log_engine, flush_seconds=0.02)
    writer.add(_row(1))
    deadline = time.monotonic() + 5
    while not _logged_uids(log_engine) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _logged_uids(log_engine) == ["UID1"]


def test_writer_keeps_rows_when_the_database_refuses_them(tmp_path, log_engine):
    missing_table = create_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    writer = BufferedLogWriter(missing_table, flush_seconds=60)
    writer.add(_row(1))
    writer.add(_row(2))
    with pytest.raises(Exception, match="no such table"):
        writer.flush()
    writer.engine = log_engine  # the database is back
    writer.add(_row(3))
    assert writer.flush() == 3
    assert _logged_uids(log_engine) == ["UID1", "UID2", "UID3"]
    missing_table.dispose()


# --- the idle-only ping -------------------------------------------------------------------------------------


def test_connections_are_pinged_only_after_idling_and_replaced_when_dead(tmp_path, monkeypatch):
    engine = create_engine(f"sqlite:///{tmp_path / 'ping.sqlite3'}")
    ping_after_idle(engine, idle_seconds=0.05)
    pings: list[bool] = []
    answers = iter([False])  # the first ping finds the connection dead, later ones alive

    def ping(dbapi_connection):  # type: ignore[no-untyped-def]
        alive = next(answers, True)
        pings.append(alive)
        return alive

    monkeypatch.setattr(engine.dialect, "do_ping", ping)
    with engine.connect() as connection:
        first = connection.connection.dbapi_connection
    with engine.connect():
        pass
    assert pings == []  # busy connections are not pinged
    time.sleep(0.1)
    with engine.connect() as connection:
        assert connection.scalar(select(1)) == 1  # served by a fresh connection after the failed ping
        assert connection.connection.dbapi_connection is not first
    assert pings == [False]
    engine.dispose()


# --- all of it together, configured as in production --------------------------------------------------------


@pytest.fixture
def production_like(app: Flask) -> Iterator[Flask]:
    """A second app on the test database with production's authorization settings. Its rows are committed
    for real (the background writer uses its own connections), so they are removed afterwards."""
    fast = create_app(
        "test",
        SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
        OCPI_PARTNER_CACHE_SECONDS=60.0,
        AUTHORIZATION_LOG_BUFFERED=True,
        AUTHORIZATION_LOG_FLUSH_SECONDS=60.0,
    )
    auth._partner_cache.clear()
    try:
        yield fast
    finally:
        with fast.app_context():
            for table, column, value in (
                (Authorization, Authorization.token_uid, "FAST0001"),
                (Authorization, Authorization.token_uid, "FAST0002"),
                (Card, Card.uid, "FAST0001"),
                (Card, Card.uid, "FAST0002"),
                (Account, Account.full_name, "Fast Path Driver"),
                (Partner, Partner.party_id, "FST"),
            ):
                db.session.execute(delete(table).where(column == value))
            db.session.commit()
            db.engine.dispose()
        auth._partner_cache.clear()
        init_celery(app)


def test_authorize_as_configured_in_production(production_like, statements):
    with production_like.app_context():
        db.session.add(
            Partner(
                name="Fast CPO",
                country_code="NL",
                party_id="FST",
                status=PartnerStatus.REGISTERED,
                incoming_token_hash=hash_token("fast-token"),
                registered_at=utcnow(),
                endpoints=[],
            )
        )
        account_id = db.session.execute(
            insert(Account)
            .values(
                full_name="Fast Path Driver",
                street="Meir 10",
                postal_code="2000",
                city="Antwerpen",
                country="BE",
                language="nl",
                created_at=utcnow(),
                updated_at=utcnow(),
            )
            .returning(Account.id)
        ).scalar_one()
        for uid, status, reason in (
            ("FAST0001", CardStatus.ACTIVE, None),
            ("FAST0002", CardStatus.BLOCKED, BlockReason.PAYMENT),
        ):
            db.session.add(
                Card(
                    account_id=account_id,
                    token_type=TokenType.RFID,
                    status=status,
                    uid=uid,
                    contract_id=f"BEVLTC{uid}",
                    visual_number=uid,
                    issuer="Voltaro",
                    whitelist="ALLOWED",
                    block_reason=reason,
                    ordered_at=utcnow(),
                    last_updated=utcnow(),
                )
            )
        db.session.commit()

    client = production_like.test_client()
    headers = {"Authorization": "Token " + base64.b64encode(b"fast-token").decode()}
    statements.clear()
    first = client.post(
        "/ocpi/2.2.1/tokens/FAST0001/authorize?type=RFID", headers=headers, json={"location_id": "LOC1"}
    )
    assert first.status_code == 200 and first.get_json()["data"]["allowed"] == "ALLOWED"
    assert _partner_lookups(statements) == 1
    statements.clear()
    second = client.post("/ocpi/2.2.1/tokens/FAST0002/authorize", headers=headers)
    assert second.get_json()["data"]["allowed"] == "NO_CREDIT"
    # The steady state: one query (the card with its account's standing), no partner lookup, no log insert.
    queries = [s for s in statements if s.split()[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK")]
    assert len(queries) == 1 and "FROM cards" in queries[0] and "billing_invoices" in queries[0]

    with production_like.app_context():
        assert authorization_log.flush_pending(production_like) == 2
        logged = db.session.execute(
            select(Authorization.token_uid, Authorization.allowed, Authorization.reason)
            .join(Partner, Partner.id == Authorization.partner_id)
            .where(Partner.party_id == "FST")
            .order_by(Authorization.id)
        ).all()
        assert [(row.token_uid, row.allowed) for row in logged] == [("FAST0001", "ALLOWED"), ("FAST0002", "NO_CREDIT")]
        assert (
            db.session.scalar(
                select(func.count()).select_from(Authorization).where(Authorization.token_uid == "FAST0002")
            )
            == 1
        )
