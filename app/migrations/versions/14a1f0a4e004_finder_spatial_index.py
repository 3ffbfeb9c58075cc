"""finder: spatial index on locations

Revision ID: 14a1f0a4e004
Revises: 13e5d0a7e007
Create Date: 2026-12-06 23:40:00.000000

The finder searches locations by area (app/finder/spatial.py). The index lives in the database, so it follows
every write to roaming_locations whoever makes it (the OCPI door, the pull client, the importers, a manual fix):

- SQLite: an R*Tree virtual table ``finder_location_rtree`` (a point per location, stored as a degenerate box)
  kept in step by three triggers on roaming_locations (insert, move, delete). A later migration that rebuilds
  roaming_locations on SQLite (Alembic batch mode: copy, drop, rename) drops these triggers with the old table:
  it must call ``create_sqlite_triggers`` again (the R*Tree itself survives, the ids do not change).
- PostgreSQL: the cube and earthdistance extensions and a GiST index on ``ll_to_earth(latitude, longitude)``,
  which PostgreSQL maintains itself. Where the extensions cannot be installed (a managed server without them,
  or a user without the right), nothing is created here and the finder uses the B-tree on (latitude, longitude)
  that roaming_locations already has (ix_roaming_locations_lat_lon), as a bounding-box prefilter.

Neither is a model of db.metadata (a virtual table and an expression index exist on one database only): the
comparison of models and migrations skips them (app.finder.spatial.include_in_schema_comparison).
"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '14a1f0a4e004'
down_revision = '13e5d0a7e007'
branch_labels = None
depends_on = None

RTREE = "finder_location_rtree"
TRIGGERS = ("finder_location_rtree_insert", "finder_location_rtree_move", "finder_location_rtree_delete")
EARTH_INDEX = "ix_roaming_locations_earth"


def create_sqlite_triggers(bind):
    bind.exec_driver_sql(
        f"CREATE TRIGGER IF NOT EXISTS {TRIGGERS[0]} AFTER INSERT ON roaming_locations BEGIN "
        f"INSERT INTO {RTREE} (id, min_lat, max_lat, min_lon, max_lon) "
        "VALUES (new.id, new.latitude, new.latitude, new.longitude, new.longitude); END"
    )
    bind.exec_driver_sql(
        f"CREATE TRIGGER IF NOT EXISTS {TRIGGERS[1]} AFTER UPDATE OF latitude, longitude ON roaming_locations BEGIN "
        f"UPDATE {RTREE} SET min_lat = new.latitude, max_lat = new.latitude, "
        "min_lon = new.longitude, max_lon = new.longitude WHERE id = new.id; END"
    )
    bind.exec_driver_sql(
        f"CREATE TRIGGER IF NOT EXISTS {TRIGGERS[2]} AFTER DELETE ON roaming_locations BEGIN "
        f"DELETE FROM {RTREE} WHERE id = old.id; END"
    )


def _earthdistance_available(bind):
    names = {
        row[0]
        for row in bind.exec_driver_sql(
            "SELECT name FROM pg_available_extensions WHERE name IN ('cube', 'earthdistance')"
        )
    }
    return names == {"cube", "earthdistance"}


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql(f"CREATE VIRTUAL TABLE {RTREE} USING rtree(id, min_lat, max_lat, min_lon, max_lon)")
        bind.exec_driver_sql(
            f"INSERT INTO {RTREE} (id, min_lat, max_lat, min_lon, max_lon) "
            "SELECT id, latitude, latitude, longitude, longitude FROM roaming_locations"
        )
        create_sqlite_triggers(bind)
    elif bind.dialect.name == "postgresql":
        if not _earthdistance_available(bind):
            return
        # A savepoint: without the right to create extensions the statement fails, and the migration goes on
        # without the index (the finder then uses the lat/lon B-tree).
        savepoint = bind.begin_nested()
        try:
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS cube")
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS earthdistance")
        except sa.exc.DBAPIError:
            savepoint.rollback()
            return
        savepoint.commit()
        bind.exec_driver_sql(
            f"CREATE INDEX {EARTH_INDEX} ON roaming_locations "
            "USING gist (ll_to_earth(latitude::float8, longitude::float8))"
        )


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for trigger in TRIGGERS:
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")
        bind.exec_driver_sql(f"DROP TABLE IF EXISTS {RTREE}")
    elif bind.dialect.name == "postgresql":
        # The extensions stay: other objects of the database may use them by now.
        bind.exec_driver_sql(f"DROP INDEX IF EXISTS {EARTH_INDEX}")
