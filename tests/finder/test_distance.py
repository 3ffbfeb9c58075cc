"""Distances: the geodesic one is geopy's, the haversine one bounds it, and the index boxes hold every circle."""

from __future__ import annotations

import math

from geographiclib.geodesic import Geodesic
from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from app.finder.distance import HAVERSINE_HIGH, HAVERSINE_LOW, boxes_around, geodesic_km, haversine_km

latitudes = st.floats(-89.5, 89.5)
longitudes = st.floats(-180, 180)


def test_geodesic_is_geopys():
    utrecht, zwolle = (52.089444, 5.110278), (52.516947, 6.090103)
    assert math.isclose(geodesic_km(*utrecht, *zwolle), geodesic(utrecht, zwolle).km, rel_tol=1e-12)
    assert 82 < geodesic_km(*utrecht, *zwolle) < 83


@settings(max_examples=300)
@given(latitudes, longitudes, st.floats(0, 360), st.floats(0.01, 500_000))
def test_haversine_bounds_the_geodesic_distance(lat, lon, bearing, metres):
    end = Geodesic.WGS84.Direct(lat, lon, bearing, metres)
    spherical = haversine_km(lat, lon, end["lat2"], end["lon2"])
    exact = geodesic_km(lat, lon, end["lat2"], end["lon2"])
    assert spherical * HAVERSINE_LOW <= exact <= spherical * HAVERSINE_HIGH


@settings(max_examples=300)
@given(latitudes, longitudes, st.floats(0.05, 100), st.floats(0, 360))
def test_boxes_hold_every_point_of_the_circle(lat, lon, radius_km, bearing):
    end = Geodesic.WGS84.Direct(lat, lon, bearing, radius_km * 1000)
    boxes = boxes_around(lat, lon, radius_km)
    assert any(box.contains(end["lat2"], end["lon2"]) for box in boxes)


def test_boxes_across_the_antimeridian_and_over_a_pole():
    fiji = boxes_around(-17.7, 179.99, 10)
    assert len(fiji) == 2
    assert {box.east for box in fiji} >= {180.0} and min(box.west for box in fiji) == -180.0
    assert any(box.contains(-17.7, -179.99) for box in fiji)
    pole = boxes_around(89.99, 10, 5)
    assert pole[0].west == -180 and pole[0].east == 180 and pole[0].north == 90
