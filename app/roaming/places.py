"""Where a charging record took place, as the CPO published the location: its name and city for display.

The charging records (``app.charging``) carry the location's OCPI key only, because locations are roaming's; this
is the read that turns those keys into names, one query for any number of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, tuple_

from app.charging.services import LocationKey
from app.extensions import db
from app.roaming.models import Location


@dataclass(frozen=True)
class Place:
    name: str | None  # None: the location has no name, or is not published (yet)
    city: str | None


UNKNOWN_PLACE = Place(name=None, city=None)


def places_of(keys: Iterable[LocationKey]) -> dict[LocationKey, Place]:
    """The published place of every key asked for (``UNKNOWN_PLACE`` for a location we do not hold). Keys are
    compared as stored, as the charging records and the locations both keep the CPO's spelling."""
    wanted = set(keys)
    if not wanted:
        return {}
    rows = db.session.execute(
        select(Location.country_code, Location.party_id, Location.ocpi_id, Location.name, Location.city)
        .where(tuple_(Location.country_code, Location.party_id, Location.ocpi_id).in_(wanted)))
    found = {LocationKey(country_code, party_id, location_id): Place(name, city)
             for country_code, party_id, location_id, name, city in rows}
    return {key: found.get(key, UNKNOWN_PLACE) for key in wanted}
