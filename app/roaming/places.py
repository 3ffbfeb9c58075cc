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
from app.ocpi_ids import ci_key
from app.roaming.models import Location


@dataclass(frozen=True)
class Place:
    name: str | None  # None: the location has no name, or is not published (yet)
    city: str | None


UNKNOWN_PLACE = Place(name=None, city=None)


def places_of(keys: Iterable[LocationKey]) -> dict[LocationKey, Place]:
    """The published place of every key asked for (``UNKNOWN_PLACE`` for a location we do not hold). The
    location id is a CiString: a record naming ``loc1`` finds the location the CPO published as ``LOC1``."""
    wanted = set(keys)
    if not wanted:
        return {}
    folded = {key: (ci_key(key.country_code), ci_key(key.party_id), ci_key(key.location_id)) for key in wanted}
    rows = db.session.execute(
        select(Location.country_code, Location.party_id, Location.ocpi_id_key, Location.name, Location.city).where(
            tuple_(Location.country_code, Location.party_id, Location.ocpi_id_key).in_(set(folded.values()))
        )
    )
    found = {
        (country_code, party_id, location_key): Place(name, city)
        for country_code, party_id, location_key, name, city in rows
    }
    return {key: found.get(folded[key], UNKNOWN_PLACE) for key in wanted}
