"""How ``flask demo generate`` writes in bulk: into empty tables on PostgreSQL the sessions' and CDRs' indexes and
foreign keys are dropped for the load and come back exactly as they were, every key checked against every row;
tables with rows, or tables someone else is using, keep them; a write that fails in the writer's thread fails the
generation, and nothing of it is kept."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import IntegrityError

from app.accounts.models import Account
from app.charging.models import Cdr, ChargingSession
from app.db_bulk import NULL, copy_escape, deferred_indexes, insert_lines, insert_rows
from app.demo.generate import GenerateOptions, generate
from app.demo.generate_catalogue import CPOS
from app.extensions import db

WHEN = dt.datetime(2026, 10, 5, 8, tzinfo=dt.UTC)
BULK_TABLES = ("roaming_sessions", "roaming_cdrs")


def _postgresql() -> None:
    if db.session.get_bind().dialect.name != "postgresql":
        pytest.skip("indexes and foreign keys are deferred on PostgreSQL only (run with TEST_DATABASE_URL)")


def _schema() -> list[tuple[str, ...]]:
    """Every index and constraint of the bulk tables as the catalogue defines it, with whether it is checked."""
    indexes = db.session.execute(
        text(
            "SELECT tablename, indexname, indexdef FROM pg_indexes "
            "WHERE tablename = ANY(:tables) ORDER BY tablename, indexname"
        ),
        {"tables": list(BULK_TABLES)},
    ).all()
    constraints = db.session.execute(
        text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated::text "
            "FROM pg_constraint WHERE conrelid = ANY(CAST(:tables AS regclass[])) ORDER BY 1, 2"
        ),
        {"tables": list(BULK_TABLES)},
    ).all()
    return [tuple(row) for row in (*indexes, *constraints)]


def _cdr(ocpi_id: str, party: tuple[str, str] = ("NL", "XSN"), card_id: int | None = None) -> dict[str, Any]:
    return {
        "country_code": party[0],
        "party_id": party[1],
        "ocpi_id": ocpi_id,
        "ocpi_id_key": ocpi_id.upper(),
        "card_id": card_id,
        "token_uid": "04AABBCCDDEEFF",
        "start_date_time": WHEN,
        "end_date_time": WHEN + dt.timedelta(hours=1),
        "location_ocpi_id": "L1",
        "evse_uid": "E1",
        "country": "NLD",
        "currency": "EUR",
        "total_energy": 10,
        "total_time": 1,
        "total_cost_excl_vat": 4,
        "credit": False,
        "data": {"id": ocpi_id},
        "last_updated": WHEN,
        "received_at": WHEN,
    }


def _options(**changes: Any) -> GenerateOptions:
    values: dict[str, Any] = {"accounts": 30, "cdrs": 300, "locations": 20, "month": "2026-10", "seed": 5}
    return GenerateOptions(**{**values, **changes})


def test_into_empty_tables_indexes_and_keys_are_built_at_the_end_as_they_were(app, db_session):
    _postgresql()
    before = _schema()
    assert any(row[1] == "ix_roaming_cdrs_original_cdr_id" for row in before)
    report = generate(_options(), dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    assert report.indexes_deferred and report.phases["finish"] > 0
    assert _schema() == before  # the same indexes and constraints, every foreign key validated
    assert db.session.scalar(select(func.count(Cdr.id))) == 300
    # The planner knows the loaded tables (analysed before the keys were checked).
    analysed = db.session.scalar(
        text("SELECT count(*) FROM pg_stats WHERE tablename = 'roaming_cdrs' AND attname = 'card_id'")
    )
    assert analysed == 1


def test_a_row_breaking_a_deferred_key_fails_when_the_key_comes_back(app, db_session):
    _postgresql()
    before = _schema()
    cdrs = Cdr.__table__
    nested = db.session.begin_nested()
    with (
        pytest.raises(IntegrityError, match="fk_roaming_cdrs_card_id_cards"),
        deferred_indexes([cdrs]) as deferred,  # type: ignore[list-item]
    ):
        assert deferred
        assert not any(row[1] == "ix_roaming_cdrs_card_id" for row in _schema())  # dropped for the load
        insert_rows(cdrs, [_cdr("GHOST-1", card_id=987_654_321)])  # type: ignore[arg-type]
    nested.rollback()
    assert _schema() == before


def test_tables_with_rows_keep_their_indexes(app, db_session):
    _postgresql()
    insert_rows(Cdr.__table__, [_cdr("EARLIER-1")])  # type: ignore[arg-type]
    before = _schema()
    with deferred_indexes([ChargingSession.__table__, Cdr.__table__]) as deferred:  # type: ignore[list-item]
        assert not deferred
        assert _schema() == before
    assert _schema() == before


def test_tables_someone_else_is_using_keep_their_indexes(app, db_session):
    _postgresql()
    before = _schema()
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with other.connect() as reader:
            reader.execute(text("SELECT count(*) FROM roaming_cdrs"))  # holds its lock until its transaction ends
            with deferred_indexes([ChargingSession.__table__, Cdr.__table__]) as deferred:  # type: ignore[list-item]
                assert not deferred  # NOWAIT: no waiting behind the reader, no reader waiting behind the load
            reader.rollback()
    finally:
        other.dispose()
    assert _schema() == before
    assert db.session.scalar(select(func.count(Cdr.id))) == 0  # the session's transaction goes on


def test_a_write_that_fails_fails_the_generation_and_keeps_nothing(app, db_session):
    # A CDR already holds each CPO's first id: the generator's first chunk of CDRs breaks the unique key (on
    # PostgreSQL in the writer's thread, while the next chunk is being built).
    insert_rows(
        Cdr.__table__,  # type: ignore[arg-type]
        [_cdr(f"{cpo.party_id}-C000000001", (cpo.country_code, cpo.party_id)) for cpo in CPOS],
    )
    db.session.commit()
    result = app.test_cli_runner().invoke(
        args=["demo", "generate", "--accounts", "30", "--cdrs", "25000", "--locations", "20", "--month", "2026-10"]
    )
    assert result.exit_code != 0 and "unique" in repr(result.exception).lower(), result.output
    db.session.rollback()  # what the command's process does as it ends on the error
    assert db.session.scalar(select(func.count(Account.id))) == 0
    assert db.session.scalar(select(func.count(ChargingSession.id))) == 0
    assert db.session.scalar(select(func.count(Cdr.id))) == len(CPOS)


def test_rows_written_as_copy_text_are_stored_alike_on_either_database(app, db_session):
    """``insert_lines``: COPY on PostgreSQL, read back by the columns' types elsewhere: the same row either way,
    escapes (backslash, tab, newline) and NULLs included."""
    tricky = "Liège\tquai 1\nback\\slash"
    data = {"name": tricky, "note": "Église"}
    columns = ("id", "country_code", "party_id", "ocpi_id", "ocpi_id_key", "token_uid", "start_date_time")
    columns += ("end_date_time", "location_ocpi_id", "evse_uid", "country", "currency", "total_energy", "total_time")
    columns += ("total_cost_excl_vat", "total_cost_incl_vat", "credit", "data", "last_updated", "received_at")
    fields = ("987001", "NL", "XSN", "TEXT-1", "TEXT-1", tricky, "2026-10-05T08:00:00Z", "2026-10-05T09:30:36Z")
    fields += (tricky, "E1", "NLD", "EUR", "12.34", "1.51", "4.9360", NULL, "f")
    fields += (json.dumps(data, separators=(",", ":")), "2026-10-05T09:31:00Z", "2026-10-05T09:32:00+00:00")
    line = "\t".join(NULL if field == NULL else copy_escape(field) for field in fields) + "\n"
    insert_lines(Cdr.__table__, columns, [line])  # type: ignore[arg-type]
    cdr = db.session.get(Cdr, 987001)
    assert cdr is not None
    assert (cdr.token_uid, cdr.location_ocpi_id, cdr.data) == (tricky, tricky, data)
    assert (cdr.total_energy, cdr.total_cost_excl_vat, cdr.total_cost_incl_vat, cdr.credit) == (
        Decimal("12.34"),
        Decimal("4.9360"),
        None,
        False,
    )
    assert cdr.start_date_time == WHEN and cdr.received_at == dt.datetime(2026, 10, 5, 9, 32, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="received_at"):  # a column with a default must be written
        insert_lines(Cdr.__table__, columns[:-1], ["x\n"])  # type: ignore[arg-type]
