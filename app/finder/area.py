"""What the map shows in its visible area: the locations inside a bounding box, as markers, bounded.

The portal's map asks for the box it shows (west, south, east, north) with the search's filters. The answer is
either every matching location in the box as a :class:`Marker` (at most ``limit``: the map clusters them itself),
or, when the box holds more than that, :class:`Cell` counts on a grid over the box (the map draws them as
clusters and zooms in on a click). Never an arbitrary part of the locations: a map that silently drops some would
tell a driver there is no charger where there is one.

The same rules as every search (:mod:`app.finder.candidates`): published, not REMOVED, not of a REMOVED partner,
the connector filters on the same connector, "open now" in the location's own time zone. The box goes to the
spatial index as a box (SQLite: the R*Tree; elsewhere the (latitude, longitude) B-tree, the natural index of a
box), then each candidate is checked exactly. The box's size is bounded (:data:`MAX_SPAN_LAT`,
:data:`MAX_SPAN_LON`): a country-wide view asks for too much to be answered marker by marker; the map asks the
driver to zoom in.

Read-only.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import bindparam, func, select

from app.extensions import db
from app.finder.candidates import AVAILABLE, REMOVED, Candidate, drop_closed, find_candidates, visible
from app.finder.filters import Filters
from app.finder.power import connector_power_kw, is_dc
from app.finder.queries import FinderInputError
from app.finder.spatial import Place, SpatialIndex, area_condition, spatial_index
from app.roaming.models import Connector, Evse, Location

# The largest box answered, in degrees: a desktop screen at zoom 8 over the Low Countries (~7° × 3°) fits.
MAX_SPAN_LAT = 6.0
MAX_SPAN_LON = 10.0
MAX_BBOX_LENGTH = 120  # characters of the raw parameter: four numbers and three commas
GRID = 12  # cells per side of the box when it holds too many locations for markers
MAX_OPERATORS = 300


@dataclass(frozen=True, slots=True)
class Box:
    """A bounding box in degrees (WGS-84), west < east and south < north (no box across the antimeridian)."""

    west: float
    south: float
    east: float
    north: float

    def __post_init__(self) -> None:
        values = (self.west, self.south, self.east, self.north)
        if not all(isinstance(v, float | int) and math.isfinite(v) for v in values):
            raise FinderInputError("bbox", "must be four numbers: west,south,east,north")
        if not (-180 <= self.west < self.east <= 180):
            raise FinderInputError("bbox", "west and east must be longitudes from -180 to 180, west < east")
        if not (-90 <= self.south < self.north <= 90):
            raise FinderInputError("bbox", "south and north must be latitudes from -90 to 90, south < north")
        if self.north - self.south > MAX_SPAN_LAT or self.east - self.west > MAX_SPAN_LON:
            raise FinderInputError(
                "bbox", f"the area is too large (at most {MAX_SPAN_LAT:g}° by {MAX_SPAN_LON:g}°): zoom in"
            )

    def contains(self, lat: float, lon: float) -> bool:
        return self.south <= lat <= self.north and self.west <= lon <= self.east


def parse_bbox(text: str | None) -> Box:
    """``"west,south,east,north"`` (as Leaflet's ``toBBoxString()`` writes it) → a :class:`Box`, or
    :class:`FinderInputError` naming ``bbox``."""
    if text is None or not text.strip():
        raise FinderInputError("bbox", "is required: west,south,east,north")
    if len(text) > MAX_BBOX_LENGTH:
        raise FinderInputError("bbox", "must be four numbers: west,south,east,north")
    parts = text.split(",")
    if len(parts) != 4:
        raise FinderInputError("bbox", "must be four numbers: west,south,east,north")
    try:
        west, south, east, north = (float(part) for part in parts)
    except ValueError:
        raise FinderInputError("bbox", "must be four numbers: west,south,east,north") from None
    return Box(west, south, east, north)


@dataclass(frozen=True, slots=True)
class Marker:
    location_id: int  # our row id
    country_code: str
    party_id: str
    ocpi_id: str
    name: str | None
    address: str
    lat: float
    lon: float
    max_power_kw: Decimal | None  # of the connectors that meet the filters (all live ones without filters)
    dc: bool  # one of those connectors is DC
    available: bool  # one of their EVSEs is AVAILABLE now


@dataclass(frozen=True, slots=True)
class Cell:
    """The matching locations of one grid cell: how many, where their centre is, and the box around them."""

    count: int
    lat: float
    lon: float
    south: float
    west: float
    north: float
    east: float


@dataclass(frozen=True, slots=True)
class AreaMarkers:
    total: int  # matching locations in the box
    markers: tuple[Marker, ...]  # all of them, when total <= limit; else empty
    cells: tuple[Cell, ...]  # when total > limit: the grid counts instead


def box_place(box: Box) -> Place:
    """The box as the spatial index's place: R*Tree boxes on SQLite, else the (latitude, longitude) B-tree."""
    index = SpatialIndex.RTREE if spatial_index() == SpatialIndex.RTREE else SpatialIndex.BBOX
    shape = (index, 1)
    bounds = {"s0": box.south, "n0": box.north, "w0": box.west, "e0": box.east}
    params: dict[str, object] = dict(bounds)
    if index == SpatialIndex.BBOX:
        # Numeric bounds for the numeric columns, so PostgreSQL uses the B-tree (see spatial.in_areas).
        params = {name: Decimal(repr(value)) for name, value in bounds.items()}
    return Place(shape, area_condition(shape), params)


def markers_in_area(box: Box, filters: Filters, *, limit: int, at: dt.datetime) -> AreaMarkers:
    """The locations in ``box`` that pass ``filters``: markers when at most ``limit``, else grid cells."""
    found = [c for c in find_candidates(box_place(box), filters).values() if box.contains(c.lat, c.lon)]
    if filters.open_now:
        found = drop_closed(found, at)
    if len(found) > limit:
        return AreaMarkers(len(found), (), _cells(box, found))
    return AreaMarkers(len(found), _markers(found), ())


def _cells(box: Box, candidates: Iterable[Candidate]) -> tuple[Cell, ...]:
    height = (box.north - box.south) / GRID
    width = (box.east - box.west) / GRID
    groups: dict[tuple[int, int], list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        row = min(int((candidate.lat - box.south) / height), GRID - 1)
        column = min(int((candidate.lon - box.west) / width), GRID - 1)
        groups[(row, column)].append(candidate)
    cells = []
    for key in sorted(groups):
        members = groups[key]
        lats = [c.lat for c in members]
        lons = [c.lon for c in members]
        cells.append(
            Cell(
                count=len(members),
                lat=sum(lats) / len(lats),
                lon=sum(lons) / len(lons),
                south=min(lats),
                west=min(lons),
                north=max(lats),
                east=max(lons),
            )
        )
    return tuple(cells)


_MARKER_LOCATIONS = select(
    Location.id,
    Location.country_code,
    Location.party_id,
    Location.ocpi_id,
    Location.name,
    Location.address,
).where(Location.id.in_(bindparam("ids", expanding=True)))

_MARKER_CONNECTORS = (
    select(
        Evse.location_id,
        Connector.id,
        Evse.status,
        Connector.power_type,
        Connector.max_voltage,
        Connector.max_amperage,
        Connector.max_electric_power,
    )
    .join(Connector, Connector.evse_id == Evse.id)
    .where(Evse.location_id.in_(bindparam("ids", expanding=True)), Evse.status != REMOVED)
)


def _markers(candidates: list[Candidate]) -> tuple[Marker, ...]:
    """What a marker says of each location, in two plain queries (no JSON documents read)."""
    if not candidates:
        return ()
    ids = [c.location_id for c in candidates]
    matching = {c.location_id: None if c.matching is None else set(c.matching) for c in candidates}
    power: dict[int, Decimal | None] = {}
    dc: dict[int, bool] = defaultdict(bool)
    available: dict[int, bool] = defaultdict(bool)
    for location_id, connector_id, status, power_type, voltage, amperage, raw in db.session.execute(
        _MARKER_CONNECTORS, {"ids": ids}
    ):
        wanted = matching.get(location_id)
        if wanted is not None and connector_id not in wanted:
            continue
        kw = connector_power_kw(power_type, voltage, amperage, raw)
        best = power.get(location_id)
        if kw is not None and (best is None or kw > best):
            power[location_id] = kw
        dc[location_id] |= is_dc(power_type)
        available[location_id] |= status == AVAILABLE
    rows = {row[0]: row for row in db.session.execute(_MARKER_LOCATIONS, {"ids": ids})}
    markers = []
    for candidate in sorted(candidates, key=lambda c: c.location_id):
        row = rows.get(candidate.location_id)
        if row is None:
            continue  # deleted between the two reads: not shown rather than half shown
        _, country_code, party_id, ocpi_id, name, address = row
        markers.append(
            Marker(
                location_id=candidate.location_id,
                country_code=country_code,
                party_id=party_id,
                ocpi_id=ocpi_id,
                name=name,
                address=address,
                lat=candidate.lat,
                lon=candidate.lon,
                max_power_kw=power.get(candidate.location_id),
                dc=dc[candidate.location_id],
                available=available[candidate.location_id],
            )
        )
    return tuple(markers)


def known_operators() -> list[str]:
    """The operators of the locations drivers may see, by name (for the operator filter's suggestions)."""
    rows = db.session.scalars(
        select(Location.operator_name)
        .where(*visible(), Location.operator_name.is_not(None))
        .group_by(Location.operator_name)
        .order_by(func.lower(Location.operator_name))
        .limit(MAX_OPERATORS)
    )
    return [name for name in rows if name and name.strip()]
