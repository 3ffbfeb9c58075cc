"""Instants as integer microseconds, and local wall-clock time without datetime arithmetic in the hot loop.

Why: tariff restrictions are in the location's local time, but a CDR is in UTC, and the engine evaluates
restrictions for every piece of every period. Converting instants to integers once and handling local time as
"UTC µs + the zone's offset of that stretch" turns boundary searches into integer arithmetic. Daylight-saving
transitions are located exactly (to the second) so a period crossing one is cut there.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import PricingInputError
from .restrictions import DAY_US, SECOND_US

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def to_us(instant: datetime) -> int:
    """Aware datetime → integer microseconds since the Unix epoch (exact, no float)."""
    return (instant - _EPOCH) // _ONE_US


@lru_cache(maxsize=256)
def _zone_by_name(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PricingInputError("timezone", f"unknown time zone {name!r}") from exc


def resolve_zone(zone: str | tzinfo | None) -> tzinfo | None:
    """Return the tzinfo to use, or None for UTC (fast path: the offset is always 0)."""
    if zone is None or zone is UTC:
        return None
    if isinstance(zone, str):
        if zone.upper() in ("UTC", "Z", "ETC/UTC"):
            return None
        return _zone_by_name(zone)
    return zone


_HOUR_US = 3_600_000_000
_offset_cache: dict[tuple[tzinfo, int], int | None] = {}


def _exact_offset_us(zone: tzinfo, t: int) -> int:
    offset = (_EPOCH + timedelta(microseconds=t)).astimezone(zone).utcoffset()
    assert offset is not None  # astimezone gives an aware datetime, which has an offset
    return offset // _ONE_US


def offset_us(zone: tzinfo | None, t: int) -> int:
    """UTC offset (µs) of ``zone`` at instant ``t``.

    Cached per UTC hour when the offset is the same at both ends of that hour (zones never change offset
    twice within an hour), which takes the zoneinfo lookup out of the hot loop; exact otherwise.
    """
    if zone is None:
        return 0
    key = (zone, t // _HOUR_US)
    cached = _offset_cache.get(key, False)
    if cached is False:
        if len(_offset_cache) > 200_000:
            _offset_cache.clear()
        begin = key[1] * _HOUR_US
        first = _exact_offset_us(zone, begin)
        cached = first if _exact_offset_us(zone, begin + _HOUR_US - 1) == first else None
        _offset_cache[key] = cached
    return _exact_offset_us(zone, t) if cached is None else cached


def local_chunks(zone: tzinfo | None, a: int, b: int) -> list[tuple[int, int, int]]:
    """Split [a, b] into stretches of constant UTC offset: ``(start, end, offset)``, all µs.

    Transitions are found by probing once per day and bisecting to the second (zone transitions fall on whole
    seconds), so a session across the spring or autumn DST change gets a cut exactly at the change.
    """
    if zone is None:
        return [(a, b, 0)]
    chunks = []
    cur, off = a, offset_us(zone, a)
    probe = a
    while probe < b:
        nxt = min(probe + DAY_US, b)
        off2 = offset_us(zone, nxt)
        if off2 == off:
            probe = nxt
            continue
        lo, hi = probe // SECOND_US, -(-nxt // SECOND_US)  # offset(lo) == off, offset(hi) != off
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if offset_us(zone, mid * SECOND_US) == off:
                lo = mid
            else:
                hi = mid
        transition = hi * SECOND_US
        chunks.append((cur, transition, off))
        cur, off, probe = transition, offset_us(zone, transition), transition
    chunks.append((cur, b, off))
    return chunks
