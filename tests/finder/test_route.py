"""Along a route: the locations within the corridor, in the order the route reaches them, with the same filters."""

from __future__ import annotations

from decimal import Decimal

import pytest
from geopy.distance import geodesic

from app.finder.distance import haversine_km
from app.finder.filters import Current, Filters
from app.finder.queries import FinderInputError, RouteQuery
from app.finder.route import encode_polyline
from app.finder.services import search_along_route
from tests.finder.builders import AT, CCS_50KW, add_location, connector, evse

# North from Utrecht for 11 km, then east for 13.6 km.
ROUTE = [(52.09, 5.11), (52.19, 5.11), (52.19, 5.31)]


def route_names(points=ROUTE, corridor_km=2.0, **kwargs):  # type: ignore[no-untyped-def]
    page = search_along_route(RouteQuery(encode_polyline(points), corridor_km=corridor_km, **kwargs), at=AT)
    return [item.name for item in page.items]


@pytest.fixture
def along(db_session):  # type: ignore[no-untyped-def]
    add_location(52.15, 5.125, name="6.7 km along, 1 km off")
    add_location(52.10, 5.111, evse("D1", connector(CCS_50KW)), name="1.1 km along, 70 m off")
    add_location(52.15, 5.16, name="3.4 km off: outside")
    add_location(52.185, 5.20, evse("D1", connector(CCS_50KW)), name="second leg, 0.55 km off")
    add_location(52.08, 5.11, name="before the start, 1.1 km off")


def test_within_the_corridor_in_route_order(along):
    assert route_names() == [
        "before the start, 1.1 km off",
        "1.1 km along, 70 m off",
        "6.7 km along, 1 km off",
        "second leg, 0.55 km off",
    ]
    assert route_names(corridor_km=0.6) == ["1.1 km along, 70 m off", "second leg, 0.55 km off"]


def test_results_say_where_and_how_far_off(along):
    page = search_along_route(RouteQuery(encode_polyline(ROUTE), corridor_km=2), at=AT)
    second = page.items[1]
    # Along the route: on the sphere of the mean radius, like the corridor (0.01 degree of latitude).
    assert second.along_route_km == Decimal(repr(haversine_km(52.09, 5.11, 52.10, 5.11))).quantize(Decimal("0.001"))
    # The distance is the geodesic one to the nearest point of the route: here due west, on the meridian.
    assert second.distance_km == Decimal(repr(geodesic((52.10, 5.111), (52.10, 5.11)).km)).quantize(Decimal("0.001"))
    last = page.items[3]
    assert Decimal("17") < last.along_route_km < Decimal("18")
    assert Decimal("0.5") < last.distance_km < Decimal("0.6")


def test_same_filters_as_near_a_point(along):
    assert route_names(filters=Filters(current=Current.DC)) == ["1.1 km along, 70 m off", "second leg, 0.55 km off"]
    assert route_names(filters=Filters(current=Current.DC, min_power_kw=Decimal(100))) == []


def test_a_location_passed_twice_is_listed_once_at_the_first_passage(db_session):
    add_location(52.12, 5.112, name="by the road")
    add_location(52.17, 5.112, name="at the turn")
    there_and_back = [(52.09, 5.11), (52.18, 5.11), (52.09, 5.11)]
    page = search_along_route(RouteQuery(encode_polyline(there_and_back), corridor_km=1), at=AT)
    assert [item.name for item in page.items] == ["by the road", "at the turn"]
    assert page.items[0].along_route_km < Decimal(4)


def test_pages_along_a_long_route(db_session):
    # 60 km due east, locations every 2 km alternately north and south of the road: several stretches.
    points = [(52.0, 5.0 + 0.0146 * step) for step in range(61)]  # ~1 km apart
    for number in range(30):
        add_location(52.0 + (0.005 if number % 2 else -0.005), 5.0 + 0.0292 * number, name=f"km {2 * number:02d}")
    every = route_names(points, corridor_km=1, limit=100)
    assert every == [f"km {2 * number:02d}" for number in range(30)]
    seen, cursor = [], None
    while True:
        page = search_along_route(RouteQuery(encode_polyline(points), corridor_km=1, limit=7, cursor=cursor), at=AT)
        seen += [item.name for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == every


def test_sparse_polylines_long_straight_segments(db_session):
    # Google's example style: few points, segments of tens of km. The arc between them is followed exactly.
    add_location(52.4, 5.5, name="on the way")
    add_location(52.4, 5.9, name="off the way")
    assert route_names(
        [(52.0, 5.5), (52.8, 5.5)], corridor_km=1, filters=Filters(connector_types=frozenset({"IEC_62196_T2"}))
    ) == ["on the way"]


@pytest.mark.parametrize(
    ("polyline", "message"),
    [
        ("_p~iF~ps|U", "at least two points"),
        ("_p~iF~ps|U _ulL", "not part of an encoded polyline"),
        (encode_polyline([(10.0, 0.0), (10.0, 40.0)]), "not a road route"),
    ],
)
def test_bad_polylines_name_the_parameter(db_session, polyline, message):
    with pytest.raises(FinderInputError, match=message) as error:
        search_along_route(RouteQuery(polyline), at=AT)
    assert error.value.parameter == "polyline"
