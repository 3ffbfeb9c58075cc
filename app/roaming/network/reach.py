"""Where our cards work: how many charge points, at how many locations (what the landing page says)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from app.extensions import db
from app.roaming.models import Evse, Location
from app.roaming.network.grouped import REMOVED_EVSE
from app.roaming.places import visible_locations_filter, works_with_our_cards_filter


@dataclass(frozen=True)
class Reachable:
    locations: int
    evses: int  # charge points: an EVSE is one place to charge (OCPI: one session at a time)


def charge_points_reachable() -> Reachable:
    """How many charge points our cards work at, and at how many locations: EVSEs that are not REMOVED, at
    published locations that drivers may be shown (:func:`~app.roaming.places.visible_locations_filter`) and
    whose party a REGISTERED partner reaches, directly or through a registered hub relaying it
    (:func:`~app.roaming.places.works_with_our_cards_filter`): the same rules as the charger finder's "works with
    my card". Zero when no partner is registered."""
    locations, evses = db.session.execute(
        select(func.count(func.distinct(Evse.location_id)), func.count())
        .select_from(Evse)
        .join(Location, Location.id == Evse.location_id)
        .where(
            Evse.status != REMOVED_EVSE,
            Location.publish.is_(True),
            works_with_our_cards_filter(),
            visible_locations_filter(),
        )
    ).one()
    return Reachable(locations=locations or 0, evses=evses or 0)
