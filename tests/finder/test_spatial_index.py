"""The spatial index: the one each database offers, kept in step with every write to locations by the database
itself, equal in answers to the plain B-tree, and outside the models (the schema comparison skips exactly it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import delete, func, select, text

from app import create_app
from app.extensions import db
from app.finder.models import RTREE_TABLE, include_in_schema_comparison, location_rtree
from app.finder.queries import NearbyQuery
from app.finder.services import search_nearby
from app.finder.spatial import SpatialIndex, forget_spatial_index, spatial_index
from app.roaming.models import Location
from app.roaming.receive.locations import upsert_location
from tests.finder.builders import AT, add_location, location_object


@pytest.fixture
def fresh_lookup(app: Flask) -> Iterator[None]:
    forget_spatial_index()
    yield
    forget_spatial_index()


def dialect() -> str:
    return db.session.get_bind().dialect.name


def found_near(lat: float, lon: float, radius_km: float = 0.5) -> list[str | None]:
    return [item.name for item in search_nearby(NearbyQuery(lat, lon, radius_km=radius_km), at=AT).items]


def test_each_database_has_its_index(db_session, fresh_lookup):
    expected = {"sqlite": SpatialIndex.RTREE, "postgresql": SpatialIndex.EARTHDISTANCE}[dialect()]
    assert spatial_index() == expected


def test_the_index_follows_inserts_moves_and_deletes(db_session, fresh_lookup):
    obj = location_object(52.0, 5.0, name="mobile")
    stored = upsert_location(obj, partner=None, country_code="NL", party_id="TCP")
    assert found_near(52.0, 5.0) == ["mobile"]
    # The CPO moves it (a newer full PUT): found at the new place only.
    moved = {**obj, "coordinates": {"latitude": "52.300000", "longitude": "5.400000"}}
    moved["last_updated"] = "2026-02-01T00:00:00Z"
    upsert_location(moved, partner=None, country_code="NL", party_id="TCP")
    assert found_near(52.0, 5.0) == []
    assert found_near(52.3, 5.4) == ["mobile"]
    if dialect() == "sqlite":
        box = db.session.execute(select(location_rtree).where(location_rtree.c.id == stored.id)).one()
        assert box.min_lat == pytest.approx(52.3, abs=1e-5) and box.max_lon == pytest.approx(5.4, abs=1e-5)
    # A row deleted by any means (an operator's fix, a cascade) leaves the index with it.
    db.session.execute(delete(Location).where(Location.id == stored.id))
    assert found_near(52.3, 5.4) == []
    if dialect() == "sqlite":
        assert db.session.scalar(select(func.count()).select_from(location_rtree)) == db.session.scalar(
            select(func.count()).select_from(Location)
        )


def test_the_btree_answers_the_same(app, db_session, fresh_lookup):
    for number in range(40):
        add_location(52.0 + (number % 7) * 0.011, 5.0 + (number // 7) * 0.017, name=f"L{number}")
    queries = [NearbyQuery(52.03, 5.04, radius_km=r, limit=100) for r in (0.5, 1, 2.5, 6)]
    with_index = [[i.name for i in search_nearby(q, at=AT).items] for q in queries]
    app.config["FINDER_SPATIAL_INDEX"] = "bbox"
    try:
        assert spatial_index() == SpatialIndex.BBOX
        assert [[i.name for i in search_nearby(q, at=AT).items] for q in queries] == with_index
    finally:
        app.config["FINDER_SPATIAL_INDEX"] = "auto"
    assert [len(names) for names in with_index] == sorted(len(names) for names in with_index)
    assert len(with_index[-1]) == 40


def test_without_a_trustworthy_index_the_btree_serves(db_session, fresh_lookup):
    """SQLite: an R*Tree without its triggers (a table rebuild drops them) would miss new locations; PostgreSQL:
    the expression index may be missing (no extensions). Either way the (latitude, longitude) B-tree serves."""
    if dialect() == "sqlite":
        statement = "DROP TRIGGER finder_location_rtree_insert"
    else:
        statement = "DROP INDEX ix_roaming_locations_earth"
    db.session.execute(text(statement))  # undone with the test's transaction
    assert spatial_index() == SpatialIndex.BBOX
    add_location(52.0, 5.0, name="new")
    assert found_near(52.0, 5.0) == ["new"]


def test_models_and_migrations_match_but_for_the_spatial_index(db_session):
    connection = db.session.connection()
    skipping = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": include_in_schema_comparison}
    )
    assert compare_metadata(skipping, db.metadata) == []
    everything = MigrationContext.configure(connection, opts={"compare_type": True})
    skipped = {_object_name(diff) for diff in compare_metadata(everything, db.metadata)}
    expected = {
        "sqlite": {RTREE_TABLE, f"{RTREE_TABLE}_node", f"{RTREE_TABLE}_parent", f"{RTREE_TABLE}_rowid"},
        "postgresql": {"ix_roaming_locations_earth"},
    }[dialect()]
    assert skipped == expected


def _object_name(diff: object) -> str:
    kind, thing = diff[0], diff[1]  # type: ignore[index]
    assert kind in ("remove_table", "remove_index"), diff
    return str(thing.name)


def test_the_migration_goes_back_and_indexes_existing_locations(tmp_path: Path):
    """On a SQLite database of its own: down removes the R*Tree and its triggers; up indexes the locations
    stored meanwhile."""
    url = f"sqlite:///{tmp_path / 'migration.sqlite3'}"
    other = create_app("test", SQLALCHEMY_DATABASE_URI=url)
    forget_spatial_index()
    try:
        with other.app_context():
            upgrade()
            downgrade(revision="13e5d0a7e007")
            leftovers = db.session.scalars(text("SELECT name FROM sqlite_master WHERE name LIKE 'finder_location%'"))
            assert set(leftovers) == set()
            db.session.remove()
            upgrade()  # the finder's tables again; the location below is stored after its own revision's tables
            downgrade(revision="13e5d0a7e007")
            db.session.remove()
            upgrade(revision="14a1f0a4e004")
            db.session.execute(text("DROP TRIGGER finder_location_rtree_insert"))
            upsert_location(
                location_object(51.5, 4.5, name="stored without the index"),
                partner=None,
                country_code="NL",
                party_id="TCP",
            )
            db.session.commit()
            assert db.session.scalar(select(func.count()).select_from(location_rtree)) == 0
            db.session.remove()  # end the read: the migrations run on their own connection
            downgrade(revision="13e5d0a7e007")
            upgrade()
            assert db.session.scalar(select(func.count()).select_from(location_rtree)) == 1
            forget_spatial_index()
            assert spatial_index() == SpatialIndex.RTREE
            assert found_near(51.5, 4.5) == ["stored without the index"]
            db.session.remove()
            db.engine.dispose()
    finally:
        forget_spatial_index()
