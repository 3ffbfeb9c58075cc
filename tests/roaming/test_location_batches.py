"""The batch write path of Locations (``upsert_locations`` → ``location_store`` → ``location_writes``) and the
importer's validation workers: the same outcome as the Receiver's per-object PUT, only differences written,
CiString identity, the finder's spatial index in step, a database refusal failing one object only."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.finder.spatial import Area, in_areas
from app.roaming.models import Connector, Evse, Location
from app.roaming.receive import location_writes
from app.roaming.receive.importers import import_locations
from app.roaming.receive.locations import get_location, location_object, upsert_location, upsert_locations
from tests.factories import one_connector_location
from tests.shared_data import NL_DATA


@pytest.fixture(scope="module")
def real_locations() -> list[dict]:
    return json.loads(gzip.decompress((NL_DATA / "locations.json.gz").read_bytes()))[:40]


def write_gz(path: Path, objects: list) -> Path:
    path.write_bytes(gzip.compress(json.dumps(objects).encode()))
    return path


def stored_objects() -> dict[tuple[str, str, str], dict]:
    db.session.expire_all()
    return {
        (loc.country_code, loc.party_id, loc.ocpi_id): location_object(loc, strict=False)
        for loc in db.session.scalars(select(Location))
    }


def counts() -> tuple[int, int, int]:
    return tuple(db.session.scalar(select(func.count()).select_from(model)) for model in (Location, Evse, Connector))


def changed_version(objects: list[dict]) -> list[dict]:
    """A later version of ``objects``: renamed, moved, an EVSE dropped, a connector dropped, a new EVSE, a status
    change, ids sent in other letter cases."""
    later = copy.deepcopy(objects)
    for obj in later:
        obj["last_updated"] = "2030-01-01T00:00:00Z"
    later[0]["name"] = "renamed"
    later[1]["coordinates"] = {"latitude": "51.500000", "longitude": "4.500000"}
    with_two = next(obj for obj in later if len(obj["evses"]) >= 2)
    with_two["evses"].pop()
    with_two["evses"][0]["status"] = "OUTOFORDER"
    new_evse = copy.deepcopy(later[2]["evses"][0])
    new_evse["uid"] = "NEW-EVSE-1"
    later[2]["evses"].append(new_evse)
    later[3]["id"] = later[3]["id"].lower()
    for evse in later[3]["evses"]:
        evse["uid"] = evse["uid"].lower()
    multi = next((obj for obj in later if any(len(e["connectors"]) >= 2 for e in obj["evses"])), None)
    if multi is not None:
        next(e for e in multi["evses"] if len(e["connectors"]) >= 2)["connectors"].pop()
    return later


def test_batch_path_stores_what_the_per_object_put_stores(db_session, real_locations):
    later = changed_version(real_locations)
    first = upsert_locations(copy.deepcopy(real_locations), partner=None)
    second = upsert_locations(copy.deepcopy(later), partner=None)
    assert (first.stored, first.unchanged, first.errors) == (40, 0, [])
    assert second.stored == 40 and not second.errors
    batched, batched_counts = stored_objects(), counts()

    for model in (Connector, Evse, Location):
        db.session.query(model).delete()
    for version in (real_locations, later):
        for obj in copy.deepcopy(version):
            upsert_location(obj, partner=None, country_code=obj["country_code"], party_id=obj["party_id"])
    assert stored_objects() == batched
    assert counts() == batched_counts


def test_identical_reimport_writes_nothing_and_ids_stay(db_session, real_locations):
    upsert_locations(copy.deepcopy(real_locations), partner=None)
    before = {
        "locations": set(db.session.scalars(select(Location.id))),
        "evses": set(db.session.scalars(select(Evse.id))),
        "connectors": set(db.session.scalars(select(Connector.id))),
    }
    again = upsert_locations(copy.deepcopy(real_locations), partner=None)
    assert (again.stored, again.unchanged, again.stale, again.errors) == (40, 40, 0, [])
    assert before == {
        "locations": set(db.session.scalars(select(Location.id))),
        "evses": set(db.session.scalars(select(Evse.id))),
        "connectors": set(db.session.scalars(select(Connector.id))),
    }
    older = copy.deepcopy(real_locations[:3])
    for obj in older:
        obj["last_updated"] = "2001-01-01T00:00:00Z"
        obj["name"] = "old"
    stale = upsert_locations(older, partner=None)
    assert (stale.stored, stale.stale) == (0, 3)
    assert "old" not in {loc.name for loc in db.session.scalars(select(Location))}


def test_cistring_ids_update_the_same_rows(db_session):
    obj = one_connector_location("T1")
    upsert_locations([copy.deepcopy(obj)], partner=None)
    evse_id = db.session.scalar(select(Evse.id))
    lower = copy.deepcopy(obj)
    lower["id"] = obj["id"].lower()
    lower["evses"][0]["uid"] = "e1"
    lower["evses"][0]["status"] = "CHARGING"
    lower["last_updated"] = "2026-02-01T00:00:00Z"
    result = upsert_locations([lower], partner=None)
    assert (result.stored, result.unchanged) == (1, 0)
    assert counts() == (1, 1, 1)
    evse = db.session.get(Evse, evse_id)
    assert (evse.uid, evse.status) == ("e1", "CHARGING")  # kept as sent, found by its folded key


def test_session_objects_are_not_left_stale(db_session):
    obj = one_connector_location("T1")
    held = upsert_location(copy.deepcopy(obj), partner=None, country_code="NL", party_id="TCP")
    assert held.evses[0].status == "AVAILABLE"
    obj["evses"][0]["status"] = "CHARGING"
    obj["last_updated"] = "2026-03-01T00:00:00Z"
    upsert_locations([obj], partner=None)
    assert held.evses[0].status == "CHARGING"  # expired and read again, not the ORM's old copy
    assert get_location("NL", "TCP", "loc-est").evses[0].status == "CHARGING"


def test_spatial_index_follows_batch_writes(db_session):
    obj = one_connector_location("T1")
    upsert_locations([copy.deepcopy(obj)], partner=None)
    utrecht, rotterdam = Area(52.0894, 5.1103, 2.0), Area(51.9225, 4.4792, 2.0)

    def found(area: Area) -> set[str]:
        place = in_areas([area])
        return set(db.session.scalars(select(Location.ocpi_id).where(place.condition), place.params))

    assert (found(utrecht), found(rotterdam)) == ({"LOC-EST"}, set())
    obj["coordinates"] = {"latitude": "51.922500", "longitude": "4.479200"}
    obj["last_updated"] = "2026-04-01T00:00:00Z"
    upsert_locations([obj], partner=None)
    assert (found(utrecht), found(rotterdam)) == (set(), {"LOC-EST"})


def test_a_concurrent_insert_is_retried_object_by_object(db_session, real_locations, monkeypatch):
    """Another writer stored a location between our read and our write: the batch's INSERT is refused by the
    unique key, the batch is written again object by object, and the retry finds the row and updates it."""
    upsert_locations(copy.deepcopy(real_locations[:1]), partner=None)
    real_held = location_writes._held_locations
    calls = []

    def misses_the_first_time(keys):  # type: ignore[no-untyped-def]
        calls.append(len(keys))
        held = real_held(keys)
        return {} if len(calls) == 1 else held

    monkeypatch.setattr(location_writes, "_held_locations", misses_the_first_time)
    later = copy.deepcopy(real_locations[:5])
    later[0]["name"] = "updated by the retry"
    later[0]["last_updated"] = "2030-01-01T00:00:00Z"
    result = upsert_locations(later, partner=None)
    assert (result.stored, result.errors) == (5, [])
    assert calls == [5, 1, 1, 1, 1, 1]
    assert counts()[0] == 5
    assert get_location(later[0]["country_code"], later[0]["party_id"], later[0]["id"]).name == "updated by the retry"


def test_an_object_the_database_refuses_fails_alone(db_session, real_locations, monkeypatch):
    upsert_locations(copy.deepcopy(real_locations[:1]), partner=None)
    first = real_locations[0]
    refused = (first["country_code"], first["party_id"], first["id"].upper())
    real_held = location_writes._held_locations
    monkeypatch.setattr(
        location_writes, "_held_locations", lambda keys: {k: v for k, v in real_held(keys).items() if k != refused}
    )
    objects = copy.deepcopy(real_locations[:4])
    objects[0]["last_updated"] = "2030-01-01T00:00:00Z"
    result = upsert_locations(objects, partner=None)
    assert result.stored == 3 and len(result.errors) == 1
    index, oid, reason = result.errors[0]
    assert (index, oid) == (0, first["id"]) and reason.startswith("database refused it (")
    assert counts()[0] == 4


def test_worker_processes_give_the_same_report(db_session, tmp_path, real_locations):
    objects = [*copy.deepcopy(real_locations[:20]), {"id": "bad"}, *copy.deepcopy(real_locations[20:30])]
    path = write_gz(tmp_path / "locations.json.gz", objects)  # 6 batches: enough for workers
    inline = import_locations(path, batch_size=6, workers=0)
    inline_objects = stored_objects()
    for model in (Connector, Evse, Location):
        db.session.query(model).delete()
    db.session.commit()
    pooled = import_locations(path, batch_size=6, workers=1)
    assert (pooled.total, pooled.stored, pooled.unchanged, pooled.errors) == (
        inline.total,
        inline.stored,
        inline.unchanged,
        inline.errors,
    )
    assert (pooled.stored, pooled.errors[0][:2]) == (30, (20, "bad"))
    assert stored_objects() == inline_objects
    again = import_locations(path, batch_size=6, workers=1)
    assert (again.stored, again.unchanged) == (30, 30)


def test_what_the_per_object_put_stored_is_recognised_unchanged(db_session, real_locations):
    """JSON documents are compared as stored text first; a document written by the ORM (another text form) is
    still found equal, so nothing is rewritten."""
    for obj in copy.deepcopy(real_locations[:5]):
        upsert_location(obj, partner=None, country_code=obj["country_code"], party_id=obj["party_id"])
    again = upsert_locations(copy.deepcopy(real_locations[:5]), partner=None)
    assert (again.stored, again.unchanged) == (5, 5)
    changed = copy.deepcopy(real_locations[:5])
    changed[4]["evses"][0]["connectors"][0]["tariff_ids"] = ["OTHER"]
    assert upsert_locations(changed, partner=None).unchanged == 4
    db.session.expire_all()
    stored = get_location(changed[4]["country_code"], changed[4]["party_id"], changed[4]["id"])
    assert stored.evses[0].connectors[0].tariff_ids == ["OTHER"]
