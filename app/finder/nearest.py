"""The nearest locations and their result pages in one statement, on PostgreSQL's earthdistance index.

The growing circles of :mod:`app.finder.services` ask the database once per circle, then twice more for the
page's locations, EVSEs and connectors, and every location of a circle is read (a thousand in a city centre).
Here the GiST index on ``ll_to_earth(latitude, longitude)`` is walked nearest first (the cube ``<->`` operator:
the straight-line distance between two points of a sphere, which orders exactly as the great-circle distance
does) for ``rows`` locations, and the same statement says which of them the search shows and joins the live EVSEs
and connectors of those: everything a result shows comes back in one round trip, and the database touches a few
dozen locations whatever the density.

The walk itself carries no condition, not even a box: with one, PostgreSQL's planner (which guesses a box holds
0.1 % of the table) prefers reading the whole box and sorting it. What the search asks of a location (published,
a live EVSE, the operator, "my cards", a connector meeting the connector filters) is decided for each location
walked, in the walk's select list, and only the locations that pass bring their EVSEs and connectors. Which
connectors meet the filters is said per row (SQL decides standard, AC/DC and availability; the minimum power is
decided here, with :func:`app.finder.candidates.meets_power`, as for the circles). A page after a cursor walks
from the cursor's distance on (``floor``: every location nearer on the sphere surely lies before the cursor).

The radius is the caller's, as is exactness (:func:`app.finder.services._walk_nearest`): every location not
returned is at least as far on the sphere as the farthest one walked, so at least ``HAVERSINE_LOW`` times that far
on the ellipsoid; when that bound lies beyond the radius or beyond the page's last result, no location left out
can belong to the page; otherwise the caller walks further.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Float, Integer, Select, and_, bindparam, cast, func, join, literal, select, true
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION
from sqlalchemy.orm import aliased

from app.extensions import db
from app.finder.candidates import REMOVED, Candidate, connector_conditions, location_conditions, meets_power
from app.finder.distance import EARTH_MEAN_RADIUS_KM, HAVERSINE_HIGH
from app.finder.filters import Filters
from app.finder.page import (
    EVSE_CONNECTOR_COLUMNS,
    LOCATION_COLUMNS,
    LazyPages,
    PageLocation,
)
from app.roaming.models import Connector, Evse, Location

# Where the statement's rows hold the page's location (its id, then LOCATION_COLUMNS) and its EVSE and connector
# (EVSE_CONNECTOR_COLUMNS), after the walk's id, shown, lat and lon; the last column says whether the connector
# meets the connector filters SQL decides.
_LOCATION_AT = 4
_EVSE_AT = _LOCATION_AT + 1 + len(LOCATION_COLUMNS)
_MATCHES_AT = _EVSE_AT + len(EVSE_CONNECTOR_COLUMNS)
_CONNECTOR_AT = _EVSE_AT + 6  # the connector's row id, then its id, standard, format, power figures
_POWER_AT = _CONNECTOR_AT + 4  # power type, voltage, amperage, max electric power
# The sphere of earthdistance's earth(): 6,378,168 m.
EARTH_SPHERE_M = 6_378_168.0
# A cursor's floor is lowered by this much (m): the index's float rounding of ~6,400 km coordinates, far below a
# centimetre, far above the error.
_FLOOR_ROUNDING_M = 0.01


@dataclass(slots=True)
class Walk:
    """What one statement found: the walked locations that pass the filters decided per row ("open now" is the
    caller's), nearest first, with their pages."""

    candidates: list[Candidate]
    pages: Mapping[int, PageLocation]  # of the shown ones, built when asked for
    farthest: tuple[float, float] | None  # (lat, lon) of the farthest location walked, shown or not
    walked: int  # locations walked
    exhausted: bool  # fewer than ``rows`` were walked: every location of the table (beyond the floor) was


def _point(lat: Any, lon: Any) -> Any:
    return func.ll_to_earth(lat, lon)


def chord_floor_m(after_km: float) -> float:
    """The chord (m, on earth()'s sphere) below which a location lies surely before a cursor at ``after_km``
    (geodesic): its haversine distance times ``HAVERSINE_HIGH`` is below ``after_km``, the test
    :func:`app.finder.services._first_by_distance` skips such a location with."""
    angle = after_km / HAVERSINE_HIGH / EARTH_MEAN_RADIUS_KM
    if angle >= math.pi:
        return 2 * EARTH_SPHERE_M
    return max(0.0, 2 * EARTH_SPHERE_M * math.sin(angle / 2) - _FLOOR_ROUNDING_M)


@lru_cache(maxsize=128)
def _statement(filters: Filters, paged: bool) -> Select[Any]:
    """Built once per filters and kind of page (only the parameters vary): the ``rows`` nearest locations by the
    index alone (beyond ``floor`` when ``paged``), whether each is shown, and the pages of those that are."""
    here = _point(cast(Location.latitude, DOUBLE_PRECISION), cast(Location.longitude, DOUBLE_PRECISION))
    origin = _point(bindparam("lat0", type_=Float), bindparam("lon0", type_=Float))
    chord = here.op("<->", return_type=Float)(origin)
    # Aliases: the conditions are correlated to the walk's location, not to the page's EVSEs and connectors.
    evse, connector = aliased(Evse), aliased(Connector)
    live = select(literal(True).label("found")).where(evse.location_id == Location.id, evse.status != REMOVED)
    if filters.on_connector:
        live = live.select_from(evse).join(connector, connector.evse_id == evse.id)
        live = live.where(*connector_conditions(filters, evse, connector))
    # A lateral probe rather than EXISTS: the planner may answer an EXISTS by hashing every EVSE (and connector)
    # of the table first, which pays at 7,000 locations and ruins a million; a lateral subquery is a lookup by
    # index per location walked, whatever the planner guesses.
    probe = live.limit(1).lateral("live")
    shown = and_(*location_conditions(filters), probe.c.found.is_not(None))
    # The walk on its own: the index scan and its limit, nothing the planner could trade them for.
    walk = select(
        Location.id.label("id"),
        chord.label("chord"),
        cast(Location.latitude, Float).label("lat"),
        cast(Location.longitude, Float).label("lon"),
    )
    if paged:
        walk = walk.where(chord >= bindparam("floor", type_=Float))
    rows = bindparam("rows", type_=Integer)
    near = walk.order_by(chord).limit(rows).subquery("near")
    # Whether each walked location is shown, once per location: computed above the walk's limit (the planner
    # then counts on ``rows`` locations, and looks each one's EVSEs up by index, where below it, counting on the
    # whole table, it would hash every EVSE first), and behind a limit of its own so that it stays a step of its
    # own (a subquery without one is merged into the statement around it, which then evaluates ``shown`` per
    # row it joins).
    walked = (
        select(near.c.id, near.c.chord, near.c.lat, near.c.lon, shown.label("shown"))
        .select_from(near.join(Location, Location.id == near.c.id).outerjoin(probe, true()))
        .limit(rows)
        .subquery("walked")
    )
    matches = and_(true(), *connector_conditions(filters))
    return (
        select(
            walked.c.id,
            walked.c.shown,
            walked.c.lat,
            walked.c.lon,
            Location.id,
            *LOCATION_COLUMNS,
            *EVSE_CONNECTOR_COLUMNS,
            matches,
        )
        .select_from(
            walked.outerjoin(Location, and_(Location.id == walked.c.id, walked.c.shown)).outerjoin(
                join(Evse, Connector, Connector.evse_id == Evse.id),
                and_(Evse.location_id == walked.c.id, walked.c.shown, Evse.status != REMOVED),
            )
        )
        # Within a location, the CPO's order (as app.finder.page reads it).
        .order_by(walked.c.chord, walked.c.id, Evse.id, Connector.id)
    )


def walk(lat: float, lon: float, filters: Filters, rows: int, floor_m: float | None = None) -> Walk:
    """The ``rows`` locations nearest to (lat, lon) on the sphere (those at least ``floor_m`` away, when given),
    and among them the ones that pass ``filters`` but "open now", with their live EVSEs and connectors and the
    connectors that meet the connector filters, nearest first."""
    params: dict[str, object] = {"lat0": lat, "lon0": lon, "rows": rows}
    if floor_m is not None:
        params["floor"] = floor_m
    statement = _statement(filters, floor_m is not None)
    min_watts: Decimal | None = None if filters.min_power_kw is None else filters.min_power_kw * 1000
    on_connector = filters.on_connector
    candidates: list[Candidate] = []
    shown: dict[int, list[Any]] = {}  # the rows of each shown location, its page built when asked for
    walked = 0
    farthest = None
    current = -1
    location_rows: list[Any] | None = None
    matching: list[int] | None = None
    for row in db.session.connection().execute(statement, params).all():
        location_id = row[0]
        if location_id != current:  # rows come nearest first, a location's rows together
            current = location_id
            walked += 1
            farthest = (row[2], row[3])
            location_rows = matching = None
            if not row[1]:
                continue  # not shown: only its distance counts (see the module)
            location_rows = shown[location_id] = []
            matching = [] if on_connector else None
            candidates.append(Candidate(location_id, row[2], row[3], matching))
        if location_rows is None:
            continue
        location_rows.append(row)
        if matching is not None and row[_EVSE_AT] is not None and row[_MATCHES_AT] and _meets_power(min_watts, row):
            matching.append(row[_CONNECTOR_AT])
    if on_connector:
        candidates = [candidate for candidate in candidates if candidate.matching]
    return Walk(candidates, LazyPages(shown, _LOCATION_AT, _EVSE_AT), farthest, walked, walked < rows)


def _meets_power(min_watts: Decimal | None, row: Any) -> bool:
    power_type, voltage, amperage, raw = row[_POWER_AT : _POWER_AT + 4]
    return meets_power(min_watts, power_type, voltage, amperage, raw)
