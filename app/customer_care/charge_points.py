"""Where a charging record or an authorization took place, as support names it: the location (name, address,
city, time zone), the EVSE's printed id and the operator (the CPO's name).

The charging records and the authorization log carry OCPI keys only (party, location id, EVSE uid); this turns
the keys of a whole page into names in a fixed number of queries, whatever the number of rows. The operator is
named by what we know of the party, best first: the name the party gave in its credentials or a hub's
ClientInfo (``PartnerParty.name``), the name of the direct partner that is that party, the operator named in the
location, else the party's codes (``NL*TCP``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import func, or_, select, tuple_

from app.extensions import db
from app.ocpi_ids import ci_key
from app.roaming.models import Evse, Location, Partner, PartnerParty

CPO_ROLE = "CPO"


@dataclass(frozen=True)
class PartyKey:
    """A CPO's party, upper-case as stored."""

    country_code: str
    party_id: str

    @property
    def code(self) -> str:
        return f"{self.country_code}*{self.party_id}"


@dataclass(frozen=True)
class Spot:
    """A location as we hold it (published by its CPO), with what support shows of it."""

    location_id: int
    party: PartyKey
    ocpi_key: str  # ci_key of the OCPI location id
    delivered_by: int | None  # the partner (connection) that sent it
    name: str | None
    address: str
    city: str
    time_zone: str | None
    operator_name: str | None  # the location's own ``operator.name``, if the CPO gave one


def operator_names(parties: Iterable[PartyKey], spots: Iterable[Spot] = ()) -> dict[PartyKey, str]:
    """The operator's name of each party (see the module docstring for the order); two queries at most."""
    wanted = set(parties)
    if not wanted:
        return {}
    pairs = [(party.country_code, party.party_id) for party in wanted]
    named: dict[PartyKey, str] = {}
    for country_code, party_id, name in db.session.execute(
        select(PartnerParty.country_code, PartnerParty.party_id, PartnerParty.name).where(
            tuple_(PartnerParty.country_code, PartnerParty.party_id).in_(pairs),
            PartnerParty.role == CPO_ROLE,
            PartnerParty.name.is_not(None),
        )
    ):
        if name:
            named.setdefault(PartyKey(country_code, party_id), name)
    missing = [pair for pair in pairs if PartyKey(*pair) not in named]
    if missing:
        for country_code, party_id, name in db.session.execute(
            select(Partner.country_code, Partner.party_id, Partner.name).where(
                tuple_(Partner.country_code, Partner.party_id).in_(missing), Partner.is_hub.is_(False)
            )
        ):
            named.setdefault(PartyKey(country_code, party_id), name)
    for spot in spots:
        if spot.operator_name:
            named.setdefault(spot.party, spot.operator_name)
    return {party: named.get(party, party.code) for party in wanted}


_SPOT_COLUMNS = (
    Location.id,
    Location.country_code,
    Location.party_id,
    Location.ocpi_id_key,
    Location.partner_id,
    Location.name,
    Location.address,
    Location.city,
    Location.time_zone,
    Location.operator_name,
)


def _spot(row: Any) -> Spot:
    """A row of ``select(*_SPOT_COLUMNS)``."""
    location_id, country_code, party_id, key, partner_id, name, address, city, zone, operator = row
    return Spot(
        location_id=location_id,
        party=PartyKey(country_code, party_id),
        ocpi_key=key,
        delivered_by=partner_id,
        name=name,
        address=address,
        city=city,
        time_zone=zone,
        operator_name=operator,
    )


def spots_by_party(keys: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], Spot]:
    """The locations of (country code, party id, location id) keys (charging records name the CPO's party):
    one query, keyed by the folded key ``(CC, PPP, ci_key(id))``."""
    folded = {(ci_key(country), ci_key(party), ci_key(location)) for country, party, location in keys}
    if not folded:
        return {}
    rows = db.session.execute(
        select(*_SPOT_COLUMNS).where(tuple_(Location.country_code, Location.party_id, Location.ocpi_id_key).in_(folded))
    )
    spots = [_spot(row) for row in rows]
    return {(spot.party.country_code, spot.party.party_id, spot.ocpi_key): spot for spot in spots}


def spots_by_partner(keys: Collection[tuple[int, str]]) -> dict[tuple[int, str], Spot]:
    """The locations an authorization names: (partner id, location id) pairs, since a request for
    authorization names the location but not its party. A location matches when that partner delivered it, or
    it belongs to that partner's own party or a party it carries (a hub); an id no such location has stays
    out (support then sees the id alone rather than a guess). Three queries for any number of keys."""
    if not keys:
        return {}
    partner_ids = {partner_id for partner_id, _location in keys}
    parties: dict[int, set[tuple[str, str]]] = {partner_id: set() for partner_id in partner_ids}
    for partner_id, country_code, party_id in db.session.execute(
        select(Partner.id, Partner.country_code, Partner.party_id).where(Partner.id.in_(partner_ids))
    ):
        parties[partner_id].add((country_code, party_id))
    for partner_id, country_code, party_id in db.session.execute(
        select(PartnerParty.partner_id, PartnerParty.country_code, PartnerParty.party_id).where(
            PartnerParty.partner_id.in_(partner_ids)
        )
    ):
        parties[partner_id].add((country_code, party_id))
    all_parties = {pair for pairs in parties.values() for pair in pairs}
    location_keys = {ci_key(location) for _partner, location in keys}
    conditions = [Location.partner_id.in_(partner_ids)]
    if all_parties:
        conditions.append(tuple_(Location.country_code, Location.party_id).in_(all_parties))
    rows = db.session.execute(select(*_SPOT_COLUMNS).where(Location.ocpi_id_key.in_(location_keys), or_(*conditions)))
    candidates = [_spot(row) for row in rows]
    found: dict[tuple[int, str], Spot] = {}
    for partner_id, location in keys:
        key = ci_key(location)
        matching = [spot for spot in candidates if spot.ocpi_key == key]
        delivered = [spot for spot in matching if spot.delivered_by == partner_id]
        carried = [
            spot
            for spot in matching
            if (spot.party.country_code, spot.party.party_id) in parties.get(partner_id, set())
        ]
        chosen = delivered or carried
        if chosen:
            found[(partner_id, location)] = chosen[0]
    return found


def printed_evse_ids(pairs: Iterable[tuple[int, str]]) -> dict[tuple[int, str], str]:
    """The printed EVSE id (``evse_id``, e.g. ``NL*TCP*E123``) of (location row id, EVSE uid) pairs, keyed by
    (location row id, ci_key(uid)); EVSEs without a printed id are left out. One query."""
    wanted = {(location_id, ci_key(uid)) for location_id, uid in pairs}
    if not wanted:
        return {}
    rows = db.session.execute(
        select(Evse.location_id, Evse.uid, Evse.evse_id).where(
            Evse.location_id.in_({location_id for location_id, _uid in wanted}),
            func.upper(Evse.uid).in_({uid for _location, uid in wanted}),
        )
    )
    return {
        (location_id, ci_key(uid)): evse_id
        for location_id, uid, evse_id in rows
        if evse_id and (location_id, ci_key(uid)) in wanted
    }


@dataclass(frozen=True)
class Place:
    """Where a charging record took place, for display."""

    location: str  # the location's name (else its address, else its OCPI id)
    city: str
    evse_id: str  # the printed EVSE id, else its OCPI uid
    operator: str  # the CPO's name (see operator_names)
    time_zone: str | None  # the location's own zone, when the CPO gave one


class Recorded(NamedTuple):
    """Where a charging record says it took place: the CPO's party, the location id and EVSE uid, and the
    record's own description of the place (a CDR's ``cdr_location``; a session has none)."""

    country_code: str
    party_id: str
    location_id: str
    evse_uid: str
    in_record: dict[str, Any] | None = None

    @property
    def party(self) -> PartyKey:
        return PartyKey(ci_key(self.country_code), ci_key(self.party_id))

    @property
    def location_key(self) -> tuple[str, str, str]:
        return (ci_key(self.country_code), ci_key(self.party_id), ci_key(self.location_id))


def places_of(records: list[Recorded]) -> list[Place]:
    """The place of each record, in three queries for any number: the location as we hold it (else as the record
    describes it), the printed EVSE id and the operator's name."""
    spots = spots_by_party(record.location_key for record in records)
    evse_ids = printed_evse_ids(
        (spot.location_id, record.evse_uid)
        for record in records
        if (spot := spots.get(record.location_key)) is not None
    )
    operators = operator_names({record.party for record in records}, spots.values())
    places = []
    for record in records:
        spot = spots.get(record.location_key)
        told = record.in_record or {}
        names = (spot.name, told.get("name"), spot.address) if spot else (told.get("name"),)
        places.append(
            Place(
                location=next((name for name in (*names, told.get("address")) if name), record.location_id),
                city=(spot.city if spot else None) or told.get("city") or "",
                evse_id=(evse_ids.get((spot.location_id, ci_key(record.evse_uid))) if spot else None)
                or told.get("evse_id")
                or record.evse_uid,
                operator=operators[record.party],
                time_zone=spot.time_zone if spot else None,
            )
        )
    return places
