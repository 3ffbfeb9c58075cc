"""Searching near a point: what is shown, every filter (the connector ones on the same connector), the order and
the pages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from geopy.distance import geodesic

from app.extensions import db
from app.finder.filters import Current, Filters
from app.finder.queries import FinderInputError, NearbyQuery
from app.finder.services import location_details, search_nearby
from app.roaming.models import PartnerStatus
from tests.finder.builders import (
    AT,
    CCS_50KW,
    CCS_150KW,
    CHADEMO_50KW,
    TYPE2_11KW,
    TYPE2_22KW,
    add_location,
    add_partner,
    connector,
    evse,
)

HERE = (52.0900, 5.1100)  # Utrecht
STEP = 0.001  # ~111 m of latitude


def north(metres_steps: float) -> tuple[float, float]:
    return (HERE[0] + STEP * metres_steps, HERE[1])


def names(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [item.name for item in page.items]


def search(**filters) -> list[str]:  # type: ignore[no-untyped-def]
    return names(search_nearby(NearbyQuery(*HERE, radius_km=5, filters=Filters(**filters)), at=AT))


@pytest.fixture
def street(db_session):  # type: ignore[no-untyped-def]
    """Locations north of HERE, nearest first: A, B, C, F are shown; D (unpublished) and E (removed) never."""
    add_location(
        *north(1),
        evse("A1", connector(TYPE2_22KW)),
        evse("A2", connector(CCS_150KW), status="CHARGING"),
        name="A",
    )
    add_location(*north(2), evse("B1", connector(CCS_50KW)), name="B")
    add_location(
        *north(3),
        evse("C1", connector(CHADEMO_50KW)),
        evse("C2", connector(TYPE2_11KW), status="OUTOFORDER"),
        name="C",
    )
    add_location(*north(4), evse("D1", connector(CCS_150KW)), name="D", publish=False)
    add_location(*north(5), evse("E1", connector(CCS_150KW), status="REMOVED"), name="E")
    add_location(*north(6), evse("F1", connector(TYPE2_11KW)), name="F", operator="Allego")


def test_shown_nearest_first_never_unpublished_nor_removed(street):
    assert search() == ["A", "B", "C", "F"]


def test_connector_standard(street):
    assert search(connector_types=frozenset({"IEC_62196_T2_COMBO"})) == ["A", "B"]
    assert search(connector_types=frozenset({"CHADEMO", "IEC_62196_T2"})) == ["A", "C", "F"]


def test_minimum_power(street):
    assert search(min_power_kw=Decimal(50)) == ["A", "B", "C"]
    assert search(min_power_kw=Decimal("22.08")) == ["A", "B", "C"]  # A's Type 2: 22 kW as sent, not nominal
    assert search(min_power_kw=Decimal(100)) == ["A"]


def test_ac_or_dc(street):
    assert search(current=Current.DC) == ["A", "B", "C"]
    assert search(current=Current.AC) == ["A", "C", "F"]
    assert search(current=Current.AC, min_power_kw=Decimal(20)) == ["A"]


def test_available_now(street):
    assert search(available_now=True) == ["A", "B", "C", "F"]
    # C's Type 2 is out of order: C has an available connector, and a Type 2, but not the same one.
    assert search(available_now=True, connector_types=frozenset({"IEC_62196_T2"})) == ["A", "F"]


def test_filters_hold_for_the_same_connector(street):
    # A has a CCS of 150 kW and an available connector, but its CCS is charging.
    assert search(connector_types=frozenset({"IEC_62196_T2_COMBO"}), min_power_kw=Decimal(100)) == ["A"]
    assert search(connector_types=frozenset({"IEC_62196_T2_COMBO"}), available_now=True) == ["B"]
    assert (
        search(connector_types=frozenset({"IEC_62196_T2_COMBO"}), min_power_kw=Decimal(100), available_now=True) == []
    )
    assert search(current=Current.DC, available_now=True, min_power_kw=Decimal(50)) == ["B", "C"]


def test_operator(street):
    assert search(operator="allego") == ["F"]
    assert search(operator="ALLEGO", current=Current.DC) == []
    assert search(operator="Test Operator", connector_types=frozenset({"CHADEMO"})) == ["C"]


def test_result_shows_live_evses_and_which_connectors_match(street):
    page = search_nearby(
        NearbyQuery(*HERE, radius_km=5, filters=Filters(connector_types=frozenset({"IEC_62196_T2_COMBO"}))), at=AT
    )
    first = page.items[0]
    assert first.name == "A"
    assert [(e.uid, e.status) for e in first.evses] == [("A1", "AVAILABLE"), ("A2", "CHARGING")]
    assert [(c.label, c.matches, c.power_kw) for e in first.evses for c in e.connectors] == [
        ("Type 2", False, Decimal("22.000")),
        ("CCS", True, Decimal("150.000")),
    ]
    assert first.max_power_kw == Decimal("150.000")
    assert first.priced_connector == ("A2", "1")
    assert first.evses[1].status_updated_at == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    exact = geodesic(HERE, (float(first.latitude), float(first.longitude))).km
    assert first.distance_km == Decimal(repr(exact)).quantize(Decimal("0.001"))
    assert (first.latitude, first.longitude) == ("52.091000", "5.110000")  # the OCPI strings as sent
    assert first.navigation.google_maps.endswith("destination=52.091,5.11")
    assert first.operator == "Test Operator" and first.city == "Utrecht"


def test_removed_evses_are_not_shown(db_session):
    add_location(*north(1), evse("X1", connector(TYPE2_11KW)), evse("X2", connector(CCS_50KW), status="REMOVED"))
    [item] = search_nearby(NearbyQuery(*HERE, radius_km=1), at=AT).items
    assert [e.uid for e in item.evses] == ["X1"]
    assert search(current=Current.DC) == []


def test_radius_is_exact(db_session):
    """The geodesic distance decides, not the spherical approximation that bounds it."""
    from app.finder.distance import haversine_km

    inside = add_location(52.0, 5.0, name="inside")
    add_location(52.0898, 5.0, name="boundary")
    exact = geodesic((52.0, 5.0), (52.0898, 5.0)).km
    assert 9.99 < exact < 9.995
    assert haversine_km(52.0, 5.0, 52.0898, 5.0) < 9.99  # on the sphere it would be inside 9.99 km
    assert names(search_nearby(NearbyQuery(52.0, 5.0, radius_km=9.99), at=AT)) == [inside.name]
    assert names(search_nearby(NearbyQuery(52.0, 5.0, radius_km=9.995), at=AT)) == ["inside", "boundary"]


def test_removed_partner_hides_its_locations(db_session):
    gone = add_partner("Gone CPO", "GON", status=PartnerStatus.REMOVED)
    suspended = add_partner("Paused CPO", "PAU", status=PartnerStatus.SUSPENDED)
    add_location(*north(1), name="of removed", party_id="GON", partner=gone)
    add_location(*north(2), name="of suspended", party_id="PAU", partner=suspended)
    add_location(*north(3), name="imported")
    assert search() == ["of suspended", "imported"]


def test_works_with_my_card(db_session):
    add_partner("Direct CPO", "DIR")
    add_partner("Hub", "HUB", is_hub=True, relays=(("HBA", "CONNECTED"), ("HBB", "OFFLINE")))
    add_partner("Pending CPO", "PND", status=PartnerStatus.PENDING)
    for steps, party in enumerate(("DIR", "HBA", "HBB", "PND", "UNK"), start=1):
        add_location(*north(steps), name=party, party_id=party)
    assert search() == ["DIR", "HBA", "HBB", "PND", "UNK"]
    assert search(my_cards=True) == ["DIR", "HBA"]
    assert search(my_cards=True, connector_types=frozenset({"CHADEMO"})) == []


def test_open_now_in_each_locations_time_zone(db_session):
    office_hours = {
        "twentyfourseven": False,
        "regular_hours": [{"weekday": day, "period_begin": "08:00", "period_end": "18:00"} for day in range(1, 8)],
    }
    # AT is 08:00 UTC: 10:00 in Amsterdam (open), 04:00 in New York (closed), 17:00 in Tokyo (open).
    add_location(*north(1), name="Amsterdam hours", opening_times=office_hours)
    add_location(*north(2), name="New York hours", opening_times=office_hours, time_zone="America/New_York")
    add_location(*north(3), name="Tokyo hours", opening_times=office_hours, time_zone="Asia/Tokyo")
    add_location(*north(4), name="no hours")
    closed_for_christmas = {
        "twentyfourseven": True,
        "exceptional_closings": [{"period_begin": "2026-10-14T06:00:00Z", "period_end": "2026-10-14T12:00:00Z"}],
    }
    add_location(*north(5), name="closed today", opening_times=closed_for_christmas)
    assert search() == ["Amsterdam hours", "New York hours", "Tokyo hours", "no hours", "closed today"]
    assert search(open_now=True) == ["Amsterdam hours", "Tokyo hours", "no hours"]
    page = search_nearby(NearbyQuery(*HERE, radius_km=5), at=AT)
    assert [(item.name, item.open_now) for item in page.items][1:4] == [
        ("New York hours", False),
        ("Tokyo hours", True),
        ("no hours", None),  # unknown: said so, and kept by the filter
    ]
    assert page.items[1].time_zone == "America/New_York"


def test_pages_follow_each_other_without_gaps_or_repeats(db_session):
    for steps in range(25):
        add_location(*north(steps * 0.5), name=f"L{steps:02d}")
    seen, cursor, pages = [], None, 0
    while True:
        page = search_nearby(NearbyQuery(*HERE, radius_km=5, limit=10, cursor=cursor), at=AT)
        seen += names(page)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert seen == [f"L{steps:02d}" for steps in range(25)]
    # A cursor is bound to its search.
    first = search_nearby(NearbyQuery(*HERE, radius_km=5, limit=10), at=AT)
    with pytest.raises(FinderInputError) as error:
        search_nearby(NearbyQuery(*HERE, radius_km=4, limit=10, cursor=first.next_cursor), at=AT)
    assert error.value.parameter == "cursor"


def test_a_page_exactly_full_has_no_next_cursor(db_session):
    for steps in range(3):
        add_location(*north(steps), name=f"L{steps}")
    page = search_nearby(NearbyQuery(*HERE, radius_km=5, limit=3), at=AT)
    assert names(page) == ["L0", "L1", "L2"] and page.next_cursor is None


def test_ties_in_distance_are_ordered_by_id(db_session):
    first = add_location(*north(1), name="first")
    second = add_location(*north(1), name="second")
    assert first.id < second.id
    page = search_nearby(NearbyQuery(*HERE, radius_km=1, limit=1), at=AT)
    assert names(page) == ["first"]
    assert names(search_nearby(NearbyQuery(*HERE, radius_km=1, limit=1, cursor=page.next_cursor), at=AT)) == ["second"]


def test_far_and_sparse_results_are_found(db_session):
    # Nothing in the first rings: the search grows its circle to the radius.
    add_location(52.5, 5.11, name="45 km north")
    add_location(51.7, 5.11, name="43 km south")
    assert names(search_nearby(NearbyQuery(*HERE, radius_km=50), at=AT)) == ["43 km south", "45 km north"]
    assert names(search_nearby(NearbyQuery(*HERE, radius_km=44), at=AT)) == ["43 km south"]


def test_location_details(street):
    a = location_details("nl", "tcp", _id_of("A"), at=AT, origin=HERE)
    assert a is not None and a.name == "A" and a.distance_km is not None
    assert all(c.matches for e in a.evses for c in e.connectors)  # no filter: every live connector priced
    only_ccs = location_details("NL", "TCP", _id_of("A"), at=AT, filters=Filters(connector_types=frozenset({"CCS"})))
    assert only_ccs is not None and not any(c.matches for e in only_ccs.evses for c in e.connectors)
    assert location_details("NL", "TCP", _id_of("D"), at=AT) is None  # unpublished
    assert location_details("NL", "TCP", _id_of("E"), at=AT) is None  # removed by the CPO
    assert location_details("NL", "TCP", "nope", at=AT) is None


def _id_of(name: str) -> str:
    from app.roaming.models import Location

    return db.session.query(Location.ocpi_id).filter(Location.name == name).scalar()
