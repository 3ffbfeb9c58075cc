"""Where a charging record took place: the published name and city of its location, by the OCPI key the
charging records carry (one query for any number of keys)."""

from __future__ import annotations

from app.charging.services import LocationKey
from app.roaming.places import UNKNOWN_PLACE, Place, places_of
from app.roaming.receive.locations import upsert_location
from tests.factories import one_connector_location


def test_places_of_names_known_locations_and_leaves_the_others_unknown(db_session):
    upsert_location(
        {**one_connector_location("T1"), "name": "Station Utrecht"}, partner=None, country_code="NL", party_id="TCP"
    )
    unnamed = {**one_connector_location("T1"), "id": "LOC-NONAME", "city": "Amersfoort"}
    upsert_location(unnamed, partner=None, country_code="NL", party_id="TCP")
    known, nameless = LocationKey("NL", "TCP", "LOC-EST"), LocationKey("NL", "TCP", "LOC-NONAME")
    other_party = LocationKey("NL", "XYZ", "LOC-EST")  # the same id at another CPO is another location

    places = places_of([known, nameless, other_party, known])

    assert places == {
        known: Place("Station Utrecht", "Utrecht"),
        nameless: Place(None, "Amersfoort"),
        other_party: UNKNOWN_PLACE,
    }
    assert places_of([]) == {}
