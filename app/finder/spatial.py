"""The spatial index of locations, on each database, and the SQL condition "this location lies in that area".

The index (migration 14a1f0a4e004) lives in the database and follows every write to ``roaming_locations``:

- SQLite: the R*Tree ``finder_location_rtree``, filled by triggers;
- PostgreSQL: a GiST index on ``ll_to_earth(latitude, longitude)`` (extensions cube + earthdistance);
- either database without it (PostgreSQL without the extensions, a SQLite whose triggers a table rebuild
  dropped): the B-tree on (latitude, longitude) that ``roaming_locations`` has anyway, as a bounding box.

Every one of them is a *prefilter*: it may return locations somewhat outside the area (boxes are larger than
circles; the R*Tree rounds outwards to 32-bit floats; earth_box is a cube around a sphere), never fewer than are
inside. The exact decision is the geodesic distance (:mod:`app.finder.distance`), in Python.

Which one a database has is looked up once per database URL and process (``FINDER_SPATIAL_INDEX`` = ``auto``);
``bbox`` forces the B-tree (the benchmark compares both).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from flask import current_app
from sqlalchemy import ColumnElement, Float, and_, bindparam, cast, func, or_, select, text
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION

from app.extensions import db
from app.finder.distance import HAVERSINE_LOW, boxes_around
from app.finder.models import EARTH_INDEX, RTREE_TABLE, RTREE_TRIGGERS, location_rtree
from app.roaming.models import Location

log = logging.getLogger(__name__)


class SpatialIndex(enum.StrEnum):
    RTREE = "rtree"  # SQLite R*Tree
    EARTHDISTANCE = "earthdistance"  # PostgreSQL GiST on ll_to_earth
    BBOX = "bbox"  # the B-tree on (latitude, longitude)


@dataclass(frozen=True, slots=True)
class Area:
    """A circle: every point within ``radius_km`` (geodesic) of (lat, lon)."""

    lat: float
    lon: float
    radius_km: float


# earth() of the earthdistance extension is a sphere of 6,378,168 m; our bound is on the mean sphere (6,371,008.8
# m): the same angle is 1.00112 times longer there. 1.002 keeps a margin.
_EARTH_SPHERE_FACTOR = 1.002

_known: dict[str, SpatialIndex] = {}
_lock = threading.Lock()


def spatial_index() -> SpatialIndex:
    """The index the current database offers (looked up once per database and process)."""
    if current_app.config.get("FINDER_SPATIAL_INDEX", "auto") == SpatialIndex.BBOX:
        return SpatialIndex.BBOX
    bind = db.session.get_bind()
    key = bind.engine.url.render_as_string(hide_password=True)
    found = _known.get(key)
    if found is None:
        found = _look_up(bind.dialect.name)
        with _lock:
            _known[key] = found
        if found == SpatialIndex.BBOX:
            log.warning("finder: no spatial index on %s, searching with the (latitude, longitude) B-tree", key)
    return found


def forget_spatial_index() -> None:
    """Look the index up again on next use (after a migration or a test changed it)."""
    with _lock:
        _known.clear()


def _look_up(dialect: str) -> SpatialIndex:
    if dialect == "sqlite":
        names = set(
            db.session.scalars(
                text("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') AND name LIKE :prefix"),
                {"prefix": f"{RTREE_TABLE}%"},
            )
        )
        # Without its triggers the R*Tree goes stale: not using it is better than missing new locations.
        return SpatialIndex.RTREE if {RTREE_TABLE, *RTREE_TRIGGERS} <= names else SpatialIndex.BBOX
    if dialect == "postgresql":
        found = db.session.scalar(
            text("SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = :name"),
            {"name": EARTH_INDEX},
        )
        return SpatialIndex.EARTHDISTANCE if found else SpatialIndex.BBOX
    return SpatialIndex.BBOX


@dataclass(frozen=True, slots=True)
class Place:
    """Where to look, as SQL: a condition with bound parameters, and their values. The condition depends only on
    ``shape`` (the index and how many circles or boxes), so a statement built on it can be reused for every
    search of that shape, with other values."""

    shape: tuple[object, ...]
    condition: ColumnElement[bool]
    params: dict[str, object]


def in_areas(areas: Sequence[Area], index: SpatialIndex | None = None) -> Place:
    """The locations (``roaming_locations`` rows) that lie in one of ``areas`` according to the index: a superset
    of the exact answer."""
    index = index or spatial_index()
    if index == SpatialIndex.EARTHDISTANCE:
        params: dict[str, object] = {}
        for number, area in enumerate(areas):
            params[f"lat{number}"] = area.lat
            params[f"lon{number}"] = area.lon
            params[f"reach{number}"] = area.radius_km / HAVERSINE_LOW * _EARTH_SPHERE_FACTOR * 1000
        shape: tuple[object, ...] = (index, len(areas))
        return Place(shape, area_condition(shape), params)
    boxes = [box for area in areas for box in boxes_around(area.lat, area.lon, area.radius_km)]
    params = {}
    for number, box in enumerate(boxes):
        # Decimal bounds for the B-tree: compared as numeric, the column's own type, so the index serves the range
        # on PostgreSQL (a float parameter would turn the column into float8 and skip the index).
        values = (box.south, box.north, box.west, box.east)
        for name, value in zip(("s", "n", "w", "e"), values, strict=True):
            params[f"{name}{number}"] = value if index == SpatialIndex.RTREE else Decimal(value)
    shape = (index, len(boxes))
    return Place(shape, area_condition(shape), params)


@lru_cache(maxsize=64)
def area_condition(shape: tuple[object, ...]) -> ColumnElement[bool]:
    """The SQL condition of an area layout (see :class:`Place`), with its parameters unbound."""
    index, count = shape
    assert isinstance(count, int)
    if index == SpatialIndex.EARTHDISTANCE:
        point = func.ll_to_earth(cast(Location.latitude, DOUBLE_PRECISION), cast(Location.longitude, DOUBLE_PRECISION))
        return or_(
            *(
                point.op("<@")(
                    func.earth_box(
                        func.ll_to_earth(bindparam(f"lat{n}", type_=Float), bindparam(f"lon{n}", type_=Float)),
                        bindparam(f"reach{n}", type_=Float),
                    )
                )
                for n in range(count)
            )
        )
    if index == SpatialIndex.RTREE:
        rtree = location_rtree.c
        return Location.id.in_(
            select(rtree.id).where(
                or_(
                    *(
                        and_(
                            rtree.max_lat >= bindparam(f"s{n}", type_=Float),
                            rtree.min_lat <= bindparam(f"n{n}", type_=Float),
                            rtree.max_lon >= bindparam(f"w{n}", type_=Float),
                            rtree.min_lon <= bindparam(f"e{n}", type_=Float),
                        )
                        for n in range(count)
                    )
                )
            )
        )
    return or_(
        *(
            and_(
                Location.latitude.between(bindparam(f"s{n}"), bindparam(f"n{n}")),
                Location.longitude.between(bindparam(f"w{n}"), bindparam(f"e{n}")),
            )
            for n in range(count)
        )
    )
