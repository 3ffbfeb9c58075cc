"""File importers (``flask roaming import-locations / import-tariffs``) on samples of the shared NDW data."""

from __future__ import annotations

import copy
import gzip
import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from app.extensions import db
from app.roaming.models import Connector, Evse, Location, TariffVersion
from app.roaming.receive.importers import ImportFileError, import_locations, import_tariffs
from tests.shared_data import NL_DATA

DATA = NL_DATA


@pytest.fixture(scope="module")
def shared_locations() -> list[dict]:
    return json.loads(gzip.decompress((DATA / "locations.json.gz").read_bytes()))


@pytest.fixture(scope="module")
def shared_tariffs() -> list[dict]:
    return json.loads(gzip.decompress((DATA / "tariffs.json.gz").read_bytes()))


def write_gz(path: Path, objects: list) -> Path:
    path.write_bytes(gzip.compress(json.dumps(objects).encode()))
    return path


@pytest.fixture
def sample(tmp_path, shared_locations):  # type: ignore[no-untyped-def]
    """60 real locations (with a missing max_electric_power among them) plus two broken ones."""
    objects = copy.deepcopy(shared_locations[:60])
    broken = copy.deepcopy(shared_locations[60])
    del broken["evses"][0]["connectors"][0]["power_type"]
    not_an_object = "garbage"
    objects[10:10] = [broken, not_an_object]
    return write_gz(tmp_path / "sample.json.gz", objects), objects


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="planner statistics (ANALYZE, pg_class.reltuples) are PostgreSQL's; SQLite plans without them",
)
def test_an_import_leaves_the_planner_knowing_the_locations_it_wrote(db_session, sample):
    """The finder's prepared statements keep the plan made for the tables' size then, until their statistics
    change: after a first feed of 70,000 locations a plan made for an empty table would scan them all on every
    search (the same fault in the invoice run: tests/billing/test_run_statistics.py)."""

    def planner_rows(table: str) -> float:
        return float(db.session.scalar(text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": table}))

    for table in ("roaming_locations", "roaming_evses", "roaming_connectors"):
        db.session.execute(text(f"ANALYZE {table}"))  # a new e-MSP: analysed while empty
        assert planner_rows(table) == 0
    path, _objects = sample
    import_locations(path, batch_size=25)
    assert planner_rows("roaming_locations") == db.session.query(Location).count() == 60
    assert planner_rows("roaming_evses") == db.session.query(Evse).count()
    assert planner_rows("roaming_connectors") == db.session.query(Connector).count()


def test_import_locations_sample_gz(db_session, sample):
    path, objects = sample
    report = import_locations(path, batch_size=25)
    assert (report.total, report.stored, report.failed) == (62, 60, 2)
    assert report.errors[0][0] == 10
    assert "evses[0].connectors[0].power_type is required" in report.errors[0][2]
    assert report.errors[1][2].startswith("body must be a JSON object")
    assert db.session.query(Location).count() == 60
    evses = sum(len(o["evses"]) for o in objects if isinstance(o, dict)) - len(objects[10]["evses"])
    assert db.session.query(Evse).count() == evses

    again = import_locations(path, batch_size=25)  # idempotent: updates, no duplicates
    assert (again.stored, again.failed) == (60, 2)
    assert db.session.query(Location).count() == 60
    assert db.session.query(Evse).count() == evses


def test_import_sanitises_power_and_keeps_raw(db_session, tmp_path, shared_locations):
    location = copy.deepcopy(
        next(loc for loc in shared_locations if len(loc["evses"]) == 1 and len(loc["evses"][0]["connectors"]) == 1)
    )
    connector = location["evses"][0]["connectors"][0]
    connector.update(power_type="AC_3_PHASE", max_voltage=230, max_amperage=16, max_electric_power=11)
    import_locations(write_gz(tmp_path / "one.json.gz", [location]))
    evse = db.session.query(Evse).one()
    assert evse.max_power_kw == Decimal("11.000")
    assert db.session.query(Connector).one().max_electric_power == 11  # raw kept
    connector.pop("max_electric_power")
    location["last_updated"] = "2030-01-01T00:00:00Z"
    import_locations(write_gz(tmp_path / "one.json.gz", [location]))
    db.session.expire_all()
    assert db.session.query(Evse).one().max_power_kw == Decimal("11.040")  # nominal 230 V × 16 A × 3


def test_import_plain_json_and_newer_data_is_kept(db_session, tmp_path, shared_locations):
    location = copy.deepcopy(shared_locations[0])
    import_locations(write_gz(tmp_path / "a.json.gz", [location]))
    older = {**copy.deepcopy(location), "name": "old name", "last_updated": "2001-01-01T00:00:00Z"}
    plain = tmp_path / "b.json"
    plain.write_text(json.dumps([older]))
    report = import_locations(plain)
    assert (report.stored, report.stale) == (0, 1)
    assert db.session.query(Location).one().name == location["name"]


def test_import_tariffs_sample_and_versions(db_session, tmp_path, shared_tariffs):
    sample = copy.deepcopy(shared_tariffs[:40])
    newer = {**copy.deepcopy(sample[0]), "last_updated": "2030-01-01T00:00:00Z"}
    path = write_gz(tmp_path / "tariffs.json.gz", [*sample, {"id": "bad"}])
    report = import_tariffs(path)
    assert (report.stored, report.failed) == (40, 1)
    assert "country_code is required" in report.errors[0][2]
    import_tariffs(path)
    assert db.session.query(TariffVersion).count() == 40
    import_tariffs(write_gz(tmp_path / "v2.json.gz", [newer]))
    assert db.session.query(TariffVersion).filter_by(ocpi_id=newer["id"]).count() == 2


def test_unreadable_file(db_session, tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"not": "an array"}')
    with pytest.raises(ImportFileError):
        import_locations(path)


def test_cli_import_commands(app, db_session, sample, tmp_path, shared_tariffs):
    path, _ = sample
    runner = app.test_cli_runner()
    result = runner.invoke(args=["roaming", "import-locations", str(path), "--batch-size", "20"])
    assert result.exit_code == 0, result.output
    assert "62 read, 60 stored" in result.output
    assert "2 skipped as invalid" in result.output
    assert "power_type is required" in result.output
    tariffs = write_gz(tmp_path / "t.json.gz", shared_tariffs[:5])
    result = runner.invoke(args=["roaming", "import-tariffs", str(tariffs)])
    assert result.exit_code == 0 and "5 stored" in result.output


def test_full_shared_locations_file(db_session):
    """The whole shared data set (7,609 locations, about 11 s on SQLite; timed in bench/bench_locations.py).

    Every one is stored, including the one whose name holds a tab (index 4972): the spec forbids tabs in
    strings, real feeds send them, and they are harmless (the reader refuses NUL and the other control
    characters, not tab, CR and LF)."""
    report = import_locations(DATA / "locations.json.gz")
    assert (report.total, report.stored, report.failed) == (7609, 7609, 0)
    assert db.session.query(Evse).count() == 18970
    assert db.session.query(Connector).count() == 19052
