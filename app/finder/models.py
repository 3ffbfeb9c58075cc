"""The finder's tables.

The spatial index of locations is not a model of ``db.metadata``: on SQLite it is an R*Tree virtual table kept by
triggers, on PostgreSQL a GiST index on an expression of ``roaming_locations`` (migration 14a1f0a4e004, see
:mod:`app.finder.spatial`). :data:`location_rtree` describes the R*Tree for typed Core queries; it lives in its own
``MetaData`` so that ``create_all`` and Alembic's comparison never see it (it exists on SQLite only).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, MetaData, Table

RTREE_TABLE = "finder_location_rtree"
RTREE_TRIGGERS = ("finder_location_rtree_insert", "finder_location_rtree_move", "finder_location_rtree_delete")
EARTH_INDEX = "ix_roaming_locations_earth"  # PostgreSQL: GiST on ll_to_earth(latitude, longitude)

# One entry per roaming_locations row: a point stored as a degenerate box (min = max). R*Tree coordinates are
# 32-bit floats rounded outwards, so a box query may return a few metres too much, never too little.
location_rtree = Table(
    RTREE_TABLE,
    MetaData(),
    Column("id", Integer, primary_key=True),  # roaming_locations.id
    Column("min_lat", Float),
    Column("max_lat", Float),
    Column("min_lon", Float),
    Column("max_lon", Float),
)


def include_in_schema_comparison(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name`` hook: the spatial index is not described by the models (see the module), so the
    comparison of models and migrations (and ``flask db migrate``) must not propose to drop it. Skips the R*Tree
    with its shadow tables (``_node``, ``_parent``, ``_rowid``) and the PostgreSQL expression index."""
    if type_ == "table" and name is not None and (name == RTREE_TABLE or name.startswith(f"{RTREE_TABLE}_")):
        return False
    return not (type_ == "index" and name == EARTH_INDEX)


# -- Geocoding: answers of the geocoder, cached (app/finder/geocoding.py) --
# Imported here rather than at the top: this part is appended to the spatial index's module, which needs none of it.
import datetime as dt  # noqa: E402

from sqlalchemy import CheckConstraint, String, UniqueConstraint  # noqa: E402
from sqlalchemy.orm import Mapped, mapped_column  # noqa: E402

from app.db import str_enum  # noqa: E402
from app.extensions import Model  # noqa: E402
from app.finder.gazetteer import PlaceKind  # noqa: E402


class GeocodeAnswer(Model):
    """What the geocoder answered to one typed place, so the same question is not asked again.

    The key is the query (case and spaces folded), the provider ("offline", "nominatim", "photon"), the language
    of the answer and the country hint ("" when none: NULL would not be unique). ``found`` false records an unknown
    place, kept for a shorter time. How long an answer stays fresh is configuration (``GEOCODER_CACHE_SECONDS``,
    ``GEOCODER_NEGATIVE_CACHE_SECONDS``), applied to ``fetched_at`` when read; a stale answer is asked again and
    overwritten in place.
    """

    __tablename__ = "finder_geocode_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(8))
    country_hint: Mapped[str] = mapped_column(String(2))
    query_key: Mapped[str] = mapped_column(String(400))
    found: Mapped[bool]
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    label: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[PlaceKind | None] = mapped_column(str_enum(PlaceKind, length=10))
    country: Mapped[str | None] = mapped_column(String(2))
    fetched_at: Mapped[dt.datetime]

    __table_args__ = (
        # Named here: the convention's name (all four columns) is longer than PostgreSQL's 63 characters.
        UniqueConstraint("provider", "language", "country_hint", "query_key", name="uq_finder_geocode_answers_key"),
        CheckConstraint(
            "NOT found OR (latitude IS NOT NULL AND longitude IS NOT NULL AND label IS NOT NULL AND kind IS NOT NULL)",
            name="found_has_place",
        ),
    )
