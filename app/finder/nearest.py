"""The nearest locations and their result pages in one statement, on PostgreSQL's earthdistance index.

The growing circles of :mod:`app.finder.services` ask the database once per circle, then twice more for the
page's locations, EVSEs and connectors: three to four round trips before any price, and every location of a
circle is read (a thousand in a city centre). Here the GiST index on ``ll_to_earth(latitude, longitude)`` is
walked nearest first (the cube ``<->`` operator: the straight-line distance between two points of a sphere, which
orders exactly as the great-circle distance does) until ``rows`` shown locations are found, and the same
statement joins their live EVSEs and connectors: everything a result shows comes back in one round trip, and the
database touches a few dozen locations whatever the density.

There is deliberately no box condition: with one, PostgreSQL's planner (which guesses a box holds 0.1 % of the
table) prefers reading the whole box and sorting it. Without one the walk is bounded by ``rows`` instead, which is
why only searches whose filters nearly every location passes come here: no connector filter, no operator, not
"my cards" (a rare operator would walk the whole table). The radius is the caller's, as is exactness
(:func:`app.finder.services._nearest_knn`): every location not returned is at least as far on the sphere as the
farthest one returned, so at least ``HAVERSINE_LOW`` times that far on the ellipsoid; when that bound lies beyond
the radius or beyond the page's last result, no location left out can belong to the page; otherwise the caller
asks for more rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Float, Integer, Select, and_, bindparam, cast, func, join, select
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION
from sqlalchemy.orm import aliased

from app.extensions import db
from app.finder.candidates import REMOVED, Candidate, location_conditions
from app.finder.filters import Filters
from app.finder.page import EVSE_CONNECTOR_COLUMNS, LOCATION_COLUMNS, PageConnector, PageEvse, PageLocation
from app.roaming.models import Connector, Evse, Location


@dataclass(slots=True)
class Nearest:
    """What one statement found: the candidates nearest first (by the index) and their pages."""

    candidates: list[Candidate]  # the shown ones
    pages: dict[int, PageLocation]
    farthest: tuple[float, float] | None  # (lat, lon) of the farthest location walked, shown or not
    exhausted: bool  # fewer than ``rows`` were walked: every location of the table was


def _point(lat: Any, lon: Any) -> Any:
    return func.ll_to_earth(lat, lon)


def rows_param() -> Any:
    return bindparam("rows", type_=Integer)


@lru_cache(maxsize=64)
def _statement(filters: Filters) -> Select[Any]:
    """Built once per filters (only the parameters vary): the ``rows`` nearest locations by the index alone, then
    whether each is shown, and the pages of those that are."""
    here = _point(cast(Location.latitude, DOUBLE_PRECISION), cast(Location.longitude, DOUBLE_PRECISION))
    origin = _point(bindparam("lat0", type_=Float), bindparam("lon0", type_=Float))
    chord = here.op("<->", return_type=Float)(origin)
    # The walk on its own: any condition here and the planner may read and sort every location instead.
    near = select(Location.id.label("id"), chord.label("chord")).order_by(chord).limit(rows_param()).subquery("near")
    # An alias: the page's EVSEs are in the same FROM, and would be correlated (an EXISTS over nothing).
    other = aliased(Evse)
    live = (
        select(other.id).where(other.location_id == Location.id, other.status != REMOVED).correlate(Location).exists()
    )
    shown = and_(*location_conditions(filters), live)
    evse_connector = join(Evse, Connector, Connector.evse_id == Evse.id)
    return (
        select(
            Location.id,
            shown,
            cast(Location.latitude, Float),
            cast(Location.longitude, Float),
            *LOCATION_COLUMNS,
            *EVSE_CONNECTOR_COLUMNS,
        )
        .select_from(
            near.join(Location, Location.id == near.c.id).outerjoin(
                evse_connector,
                and_(Evse.location_id == Location.id, Evse.status != REMOVED, Location.publish.is_(True)),
            )
        )
        # Within a location, the CPO's order (as app.finder.page reads it).
        .order_by(near.c.chord, near.c.id, Evse.id, Connector.id)
    )


def applies_to(filters: Filters) -> bool:
    """Whether a search with these filters may walk the index (see the module)."""
    return not filters.on_connector and not filters.operator and not filters.my_cards


def nearest(lat: float, lon: float, filters: Filters, rows: int) -> Nearest:
    """The ``rows`` shown locations nearest to (lat, lon) on the sphere that pass ``filters`` (see
    :func:`applies_to`), with their live EVSEs and connectors, nearest first."""
    assert applies_to(filters)
    params = {"lat0": lat, "lon0": lon, "rows": rows}
    candidates: list[Candidate] = []
    pages: dict[int, PageLocation] = {}
    evses: dict[int, PageEvse] = {}
    walked: set[int] = set()
    farthest = None
    for row in db.session.execute(_statement(filters), params):
        location_id = row[0]
        if location_id not in walked:  # rows come nearest first
            walked.add(location_id)
            farthest = (row[2], row[3])
        if not row[1]:
            continue  # not shown: only its distance counts (see the module)
        page = pages.get(location_id)
        if page is None:
            candidates.append(Candidate(location_id, row[2], row[3], None))
            page = pages[location_id] = _page(row)
        if row[19] is None:
            continue  # no live EVSE with a connector (the location still has a live EVSE: it is shown)
        evse = evses.get(row[19])
        if evse is None:
            evse = evses[row[19]] = PageEvse(row[20], row[21], row[22], row[23], row[24])
            page.evses.append(evse)
        evse.connectors.append(
            PageConnector(row[25], row[26], row[27], row[28], row[29], row[30], row[31], row[32], tuple(row[33] or ()))
        )
    return Nearest(candidates, pages, farthest, len(walked) < rows)


def _page(row: Any) -> PageLocation:
    latitude: Decimal = row[12]
    longitude: Decimal = row[13]
    last_updated: dt.datetime = row[16]
    return PageLocation(
        id=row[0],
        country_code=row[4],
        party_id=row[5],
        ocpi_id=row[6],
        name=row[7],
        address=row[8],
        city=row[9],
        postal_code=row[10],
        country=row[11],
        latitude=latitude,
        longitude=longitude,
        time_zone=row[14],
        operator_name=row[15],
        last_updated=last_updated,
        opening_times=row[17],
        coordinates=row[18],
    )
