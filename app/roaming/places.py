"""Where a charging record took place, as the CPO published the location: its name and city for display; and
which locations drivers may see and where our cards work (for the charger finder).

The charging records (``app.charging``) carry the location's OCPI key only, because locations are roaming's; this
is the read that turns those keys into names, one query for any number of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, exists, or_, select, tuple_

from app.charging.services import LocationKey
from app.extensions import db
from app.ocpi_ids import ci_key
from app.roaming.models import Location, Partner, PartnerParty, PartnerStatus

CONNECTED_PARTY = "CONNECTED"  # HubClientInfo ConnectionStatus of a party a hub relays now


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


# --- the charger finder ------------------------------------------------------------------------------------------


def visible_locations_filter() -> ColumnElement[bool]:
    """SQL condition on :class:`Location`: may drivers be shown this location at all?

    Contract: true unless the connection that delivered the location (``Location.partner_id``) is REMOVED. The
    locations of pending, registered, suspended and unregistered partners are shown, and so are locations
    without a partner (imported from files, or whose partner row was deleted). A removed partner's locations
    stay stored (sessions and CDRs refer to them, money already owed) but are hidden. Nothing else is decided
    here: ``publish`` (OCPI: not for the public), EVSE statuses and the map's bounding box are the caller's.
    Whether our cards work there is :func:`works_with_our_cards_filter`; combine both.

    Use: ``select(Location).where(visible_locations_filter(), ...)``; it costs one NOT EXISTS probe on the
    partners' primary key per location.
    """
    removed = exists().where(Partner.id == Location.partner_id, Partner.status == PartnerStatus.REMOVED)
    return ~removed


def parties_serving_drivers() -> Select[tuple[str, str]]:
    """The parties (country code, party id; upper-case) our cards work at: a party is reachable when a
    REGISTERED partner carries it: a direct CPO's own party and the parties of its credentials roles, or a party
    a registered hub relays and reports CONNECTED (HubClientInfo). Pending, suspended, unregistered and removed
    partners carry none (a suspended partner answers our cards ``NOT_ALLOWED``)."""
    direct = select(Partner.country_code, Partner.party_id).where(
        Partner.status == PartnerStatus.REGISTERED, Partner.is_hub.is_(False)
    )
    carried = (
        select(PartnerParty.country_code, PartnerParty.party_id)
        .join(Partner, Partner.id == PartnerParty.partner_id)
        .where(
            Partner.status == PartnerStatus.REGISTERED,
            or_(Partner.is_hub.is_(False), PartnerParty.status == CONNECTED_PARTY),
        )
    )
    return direct.union(carried)  # type: ignore[return-value]


def works_with_our_cards_filter() -> ColumnElement[bool]:
    """SQL condition on :class:`Location`: "works with my card". Contract: true when the location's party
    (``country_code``, ``party_id``, stored upper-case) is in :func:`parties_serving_drivers`, whoever delivered
    the location (directly or through a hub). It says nothing about visibility: a visible location may not work
    with our cards (a suspended partner's), and a hidden one (delivered by a removed hub) may belong to a party
    now carried by a direct partner until that CPO sends it again; combine with :func:`visible_locations_filter`."""
    parties = parties_serving_drivers().subquery()
    return tuple_(Location.country_code, Location.party_id).in_(select(parties.c.country_code, parties.c.party_id))
