"""Routes: Google's encoded polylines, and the corridor of a route.

**Polylines** (Google's "Encoded Polyline Algorithm Format", as phone navigation SDKs produce them): each
coordinate is the difference to the previous one, ×1e5, rounded, zig-zag encoded (sign in the lowest bit), in
5-bit chunks from the lowest, each chunk + 63 as one ASCII character, 0x20 set on all but the last chunk of a
value. Latitude then longitude. Anything else (another character, a value cut short, an odd number of values, a
coordinate off the Earth) is refused with a message naming what is wrong.

**Corridor**: a location is along the route when its distance to the route line is at most the corridor (the
greatest distance from the route a driver accepts, on either side). The line between two points is the great
circle arc (the sphere of the Earth's mean radius); the distance is measured to the nearest point of the arc and
refined with the geodesic distance where the sphere cannot decide (within 0.6 % of the corridor).

**Order along the route**: where the route first comes within reach of the location: the route is cut into
pieces of at most 10 km and the pieces into stretches of at most 25 km (the area one index query covers); a
location belongs to the first stretch that passes within the corridor, at the nearest point of that stretch.
So a route that passes a location twice lists it once, at the first passage, and every stretch's locations are
final once it is read: a page needs only the stretches up to its last result.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from app.finder.distance import EARTH_MEAN_RADIUS_KM, HAVERSINE_HIGH, HAVERSINE_LOW, geodesic_km, haversine_km

MAX_POLYLINE_LENGTH = 200_000  # characters: ~ a 2,000 km route at navigation SDK density
MAX_SEGMENT_KM = 2_000.0  # a longer straight line is no road route (and the arc geometry needs far less than π)
PIECE_KM = 10.0
STRETCH_KM = 25.0

Point = tuple[float, float]  # (latitude, longitude) in degrees
Vector = tuple[float, float, float]


class PolylineError(ValueError):
    """The polyline cannot be decoded (the message says why)."""


def decode_polyline(encoded: str, precision: int = 5) -> list[Point]:
    """Google's encoded polyline → [(lat, lon), ...] (see the module)."""
    if len(encoded) > MAX_POLYLINE_LENGTH:
        raise PolylineError(f"is longer than {MAX_POLYLINE_LENGTH} characters")
    values: list[int] = []
    value = shift = 0
    for position, char in enumerate(encoded):
        code = ord(char) - 63
        if not 0 <= code < 64:
            raise PolylineError(f"character {position + 1} ({char!r}) is not part of an encoded polyline")
        value |= (code & 0x1F) << shift
        shift += 5
        if code < 0x20:
            values.append(~(value >> 1) if value & 1 else value >> 1)
            value = shift = 0
        elif shift > 35:
            raise PolylineError(f"value ending at character {position + 1} is too large")
    if shift:
        raise PolylineError("ends in the middle of a value")
    if len(values) % 2:
        raise PolylineError("has a latitude without its longitude")
    factor = 10**precision
    points = []
    lat = lon = 0
    for index in range(0, len(values), 2):
        lat += values[index]
        lon += values[index + 1]
        point = (lat / factor, lon / factor)
        if not (-90 <= point[0] <= 90 and -180 <= point[1] <= 180):
            raise PolylineError(f"point {index // 2 + 1} ({point[0]}, {point[1]}) is not on the Earth")
        points.append(point)
    return points


def encode_polyline(points: Sequence[Point], precision: int = 5) -> str:
    """The inverse of :func:`decode_polyline` (tests, benchmarks, and doors that hand a route back)."""
    factor = 10**precision
    out = []
    previous = (0, 0)
    for lat, lon in points:
        current = (round(lat * factor), round(lon * factor))
        for delta in (current[0] - previous[0], current[1] - previous[1]):
            value = ~(delta << 1) if delta < 0 else delta << 1
            while value >= 0x20:
                out.append(chr((0x20 | (value & 0x1F)) + 63))
                value >>= 5
            out.append(chr(value + 63))
        previous = current
    return "".join(out)


# --- geometry on the sphere --------------------------------------------------------------------------------------


def _vector(point: Point) -> Vector:
    lat, lon = math.radians(point[0]), math.radians(point[1])
    return (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))


def _point(v: Vector) -> Point:
    return (math.degrees(math.atan2(v[2], math.hypot(v[0], v[1]))), math.degrees(math.atan2(v[1], v[0])))


def _dot(a: Vector, b: Vector) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a: Vector, b: Vector) -> Vector:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _normalised(v: Vector) -> Vector:
    norm = math.sqrt(_dot(v, v))
    return (v[0] / norm, v[1] / norm, v[2] / norm)


def _angle(a: Vector, b: Vector) -> float:
    return math.atan2(math.sqrt(_dot(c := _cross(a, b), c)), _dot(a, b))


@dataclass(frozen=True, slots=True)
class Piece:
    """A great circle arc of the route, at most PIECE_KM long, starting ``start_km`` along the route."""

    a: Vector
    b: Vector
    normal: Vector | None  # unit normal of the arc's plane; None for a zero-length piece
    length_km: float
    start_km: float

    def nearest(self, p: Vector) -> tuple[float, float, Vector]:
        """(distance km on the sphere, km along the route, the nearest point) from ``p`` to this arc."""
        if self.normal is not None:
            off = _dot(p, self.normal)
            foot = (p[0] - off * self.normal[0], p[1] - off * self.normal[1], p[2] - off * self.normal[2])
            if _dot(foot, foot) > 1e-24:
                foot = _normalised(foot)
                # On the arc when it lies between a and b (same side of both end planes).
                if _dot(_cross(self.a, foot), self.normal) >= 0 and _dot(_cross(foot, self.b), self.normal) >= 0:
                    along = _angle(self.a, foot) * EARTH_MEAN_RADIUS_KM
                    return _angle(p, foot) * EARTH_MEAN_RADIUS_KM, self.start_km + along, foot
        to_a, to_b = _angle(p, self.a), _angle(p, self.b)
        if to_b < to_a:
            return to_b * EARTH_MEAN_RADIUS_KM, self.start_km + self.length_km, self.b
        return to_a * EARTH_MEAN_RADIUS_KM, self.start_km, self.a


@dataclass(frozen=True, slots=True)
class Stretch:
    """Consecutive pieces, and a circle (centre, geodesic radius) that holds every point within ``corridor_km``
    of them: the area one index query reads."""

    pieces: tuple[Piece, ...]
    center: Point
    radius_km: float
    start_km: float
    end_km: float


@dataclass(frozen=True, slots=True)
class Passage:
    """Where the route first comes within reach of a location."""

    along_km: float  # from the start of the route to the nearest point
    nearest: Point  # the nearest point of the route (the driver's detour starts there)


def _pieces(points: Sequence[Point]) -> list[Piece]:
    pieces: list[Piece] = []
    travelled = 0.0
    for start, end in itertools.pairwise(points):
        a, b = _vector(start), _vector(end)
        angle = _angle(a, b)
        length = angle * EARTH_MEAN_RADIUS_KM
        if length > MAX_SEGMENT_KM:
            raise PolylineError(f"has a straight segment of {length:.0f} km: not a road route")
        if length == 0:
            continue
        normal = _normalised(_cross(a, b))
        count = max(1, math.ceil(length / PIECE_KM))
        previous = a
        for step in range(1, count + 1):
            # Points along the arc: rotate a towards b in the arc's plane (exact on the great circle).
            t = angle * step / count
            tangent = _cross(normal, a)
            current = (
                b
                if step == count
                else _normalised(
                    (
                        a[0] * math.cos(t) + tangent[0] * math.sin(t),
                        a[1] * math.cos(t) + tangent[1] * math.sin(t),
                        a[2] * math.cos(t) + tangent[2] * math.sin(t),
                    )
                )
            )
            piece_length = length / count
            pieces.append(Piece(previous, current, normal, piece_length, travelled))
            travelled += piece_length
            previous = current
    if not pieces and points:
        a = _vector(points[0])
        pieces.append(Piece(a, a, None, 0.0, 0.0))  # every point the same: the route is one place
    return pieces


def stretches(points: Sequence[Point], corridor_km: float) -> list[Stretch]:
    """The route cut into stretches (see the module), each with the area to read around it."""
    if len(points) < 2:
        raise PolylineError("needs at least two points")
    result: list[Stretch] = []
    group: list[Piece] = []

    def close() -> None:
        ends = [group[0].a, *(piece.b for piece in group)]
        center = _point(_normalised((sum(v[0] for v in ends), sum(v[1] for v in ends), sum(v[2] for v in ends))))
        # The farthest point of an arc from a point near it is one of its ends (the distance along a great circle
        # is a sinusoid, and these arcs are far shorter than half of it).
        reach = max(haversine_km(*center, *_point(v)) for v in ends) + corridor_km / HAVERSINE_LOW
        start, end = group[0].start_km, group[-1].start_km + group[-1].length_km
        result.append(Stretch(tuple(group), center, reach * HAVERSINE_HIGH, start, end))

    for piece in _pieces(points):
        if group and piece.start_km + piece.length_km - group[0].start_km > STRETCH_KM:
            close()
            group = []
        group.append(piece)
    close()
    return result


def passage(stretch: Stretch, lat: float, lon: float, corridor_km: float) -> Passage | None:
    """The nearest point of ``stretch`` to a location, if within ``corridor_km`` (geodesic; see the module)."""
    p = _vector((lat, lon))
    best: tuple[float, float, Vector] | None = None
    for piece in stretch.pieces:
        found = piece.nearest(p)
        if best is None or found[0] < best[0]:
            best = found
    assert best is not None  # a stretch has at least one piece
    spherical, along, foot = best
    if spherical * HAVERSINE_LOW > corridor_km:
        return None
    nearest = _point(foot)
    if spherical * HAVERSINE_HIGH > corridor_km and geodesic_km(lat, lon, *nearest) > corridor_km:
        return None  # the sphere could not decide; the geodesic distance did
    return Passage(along, nearest)
