"""Distances on the Earth: the exact geodesic one drivers see, the fast spherical one that bounds it, and the
bounding boxes an index can answer.

The distance shown and used for every decision (within the radius? which is nearer?) is the geodesic distance on
the WGS-84 ellipsoid by Karney's algorithm, the one geopy's geodesic runs through geographiclib, here in PROJ's C
implementation (pyproj's ``Geod.inv``): the same figure to 1e-13, at ~4 µs a pair where geographiclib's pure
Python takes 60-300 µs (a search measures 20-30 pairs). It is still computed only where it decides something: the
haversine distance on a sphere of the mean Earth radius costs ~0.5 µs and the geodesic distance of the same pair
lies within [HAVERSINE_LOW, HAVERSINE_HIGH] times it (measured over 200,000 random pairs from 10 cm to 2,000 km
at every latitude: 0.99442 ... 1.00449; the bounds keep a margin). A candidate whose haversine distance already
puts it beyond the radius, or behind a nearer result, is never measured exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from geopy.distance import ELLIPSOIDS
from pyproj import Geod

EARTH_MEAN_RADIUS_KM = 6371.0088  # IUGG mean radius: the sphere that fits the ellipsoid best on average
HAVERSINE_LOW = 0.994  # geodesic / haversine is never below this ...
HAVERSINE_HIGH = 1.005  # ... nor above this

# geopy's default ellipsoid, to the bit.
_MAJOR_KM, _MINOR_KM, _FLATTENING = ELLIPSOIDS["WGS-84"]
_WGS84 = Geod(a=_MAJOR_KM * 1000, f=_FLATTENING)
_inverse = _WGS84.inv


def geodesic_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The geodesic distance in km on WGS-84: the same figure as ``geopy.distance.geodesic(...).km`` (to 1e-12)."""
    return float(_inverse(lon1, lat1, lon2, lat2)[2]) / 1000


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance in km on the mean sphere (a bound of the geodesic one, see the module)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = math.radians(lon2 - lon1) / 2
    h = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * EARTH_MEAN_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


@dataclass(frozen=True, slots=True)
class Box:
    """A latitude/longitude box in degrees; ``west > east`` never happens (a box across the antimeridian is
    split in two, see :func:`boxes_around`)."""

    south: float
    north: float
    west: float
    east: float

    def contains(self, lat: float, lon: float) -> bool:
        return self.south <= lat <= self.north and self.west <= lon <= self.east


# Degrees added around a box: float rounding of the trigonometry, never a real distance (1e-6° is ~10 cm).
_BOX_SLACK_DEG = 1e-6


def boxes_around(lat: float, lon: float, radius_km: float) -> tuple[Box, ...]:
    """Boxes that contain every point whose *geodesic* distance from (lat, lon) is at most ``radius_km``.

    The geodesic radius becomes a haversine one (÷ HAVERSINE_LOW), whose spherical cap has an exact bounding box:
    latitude ± the angular radius, longitude ± asin(sin(angle) / cos(lat)). A cap over a pole takes every
    longitude; a box across the antimeridian is split in two.
    """
    angle = radius_km / HAVERSINE_LOW / EARTH_MEAN_RADIUS_KM  # radians on the sphere
    dlat = math.degrees(angle) + _BOX_SLACK_DEG
    south, north = lat - dlat, lat + dlat
    if south <= -90 or north >= 90 or angle >= math.pi / 2:
        return (Box(max(south, -90.0), min(north, 90.0), -180.0, 180.0),)
    ratio = math.sin(angle) / math.cos(math.radians(lat))
    if ratio >= 1:
        return (Box(south, north, -180.0, 180.0),)
    dlon = math.degrees(math.asin(ratio)) + _BOX_SLACK_DEG
    west, east = lon - dlon, lon + dlon
    if west < -180:
        return (Box(south, north, west + 360, 180.0), Box(south, north, -180.0, east))
    if east > 180:
        return (Box(south, north, west, 180.0), Box(south, north, -180.0, east - 360))
    return (Box(south, north, west, east),)
