"""A door's raw parameters become a typed query, or an error naming the parameter."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.finder.cursors import CursorError, decode_cursor, encode_cursor
from app.finder.filters import Current, Filters, connector_types
from app.finder.queries import FinderInputError, NearbyQuery, RouteQuery, SortOrder, parse_nearby, parse_route


def test_friendly_connector_names():
    assert connector_types("Type 2") == {"IEC_62196_T2"}
    assert connector_types("ccs") == {"IEC_62196_T2_COMBO"}
    assert connector_types("CHAdeMO") == {"CHADEMO"}
    assert connector_types("iec_60309_2_single_16") == {"IEC_60309_2_SINGLE_16"}  # OCPI values, any case
    assert connector_types("type-3") == {"IEC_62196_T3A", "IEC_62196_T3C"}
    assert connector_types("warp drive") is None


def test_every_parameter():
    query = parse_nearby(
        {
            "lat": "52.09",
            "lon": " 5.11 ",
            "radius_km": "5",
            "limit": "10",
            "sort": "PRICE",
            "connector": "type2, ccs",
            "min_power_kw": "50",
            "power_type": "dc",
            "available": "true",
            "operator": "Allego",
            "open_now": "1",
            "my_cards": "yes",
        }
    )
    assert query == NearbyQuery(
        lat=52.09,
        lon=5.11,
        radius_km=5.0,
        limit=10,
        sort=SortOrder.PRICE,
        filters=Filters(
            connector_types=frozenset({"IEC_62196_T2", "IEC_62196_T2_COMBO"}),
            min_power_kw=Decimal(50),
            current=Current.DC,
            available_now=True,
            operator="Allego",
            open_now=True,
            my_cards=True,
        ),
    )


def test_defaults():
    query = parse_nearby({"lat": "52", "lon": "5"})
    assert (query.radius_km, query.limit, query.sort, query.filters, query.cursor) == (
        10.0,
        20,
        SortOrder.DISTANCE,
        Filters(),
        None,
    )


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"lon": "5"}, "lat"),
        ({"lat": "91", "lon": "5"}, "lat"),
        ({"lat": "nan", "lon": "5"}, "lat"),
        ({"lat": "52", "lon": "east"}, "lon"),
        ({"lat": "52", "lon": "5", "radius_km": "0"}, "radius_km"),
        ({"lat": "52", "lon": "5", "radius_km": "1e9"}, "radius_km"),
        ({"lat": "52", "lon": "5", "limit": "0"}, "limit"),
        ({"lat": "52", "lon": "5", "limit": "101"}, "limit"),
        ({"lat": "52", "lon": "5", "limit": "-3"}, "limit"),
        ({"lat": "52", "lon": "5", "sort": "rating"}, "sort"),
        ({"lat": "52", "lon": "5", "connector": "type2,warp"}, "connector"),
        ({"lat": "52", "lon": "5", "min_power_kw": "fast"}, "min_power_kw"),
        ({"lat": "52", "lon": "5", "min_power_kw": "-1"}, "min_power_kw"),
        ({"lat": "52", "lon": "5", "min_power_kw": "Infinity"}, "min_power_kw"),
        ({"lat": "52", "lon": "5", "power_type": "AC_3_PHASE"}, "power_type"),
        ({"lat": "52", "lon": "5", "available": "maybe"}, "available"),
        ({"lat": "52", "lon": "5", "operator": "x" * 101}, "operator"),
        ({"lat": "52", "lon": "5", "operator": "Shell\x00"}, "operator"),
        ({"lat": "52", "lon": "5", "cursor": "c" * 600}, "cursor"),
    ],
)
def test_errors_name_the_parameter(params, parameter):
    with pytest.raises(FinderInputError) as error:
        parse_nearby(params)
    assert error.value.parameter == parameter
    assert str(error.value).startswith(f"{parameter}: ")


def test_route_parameters():
    query = parse_route({"polyline": "_p~iF~ps|U_ulLnnqC", "corridor_km": "1.5", "connector": "chademo"})
    assert query == RouteQuery(polyline="_p~iF~ps|U_ulLnnqC", corridor_km=1.5, filters=Filters(frozenset({"CHADEMO"})))
    for params, parameter in (({}, "polyline"), ({"polyline": "abc", "corridor_km": "30"}, "corridor_km")):
        with pytest.raises(FinderInputError) as error:
            parse_route(params)
        assert error.value.parameter == parameter


def test_cursors_belong_to_their_search():
    cursor = encode_cursor("search-a", (1.25, 42))
    assert decode_cursor(cursor, "search-a", (float, int)) == (1.25, 42)
    with pytest.raises(CursorError, match="another search"):
        decode_cursor(cursor, "search-b", (float, int))
    for forged in ("not base64 at all!", encode_cursor("search-a", (1.25,)), encode_cursor("search-a", ("x", 42))):
        with pytest.raises(CursorError):
            decode_cursor(forged, "search-a", (float, int))
