"""Revision b7e4c2a91f30 (OCPI ids case-insensitive, whoever delivers them) on a database that already holds
doubles: it does not fail, keeps one copy of each object, records the others with their raw JSON, keeps billing
at one charge per CDR and leaves issued invoices alone.

Each test migrates a scratch database of its own (a SQLite file, or a schema of its own in the PostgreSQL
database of ``TEST_DATABASE_URL``): down to the revision before, doubles inserted with plain SQL on the tables
as they were then, up again.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import db

REVISION = "b7e4c2a91f30"
_values = itertools.count(1)


@pytest.fixture
def scratch(app: Flask, tmp_path: Path) -> Iterator[Flask]:
    """An app on an empty database of its own, migrated to the revision before this one. (``app`` is asked for
    so that Celery is bound back to the session app before the next test.)"""
    url = os.environ.get("TEST_DATABASE_URL")
    schema = None
    if url:
        schema = f"migration_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(url)
        with admin.begin() as connection:
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
        url = (
            make_url(url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    else:
        url = f"sqlite:///{tmp_path / 'migration.sqlite3'}"
    scratch_app = create_app("test", SQLALCHEMY_DATABASE_URI=url)
    try:
        with scratch_app.app_context():
            command.upgrade(_config(scratch_app), REVISION)
            command.downgrade(_config(scratch_app), _previous(scratch_app))  # this revision's downgrade
            yield scratch_app
            db.engine.dispose()
    finally:
        if schema:
            with admin.begin() as connection:
                connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


def _config(flask_app: Flask):  # type: ignore[no-untyped-def]
    migrate = flask_app.extensions["migrate"]
    return migrate.migrate.get_config(migrate.directory)


def _previous(flask_app: Flask) -> str:
    """The revision before this one (the first parent when it is also a merge point: downgrading to it undoes
    this revision only, the other parents stay applied)."""
    parents = ScriptDirectory.from_config(_config(flask_app)).get_revision(REVISION).down_revision
    assert parents is not None
    return parents[0] if isinstance(parents, tuple) else parents


def _filler(column: sa.Column[Any]) -> Any:
    """A value for a required column the test does not care about (unique enough for unique constraints)."""
    number = next(_values)
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer):
        return number
    if isinstance(kind, sa.Numeric):
        return Decimal(0)
    if isinstance(kind, sa.DateTime):
        return dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    if isinstance(kind, sa.Date):
        return dt.date(2026, 11, 1)
    if isinstance(kind, sa.JSON):
        return {}
    length = getattr(kind, "length", None) or 20
    return f"v{number}"[-length:]


def _insert(connection: sa.Connection, table_name: str, **values: Any) -> int:
    """INSERT a row as the table is *now* (reflected, so other revisions' columns are filled in)."""
    table = sa.Table(table_name, sa.MetaData(), autoload_with=connection)
    row = dict(values)
    for column in table.columns:
        if column.name not in row and not column.primary_key and not column.nullable and column.server_default is None:
            row[column.name] = _filler(column)
    return connection.execute(table.insert().values(**row).returning(table.c.id)).scalar_one()


def _rows(connection: sa.Connection, sql: str, **params: Any) -> list[Any]:
    return list(connection.execute(sa.text(sql), params))


def at(hour: int) -> dt.datetime:
    return dt.datetime(2026, 10, 10, hour, tzinfo=dt.UTC)


def _cdr(
    connection: sa.Connection, partner_id: int, ocpi_id: str, received: int, account_id: int | None, **extra: Any
) -> int:
    return _insert(
        connection,
        "roaming_cdrs",
        partner_id=partner_id,
        country_code="NL",
        party_id="TCP",
        ocpi_id=ocpi_id,
        account_id=account_id,
        token_uid="04AB00CD",
        start_date_time=at(8),
        end_date_time=at(9),
        location_ocpi_id="LOC1",
        evse_uid="E1",
        country="NLD",
        currency="EUR",
        total_energy=Decimal(10),
        total_time=Decimal(1),
        total_cost_excl_vat=Decimal("3.50"),
        credit=extra.pop("credit", False),
        data={"id": ocpi_id, "via": partner_id},
        last_updated=at(9),
        received_at=at(received),
        **extra,
    )


def _charge(connection: sa.Connection, cdr_id: int, account_id: int) -> int:
    return _insert(
        connection,
        "rating_session_charges",
        cdr_id=cdr_id,
        account_id=account_id,
        tariff_source="cdr_total_cost",
        country="NL",
        currency="EUR",
        kwh=Decimal(10),
        cpo_cost_excl_vat=Decimal("3.5"),
        driver_excl_vat=Decimal("4"),
        vat_rate=Decimal(21),
        vat_amount=Decimal("0.84"),
        driver_incl_vat=Decimal("4.84"),
        breakdown={},
    )


def _invoice(connection: sa.Connection, account_id: int, number: str, period: str, charge_ids: list[int]) -> int:
    invoice_id = _insert(
        connection,
        "billing_invoices",
        kind="invoice",
        status="finalized",
        account_id=account_id,
        period=period,
        currency="EUR",
        series="INV-2026",
        number=number,
        payment_state="open",
        subtotal_minor=400 * len(charge_ids),
        total_minor=484 * len(charge_ids),
        snapshot={"number": number},
    )
    for position, charge_id in enumerate(charge_ids, 1):
        _insert(
            connection,
            "billing_invoice_lines",
            invoice_id=invoice_id,
            position=position,
            kind="session",
            session_charge_id=charge_id,
            description="Charging session",
            amount_minor=400,
            vat_rate=Decimal(21),
            details={},
        )
    return invoice_id


def _account_and_cards(connection: sa.Connection) -> tuple[int, int, int]:
    account = _insert(
        connection,
        "accounts",
        full_name="Dora Double",
        street="Meir 10",
        postal_code="2000",
        city="Antwerpen",
        country="BE",
        language="nl",
    )
    cards = [
        _insert(
            connection,
            "cards",
            account_id=account,
            token_type="RFID",
            status="active",
            uid=uid,
            contract_id=contract_id,
            visual_number=f"VLT-{uid}",
            issuer="Voltaro",
            whitelist="ALLOWED",
            ordered_at=at(1),
            last_updated=at(1),
        )
        for uid, contract_id in (("04AB00CD", "NL-VLT-C00000001-X"), ("04ab00ce", "nl-vlt-c00000002-y"))
    ]
    return account, cards[0], cards[1]


def test_upgrade_settles_the_doubles_a_database_already_holds(scratch: Flask) -> None:
    with db.engine.begin() as c:
        direct = _insert(
            c,
            "roaming_partners",
            name="Direct CPO",
            is_hub=False,
            country_code="NL",
            party_id="TCP",
            status="registered",
            endpoints=[],
        )
        hub = _insert(
            c,
            "roaming_partners",
            name="Hub",
            is_hub=True,
            country_code="DE",
            party_id="HUB",
            status="registered",
            endpoints=[],
        )
        account, card, lower_card = _account_and_cards(c)
        # Tariff T1 twice (same version), T2 once.
        tariff_kept = _insert(
            c,
            "roaming_tariff_versions",
            partner_id=direct,
            country_code="NL",
            party_id="TCP",
            ocpi_id="T1",
            currency="EUR",
            data={"id": "T1"},
            last_updated=at(1),
            received_at=at(1),
        )
        tariff_double = _insert(
            c,
            "roaming_tariff_versions",
            partner_id=hub,
            country_code="NL",
            party_id="TCP",
            ocpi_id="t1",
            currency="EUR",
            data={"id": "t1"},
            last_updated=at(1),
            received_at=at(2),
        )
        _insert(
            c,
            "roaming_tariff_versions",
            country_code="NL",
            party_id="TCP",
            ocpi_id="T2",
            currency="EUR",
            data={"id": "T2"},
            last_updated=at(1),
            received_at=at(1),
        )
        # Session S1 twice: the older copy knows the card and froze the (doubled) tariff.
        session_old = _insert(
            c,
            "roaming_sessions",
            partner_id=direct,
            country_code="NL",
            party_id="TCP",
            ocpi_id="S1",
            card_id=card,
            account_id=account,
            status="ACTIVE",
            start_date_time=at(8),
            kwh=Decimal(1),
            location_ocpi_id="LOC1",
            evse_uid="E1",
            connector_id="1",
            currency="EUR",
            frozen_tariff_id=tariff_double,
            data={"id": "S1", "status": "ACTIVE"},
            last_updated=at(8),
        )
        session_new = _insert(
            c,
            "roaming_sessions",
            partner_id=hub,
            country_code="NL",
            party_id="TCP",
            ocpi_id="s1",
            status="COMPLETED",
            start_date_time=at(8),
            end_date_time=at(9),
            kwh=Decimal(10),
            location_ocpi_id="LOC1",
            evse_uid="E1",
            connector_id="1",
            currency="EUR",
            data={"id": "s1", "status": "COMPLETED"},
            last_updated=at(9),
        )
        # Location LOC1 twice, each with an EVSE and a connector.
        locations = {}
        for ocpi_id, hour in (("LOC1", 1), ("loc1", 2)):
            locations[ocpi_id] = _insert(
                c,
                "roaming_locations",
                partner_id=direct,
                country_code="NL",
                party_id="TCP",
                ocpi_id=ocpi_id,
                address="Stationsplein 1",
                city="Utrecht",
                country="NLD",
                latitude=Decimal("52.1"),
                longitude=Decimal("5.1"),
                publish=True,
                data={"id": ocpi_id},
                last_updated=at(hour),
            )
            evse = _insert(
                c,
                "roaming_evses",
                location_id=locations[ocpi_id],
                uid="E1",
                status="AVAILABLE",
                data={"uid": "E1", "of": ocpi_id},
                last_updated=at(hour),
            )
            _insert(
                c,
                "roaming_connectors",
                evse_id=evse,
                connector_id="1",
                standard="IEC_62196_T2",
                format="SOCKET",
                power_type="AC_3_PHASE",
                max_voltage=230,
                max_amperage=32,
                tariff_ids=[],
                data={"id": "1", "of": ocpi_id},
                last_updated=at(hour),
            )
        # CDR-A from the CPO, then relayed by the hub: both rated, neither invoiced.
        a_direct = _cdr(c, direct, "CDR-A", 10, account)
        a_hub = _cdr(c, hub, "CDR-A", 11, account)
        charge_a_direct, charge_a_hub = _charge(c, a_direct, account), _charge(c, a_hub, account)
        _insert(
            c, "billing_session_holds", session_charge_id=charge_a_hub, reasons=["far from the estimate"], status="held"
        )
        _insert(
            c,
            "rating_reconciliation_findings",
            cdr_id=a_direct,
            country_code="NL",
            party_id="TCP",
            month="2026-10",
            currency="EUR",
            cpo_total_excl_vat=Decimal(1),
            our_total_excl_vat=Decimal(2),
            difference=Decimal(-1),
            cpo_breakdown={},
            our_breakdown={},
            status="open",
        )
        credit = _cdr(c, hub, "CDR-A-C", 12, account, credit=True, credit_reference_id="cdr-a", original_cdr_id=a_hub)
        # replay1, then REPLAY1: only the second was rated, and invoiced.
        replay_lower = _cdr(c, direct, "replay1", 10, account)
        replay_upper = _cdr(c, direct, "REPLAY1", 11, account)
        charge_replay = _charge(c, replay_upper, account)
        if "rating_problems" in sa.inspect(c).get_table_names():  # a revision written beside this one
            _insert(
                c,
                "rating_problems",
                cdr_id=replay_lower,
                reason="no plan",
                attempts=1,
                first_failed_at=at(10),
                last_failed_at=at(10),
            )
        # BILLED-1 and billed-1: both already invoiced (the driver paid twice).
        billed_first = _cdr(c, direct, "BILLED-1", 10, account)
        billed_second = _cdr(c, hub, "billed-1", 11, account)
        charge_billed_first, charge_billed_second = (
            _charge(c, billed_first, account),
            _charge(c, billed_second, account),
        )
        _invoice(c, account, "INV-2026-000001", "2026-10", [charge_replay, charge_billed_first])
        _invoice(c, account, "INV-2026-000002", "2026-11", [charge_billed_second])
        solo = _cdr(c, direct, "Solo-1", 10, account)
        lines_before = _rows(
            c, "SELECT id, invoice_id, session_charge_id, amount_minor FROM billing_invoice_lines ORDER BY id"
        )

    command.upgrade(_config(scratch), REVISION)

    with db.engine.begin() as c:
        cdrs = {
            row.id: row
            for row in _rows(
                c,
                "SELECT id, ocpi_id, ocpi_id_key, account_id, original_cdr_id, credit_reference_key FROM roaming_cdrs",
            )
        }
        assert set(cdrs) == {a_direct, credit, replay_upper, billed_first, billed_second, solo}
        assert cdrs[a_direct].ocpi_id_key == "CDR-A" and cdrs[solo].ocpi_id_key == "SOLO-1"
        assert cdrs[replay_upper].ocpi_id_key == "REPLAY1"  # the invoiced copy, though received second
        assert cdrs[billed_second].ocpi_id_key is None  # invoiced as well: kept for its invoice, out of the key
        assert cdrs[credit].original_cdr_id == a_direct and cdrs[credit].credit_reference_key == "CDR-A"
        charges = {row.id for row in _rows(c, "SELECT id FROM rating_session_charges")}
        assert charges == {charge_a_direct, charge_replay, charge_billed_first, charge_billed_second}
        assert _rows(c, "SELECT id FROM billing_session_holds") == []
        assert [row.cdr_id for row in _rows(c, "SELECT cdr_id FROM rating_reconciliation_findings")] == [a_direct]
        if "rating_problems" in sa.inspect(c).get_table_names():
            assert _rows(c, "SELECT id FROM rating_problems") == []
        # Issued invoices: not a line changed.
        assert (
            _rows(c, "SELECT id, invoice_id, session_charge_id, amount_minor FROM billing_invoice_lines ORDER BY id")
            == lines_before
        )

        recorded = {
            (row.kind, row.row_id): row
            for row in _rows(
                c,
                "SELECT kind, row_id, kept_row_id, partner_id, still_stored, reason, ocpi_id, data "
                "FROM roaming_duplicate_objects",
            )
        }
        assert set(recorded) == {
            ("cdr", a_hub),
            ("cdr", replay_lower),
            ("cdr", billed_second),
            ("session", session_old),
            ("location", locations["LOC1"]),
            ("tariff", tariff_double),
        }
        assert recorded[("cdr", a_hub)].reason == f"duplicate of CDR #{a_direct}"
        assert recorded[("cdr", a_hub)].partner_id == hub and not recorded[("cdr", a_hub)].still_stored
        assert recorded[("cdr", replay_lower)].kept_row_id == replay_upper
        billed = recorded[("cdr", billed_second)]
        assert billed.still_stored and billed.kept_row_id == billed_first
        assert "already on invoice INV-2026-000002" in billed.reason
        location_record = recorded[("location", locations["LOC1"])]
        assert location_record.kept_row_id == locations["loc1"] and "evses" in str(location_record.data)

        [session] = _rows(
            c, "SELECT id, ocpi_id_key, status, card_id, account_id, frozen_tariff_id FROM roaming_sessions"
        )
        assert (session.id, session.ocpi_id_key, session.status) == (session_new, "S1", "COMPLETED")
        assert (session.card_id, session.account_id, session.frozen_tariff_id) == (card, account, tariff_kept)
        [location] = _rows(c, "SELECT id, ocpi_id_key FROM roaming_locations")
        assert tuple(location) == (locations["loc1"], "LOC1")
        assert len(_rows(c, "SELECT id FROM roaming_evses")) == len(_rows(c, "SELECT id FROM roaming_connectors")) == 1
        assert {row.ocpi_id_key for row in _rows(c, "SELECT ocpi_id_key FROM roaming_tariff_versions")} == {"T1", "T2"}
        assert _rows(c, "SELECT uid, contract_id FROM cards WHERE id = :id", id=lower_card) == [
            ("04AB00CE", "NL-VLT-C00000002-Y")
        ]

    # From now on the database itself refuses a second copy, in any case, from any partner.
    with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as c:
        _cdr(c, hub, "cdr-a", 13, account, ocpi_id_key="CDR-A")
    with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as c:
        c.execute(sa.text("UPDATE cards SET uid = '04ab00cd' WHERE id = :id"), {"id": card})


def test_cards_that_differ_only_by_case_stop_the_upgrade_and_are_named(scratch: Flask) -> None:
    with db.engine.begin() as c:
        account, card, _ = _account_and_cards(c)
        twin = _insert(
            c,
            "cards",
            account_id=account,
            token_type="RFID",
            status="blocked",
            block_reason="lost",
            uid="04ab00cd",
            contract_id="NL-VLT-C00000009-Z",
            visual_number="VLT-twin",
            issuer="Voltaro",
            whitelist="ALLOWED",
            ordered_at=at(1),
            last_updated=at(1),
        )
    with pytest.raises(RuntimeError, match=f"card #{twin} .* and card #{card}"):
        command.upgrade(_config(scratch), REVISION)
