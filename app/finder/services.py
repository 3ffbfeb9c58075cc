"""The finder's use cases, one entry point for every door: where can I charge, and what will it cost me?

- :func:`search_nearby`: locations within a radius of a point, nearest first (or cheapest first for the driver),
  a page at a time;
- :func:`search_along_route`: locations within a corridor of a route (Google encoded polyline), in the order the
  route reaches them;
- :func:`location_details`: one location as a result (the map's details panel, the API's one-location read).

How a nearest-first page is found exactly without measuring every location: the index is asked for a small
circle first (0.5 km beyond the cursor), growing (to about where ``limit + 1`` results should be, from the
density seen) until the circle holds ``limit + 1`` results beyond the cursor, or reaches the radius. Inside a
circle of radius r the results are complete up to r, so the first ``limit`` of them are the first of the whole
search. Distances are geodesic, measured only where the haversine bound cannot decide (:mod:`app.finder.distance`).
On PostgreSQL a nearest-first page (the first or one after a cursor, with any filters) is instead read in one
statement that walks the index nearest first and brings the page's EVSEs and connectors with it
(:mod:`app.finder.nearest`; the proof of exactness is in :func:`_walk_nearest`); it falls back on the circles
when the filters keep so few locations that the walk would read more than :data:`_WALK_MAX_ROWS`.

Read-only: nothing here writes, so the doors need no commit.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import insort
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from app.accounts.models import Account
from app.db import utcnow
from app.extensions import db
from app.finder.candidates import Candidate, at_location, drop_closed, find_candidates, in_area, location_zone
from app.finder.cheapest import priced_candidates
from app.finder.cursors import CursorError, Key, decode_cursor, encode_cursor, fingerprint
from app.finder.distance import HAVERSINE_HIGH, HAVERSINE_LOW, geodesic_km, haversine_km
from app.finder.filters import NO_FILTERS, Filters
from app.finder.nearest import chord_floor_m, walk
from app.finder.opening_hours import open_at
from app.finder.page import PageLocation, hours_from_json
from app.finder.prices import PriceBook
from app.finder.queries import FinderInputError, NearbyQuery, RouteQuery, SortOrder
from app.finder.results import LocationResult, SearchPage, build_results, price_order
from app.finder.route import Passage, PolylineError, decode_polyline, passage, stretches
from app.finder.spatial import Area, SpatialIndex, spatial_index
from app.ocpi_ids import ci_key
from app.roaming.models import Location

FIRST_RING_KM = 0.5
# The nearest-first walk reads this many locations beyond the page (and the one that says whether more follow),
# so that the bound of the farthest one read covers the page's last result almost always: the haversine and
# geodesic orders differ by up to 0.6 %.
_KNN_SPARE_ROWS = 10
# Float rounding of the index's distance (cube coordinates of ~6,400 km in doubles) and of ours, in km: far
# below a centimetre, far above the error.
_KNN_ROUNDING_KM = 1e-6
# The most locations one walk reads: beyond, the filters keep few of them, and the circles, with the filters in
# SQL, cost less (on the shared data, fast DC, DC only and one operator with walks capped at 0, 300, 1,000 and
# unbounded: 300 was the fastest or within noise of it for each).
_WALK_MAX_ROWS = 300
_GROWTH_MARGIN = 1.3  # ask for a bit more area than the density seen suggests: one more ring costs a query


# --- nearest first --------------------------------------------------------------------------------------------


def _measure(candidate: Candidate, lat: float, lon: float) -> float:
    if candidate.exact_km is None:
        candidate.exact_km = geodesic_km(lat, lon, candidate.lat, candidate.lon)
    return candidate.exact_km


def _first_by_distance(
    candidates: Iterable[Candidate],
    lat: float,
    lon: float,
    within_km: float,
    after: tuple[float, int] | None,
    need: int,
) -> list[Candidate]:
    """The first ``need`` candidates by (geodesic distance, id) within ``within_km`` and after ``after``, measuring
    exactly only the candidates the haversine bounds cannot place (``haversine_km`` must be set)."""
    ordered = sorted(
        (c for c in candidates if c.haversine_km * HAVERSINE_LOW <= within_km), key=lambda c: c.haversine_km
    )
    kept: list[tuple[float, int, Candidate]] = []
    for candidate in ordered:
        if len(kept) >= need and candidate.haversine_km * HAVERSINE_LOW > kept[need - 1][0]:
            break  # this one and every later one are farther than the last kept
        if after is not None and candidate.haversine_km * HAVERSINE_HIGH < after[0]:
            continue  # surely nearer than the cursor: on an earlier page
        exact = _measure(candidate, lat, lon)
        if exact > within_km or (after is not None and (exact, candidate.location_id) <= after):
            continue
        insort(kept, (exact, candidate.location_id, candidate), key=lambda item: item[:2])
    return [candidate for _, _, candidate in kept[:need]]


def _in_area(query: NearbyQuery, radius_km: float, at: dt.datetime, measured: dict[int, float]) -> list[Candidate]:
    """The candidates of one circle, with their haversine bound (and exact distances already measured)."""
    found = find_candidates(in_area([Area(query.lat, query.lon, radius_km)]), query.filters)
    within = []
    for candidate in found.values():
        candidate.haversine_km = haversine_km(query.lat, query.lon, candidate.lat, candidate.lon)
        if candidate.haversine_km * HAVERSINE_LOW <= radius_km:
            candidate.exact_km = measured.get(candidate.location_id)
            within.append(candidate)
    if query.filters.open_now:
        within = drop_closed(within, at)
    return within


def _nearest(
    query: NearbyQuery, after: tuple[float, int] | None, at: dt.datetime, first_km: float | None = None
) -> tuple[list[Candidate], bool]:
    """The page (and whether more follow), growing the circle until it holds the page (see the module), from a
    first circle of ``first_km`` when the walk handed the search over (else just beyond the cursor)."""
    need = query.limit + 1
    start = after[0] if after is not None else 0.0
    radius = min(query.radius_km, first_km or start + FIRST_RING_KM)
    measured: dict[int, float] = {}
    while True:
        candidates = _in_area(query, radius, at, measured)
        chosen = _first_by_distance(candidates, query.lat, query.lon, radius, after, need)
        if len(chosen) >= need or radius >= query.radius_km:
            return chosen[: query.limit], len(chosen) >= need
        measured.update((c.location_id, c.exact_km) for c in candidates if c.exact_km is not None)
        radius = min(query.radius_km, max(_reach(start, radius, need, max(len(chosen), 1)), radius * 2))


def _reach(start: float, radius: float, need: int, found: float) -> float:
    """How far the page reaches (km), from the density of results ``found`` (> 0: none found says the page lies
    farther, not how far; the caller counts it as some) between ``start`` (the cursor's distance) and ``radius``."""
    return math.sqrt(start**2 + (radius**2 - start**2) * need / found) * _GROWTH_MARGIN


@dataclass(frozen=True, slots=True)
class _Handover:
    """The walk gave up (the filters keep few locations): the circles take over from a first circle of
    ``first_km``, where the walk's density says the page ends."""

    first_km: float


def _walk_nearest(
    query: NearbyQuery, after: tuple[float, int] | None, at: dt.datetime
) -> tuple[list[Candidate], bool, Mapping[int, PageLocation]] | _Handover:
    """The page nearest first after ``after`` and whether more follow, with the pages read, by walking the index
    (see :mod:`app.finder.nearest`); a :class:`_Handover` to the circles when the walk would have to read more
    than :data:`_WALK_MAX_ROWS` locations in one statement (filters few locations pass): the circles, with the
    filters in SQL, read those cheaper.

    Why it is exact: a walk returns the ``rows`` locations nearest on the sphere (beyond the cursor's floor, which
    only leaves out locations surely before the cursor), and says which of them pass the filters. Every location it
    did not return is at least as far on the sphere as the farthest one it did, so its geodesic distance is at least
    ``HAVERSINE_LOW`` times that haversine distance (the ``bound``). When the table held no more, or the bound lies
    beyond the radius, or the page's last result (the ``limit + 1``-th, which says more follow) is nearer than the
    bound, nothing left out can be on the page; otherwise walk further.
    """
    need = query.limit + 1
    rows = need + _KNN_SPARE_ROWS
    floor = None if after is None else chord_floor_m(after[0])
    while True:
        found = walk(query.lat, query.lon, query.filters, rows, floor)
        for candidate in found.candidates:
            candidate.haversine_km = haversine_km(query.lat, query.lon, candidate.lat, candidate.lon)
        farthest = 0.0 if found.farthest is None else haversine_km(query.lat, query.lon, *found.farthest)
        candidates = found.candidates
        if query.filters.open_now:
            candidates = [c for c in candidates if _open(found.pages[c.location_id], at) is not False]
        chosen = _first_by_distance(candidates, query.lat, query.lon, query.radius_km, after, need)
        bound = farthest * HAVERSINE_LOW - _KNN_ROUNDING_KM
        complete = (
            found.exhausted
            or bound > query.radius_km
            or (len(chosen) >= need and (chosen[need - 1].exact_km or 0.0) < bound)
        )
        if complete:
            return chosen[: query.limit], len(chosen) >= need, found.pages
        rows = _more_rows(rows, len(chosen), need, bound, query.radius_km)
        if rows > _WALK_MAX_ROWS:
            # Where the walk's density says the page ends (none kept: as if half a result had been), never nearer
            # than the circles' own first ring.
            start = after[0] if after is not None else 0.0
            reach = _reach(start, max(bound, start), need, len(chosen) or 0.5)
            return _Handover(max(reach, start + FIRST_RING_KM))


def _more_rows(rows: int, kept: int, need: int, bound_km: float, radius_km: float) -> int:
    """How many locations the next walk reads: as many as the share of walked locations kept (within the radius,
    after the cursor, passing the filters) says the page needs, but no more than the density walked says the whole
    radius holds; at least twice as many as before."""
    by_share = rows * need * _GROWTH_MARGIN / max(kept, 1)
    by_radius = rows * (radius_km / max(bound_km, 0.01)) ** 2 * _GROWTH_MARGIN
    return math.ceil(max(rows * 2, min(by_share, by_radius)))


def _open(page: PageLocation, at: dt.datetime) -> bool | None:
    """The "open now" filter on a location already read (as :func:`app.finder.candidates.drop_closed`)."""
    return open_at(hours_from_json(page.opening_times_json, location_zone(page.time_zone, page.country)), at)


def _walk_applies(query: NearbyQuery) -> bool:
    return query.sort == SortOrder.DISTANCE and spatial_index() == SpatialIndex.EARTHDISTANCE


# --- cheapest first -------------------------------------------------------------------------------------------


def _cheapest(
    query: NearbyQuery, after: Key | None, at: dt.datetime, book: PriceBook
) -> tuple[list[Candidate], bool, dict[int, tuple[int, Decimal]]]:
    """Every candidate of the radius is priced (the order needs them all), then ordered by (price, distance, id):
    the page, whether more follow, and each chosen location's price key. The candidates and what their prices
    depend on come in one statement (:mod:`app.finder.cheapest`); each distinct price key is priced once."""
    found, price_keys = priced_candidates(in_area([Area(query.lat, query.lon, query.radius_km)]), query.filters)
    candidates = []
    for candidate in found.values():
        candidate.haversine_km = haversine_km(query.lat, query.lon, candidate.lat, candidate.lon)
        if candidate.haversine_km * HAVERSINE_LOW <= query.radius_km:
            candidates.append(candidate)
    if query.filters.open_now:
        candidates = drop_closed(candidates, at)
    book.load_keys(
        (country_code, party_id, ci_key(tariff_id))
        for candidate in candidates
        for country_code, party_id, *_, tariff_ids in price_keys[candidate.location_id]
        for tariff_id in tariff_ids
    )
    groups: dict[tuple[int, Decimal], list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        prices = (price_order(book.price_of(key)) for key in price_keys[candidate.location_id])
        groups[min(prices, default=price_order(None))].append(candidate)
    need = query.limit + 1
    chosen: list[Candidate] = []
    keys: dict[int, tuple[int, Decimal]] = {}
    for key in sorted(groups):
        if after is not None and key < (after[0], Decimal(after[1])):
            continue
        inside = (
            (float(after[2]), int(after[3])) if after is not None and key == (after[0], Decimal(after[1])) else None
        )
        for candidate in _first_by_distance(
            groups[key], query.lat, query.lon, query.radius_km, inside, need - len(chosen)
        ):
            chosen.append(candidate)
            keys[candidate.location_id] = key
        if len(chosen) >= need:
            break
    return chosen[: query.limit], len(chosen) >= need, keys


# --- the searches -----------------------------------------------------------------------------------------------


def _nearby_search_id(query: NearbyQuery) -> str:
    return fingerprint("nearby", query.lat, query.lon, query.radius_km, query.sort.value, query.filters.fingerprint())


def _decode(cursor: str | None, search: str, shape: tuple[type, ...]) -> Key | None:
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor, search, shape)
    except CursorError as exc:
        raise FinderInputError("cursor", str(exc)) from None


def search_nearby(query: NearbyQuery, *, account: Account | None = None, at: dt.datetime | None = None) -> SearchPage:
    """Locations within ``query.radius_km`` of the point that pass the filters, a page of ``query.limit``, priced
    for ``account``'s plan (Pay-as-you-go for a visitor). Raises :class:`FinderInputError` for a bad cursor."""
    at = at or utcnow()
    search = _nearby_search_id(query)
    book = PriceBook.for_driver(account, at=at)
    pages: Mapping[int, PageLocation] | None = None
    if query.sort == SortOrder.PRICE:
        after = _decode(query.cursor, search, (int, str, float, int))
        if after is not None:
            try:
                Decimal(after[1])
            except ArithmeticError:
                raise FinderInputError("cursor", "is not a cursor of this search") from None
        chosen, more, keys = _cheapest(query, after, at, book)
        last_key: Key | None = None
        if chosen:
            last = chosen[-1]
            rank, price = keys[last.location_id]
            last_key = (rank, str(price), last.exact_km, last.location_id)
    else:
        decoded = _decode(query.cursor, search, (float, int))
        after_distance = (decoded[0], decoded[1]) if decoded is not None else None
        walked = _walk_nearest(query, after_distance, at) if _walk_applies(query) else None
        if walked is None or isinstance(walked, _Handover):
            chosen, more = _nearest(query, after_distance, at, walked.first_km if walked else None)
        else:
            chosen, more, pages = walked
        last_key = (chosen[-1].exact_km, chosen[-1].location_id) if chosen else None
    items = build_results(
        ((c.location_id, c.exact_km, None) for c in chosen),
        {c.location_id: c.matching for c in chosen},
        book,
        at=at,
        pages=pages,
    )
    return SearchPage(items, encode_cursor(search, last_key) if more and last_key is not None else None)


def search_along_route(
    query: RouteQuery, *, account: Account | None = None, at: dt.datetime | None = None
) -> SearchPage:
    """Locations within ``query.corridor_km`` of the route that pass the filters, in the order the route reaches
    them (:mod:`app.finder.route`), a page of ``query.limit``, priced for ``account``'s plan."""
    at = at or utcnow()
    try:
        parts = stretches(decode_polyline(query.polyline), query.corridor_km)
    except PolylineError as exc:
        raise FinderInputError("polyline", str(exc)) from None
    search = fingerprint("route", query.polyline, query.corridor_km, query.filters.fingerprint())
    decoded = _decode(query.cursor, search, (float, int))
    after = (decoded[0], decoded[1]) if decoded is not None else None
    need = query.limit + 1
    index = spatial_index()
    reached: dict[int, tuple[Passage, Candidate]] = {}
    closed: set[int] = set()
    ready: list[tuple[float, int]] = []
    for stretch in parts:
        found = find_candidates(in_area([Area(*stretch.center, stretch.radius_km)], index), query.filters)
        fresh = []
        for location_id, candidate in found.items():
            if location_id in reached or location_id in closed:
                continue
            where = passage(stretch, candidate.lat, candidate.lon, query.corridor_km)
            if where is not None:
                fresh.append((where, candidate))
        if query.filters.open_now and fresh:
            open_ids = {c.location_id for c in drop_closed([c for _, c in fresh], at)}
            closed.update(c.location_id for _, c in fresh if c.location_id not in open_ids)
            fresh = [(where, c) for where, c in fresh if c.location_id in open_ids]
        for where, candidate in fresh:
            reached[candidate.location_id] = (where, candidate)
        # Every location reached before this stretch's end is known now; later ones lie beyond it.
        ready = sorted(
            (where.along_km, location_id)
            for location_id, (where, _) in reached.items()
            if where.along_km < stretch.end_km and (after is None or (where.along_km, location_id) > after)
        )
        if len(ready) >= need:
            break
    else:
        ready = sorted(
            (where.along_km, location_id)
            for location_id, (where, _) in reached.items()
            if after is None or (where.along_km, location_id) > after
        )
    page = ready[: query.limit]
    entries = []
    for along, location_id in page:
        where, candidate = reached[location_id]
        off_route = geodesic_km(candidate.lat, candidate.lon, *where.nearest)
        entries.append((location_id, off_route, along))
    matching = {location_id: reached[location_id][1].matching for _, location_id in page}
    items = build_results(entries, matching, PriceBook.for_driver(account, at=at), at=at)
    more = len(ready) > query.limit
    return SearchPage(items, encode_cursor(search, page[-1]) if more and page else None)


def location_details(
    country_code: str,
    party_id: str,
    location_id: str,
    *,
    account: Account | None = None,
    filters: Filters = NO_FILTERS,
    origin: tuple[float, float] | None = None,
    at: dt.datetime | None = None,
) -> LocationResult | None:
    """One location as a search result (None when unknown or not shown to drivers: unpublished, removed, of a
    REMOVED partner). ``filters`` choose the connectors priced (all live ones by default); ``origin`` (lat, lon)
    gives the distance."""
    at = at or utcnow()
    row_id = db.session.scalar(
        select(Location.id).where(
            Location.country_code == ci_key(country_code),
            Location.party_id == ci_key(party_id),
            Location.ocpi_id_key == ci_key(location_id),  # a CiString, as roaming compares it
        )
    )
    if row_id is None:
        return None
    here = at_location(row_id)
    shown = find_candidates(here, NO_FILTERS).get(row_id)
    if shown is None:
        return None  # unpublished, without a live EVSE, or of a REMOVED partner
    matching = shown.matching
    if filters != NO_FILTERS:
        narrowed = find_candidates(here, filters).get(row_id)
        matching = narrowed.matching if narrowed is not None else []
    distance = geodesic_km(origin[0], origin[1], shown.lat, shown.lon) if origin is not None else None
    results = build_results([(row_id, distance, None)], {row_id: matching}, PriceBook.for_driver(account, at=at), at=at)
    return results[0] if results else None
