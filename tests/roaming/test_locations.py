"""Locations Receiver (mod_locations) through the real HTTP endpoints, with the official examples."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from app.extensions import db
from app.roaming.models import Evse, Location, PartnerParty
from app.roaming.receive.location_validation import sanitise_power_w
from tests.shared_data import EXAMPLES as SHARED_EXAMPLES

EXAMPLES = SHARED_EXAMPLES
LOCATION_EXAMPLES = sorted(
    p.name for p in EXAMPLES.glob("location_*.json") if "country_code" in json.loads(p.read_text())
)
# Fragments (not whole Locations): accepted as PATCH bodies on the field they describe.
FRAGMENT_FIELDS = {
    "location_energymix_example_complete.json": None,  # already {"energy_mix": ...}
    "location_energymix_example_energy_provider.json": None,
    "location_energymix_example_simple.json": None,
    "location_regularhours_example.json": None,  # {"opening_times": ...}
    "location_hours_247_open_exception_closing.json": "opening_times",  # an Hours object
    "location_hours_opening_hours_with_exceptional_closing.json": "opening_times",
    "location_hours_opening_hours_with_exceptional_opening.json": "opening_times",
}


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def url(obj: dict, *parts: str) -> str:
    return "/".join(["/ocpi/2.2.1/locations", obj["country_code"], obj["party_id"], obj["id"], *parts])


@pytest.fixture
def parties(partner):  # type: ignore[no-untyped-def]
    """The test CPO speaks for the parties of the official examples."""
    for cc, pid in {("BE", "BEC"), ("SE", "EVC"), ("NL", "ALF"), ("NL", "ALL"), ("DE", "ALL"), ("NL", "TNM")}:
        partner.parties.append(PartnerParty(country_code=cc, party_id=pid, role="CPO"))
    db.session.flush()
    return partner


def test_every_location_example_is_accepted_and_read_back_unchanged(ocpi, parties):
    assert len(LOCATION_EXAMPLES) == 6
    stored: set[str] = set()
    for name in LOCATION_EXAMPLES:
        obj = example(name)
        response = ocpi.put(url(obj), obj)
        # Created (status_codes) the first time; two examples share a Location id: the second one updates it.
        assert response.status_code == (200 if url(obj) in stored else 201), (name, response.json)
        stored.add(url(obj))
        assert response.json["status_code"] == 1000
        assert response.headers["X-Request-ID"] == "req-1"
        got = ocpi.get(url(obj))
        assert got.status_code == 200
        assert got.json["data"] == obj, name


def test_fragment_examples_are_accepted_as_patches(ocpi, parties):
    loc = example("location_example.json")
    ocpi.put(url(loc), loc)
    for name, wrap in FRAGMENT_FIELDS.items():
        fragment = example(name)
        body = {wrap: fragment} if wrap else dict(fragment)
        body["last_updated"] = "2020-01-01T00:00:00Z"
        response = ocpi.patch(url(loc), body)
        assert response.status_code == 200, (name, response.json)
        stored = ocpi.get(url(loc)).json["data"]
        key = wrap or next(iter(fragment))
        assert stored[key] == (fragment if wrap else fragment[key])


def test_put_add_evse_example_is_refused_naming_the_missing_field(ocpi, parties):
    loc = example("location_example.json")
    ocpi.put(url(loc), loc)
    before = ocpi.get(url(loc, "3256")).json["data"]
    response = ocpi.put(url(loc, "3256"), example("location_put_example_add_evse.json"))
    assert response.status_code == 400
    assert response.json["status_code"] == 2001
    message = response.json["status_message"]
    assert message.startswith("connectors[0].power_type is required")
    for missing in ("max_voltage", "max_amperage", "last_updated"):
        assert f"connectors[0].{missing} is required" in message
    assert ocpi.get(url(loc, "3256")).json["data"] == before  # nothing stored


def test_missing_field_in_nested_connector_names_the_path(ocpi, parties):
    loc = example("location_example.json")
    del loc["evses"][1]["connectors"][0]["power_type"]
    response = ocpi.put(url(loc), loc)
    assert response.status_code == 400
    assert response.json["status_code"] == 2001
    assert response.json["status_message"].startswith("evses[1].connectors[0].power_type is required")
    assert ocpi.get(url(loc)).status_code == 404


def test_malformed_json_is_2001(ocpi, parties):
    response = ocpi.call("PUT", "/ocpi/2.2.1/locations/BE/BEC/LOC1", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json["status_code"] == 2001


def test_get_at_three_levels_and_unknown_objects(ocpi, parties):
    loc = example("location_example.json")
    ocpi.put(url(loc), loc)
    assert ocpi.get(url(loc, "3257")).json["data"] == loc["evses"][1]
    assert ocpi.get(url(loc, "3256", "2")).json["data"] == loc["evses"][0]["connectors"][1]
    for path in (url({**loc, "id": "NOPE"}), url(loc, "9999"), url(loc, "3256", "9")):
        response = ocpi.get(path)
        assert response.status_code == 404
        assert response.json["status_code"] == 2003


def test_patch_at_three_levels_updates_parent_last_updated(ocpi, parties):
    loc = example("location_example.json")
    ocpi.put(url(loc), loc)

    status = example("location_patch_example_status.json")  # EVSE status: live availability
    assert ocpi.patch(url(loc, "3256"), status).json["status_code"] == 1000
    evse = ocpi.get(url(loc, "3256")).json["data"]
    assert evse["status"] == "CHARGING"
    assert evse["last_updated"] == status["last_updated"]
    assert ocpi.get(url(loc)).json["data"]["last_updated"] == status["last_updated"]

    tariff = {"tariff_ids": ["15"], "last_updated": "2019-06-25T08:00:00Z"}
    assert ocpi.patch(url(loc, "3257", "1"), tariff).json["status_code"] == 1000
    stored = ocpi.get(url(loc)).json["data"]
    assert stored["evses"][1]["connectors"][0]["tariff_ids"] == ["15"]
    assert stored["evses"][1]["last_updated"] == tariff["last_updated"]
    assert stored["last_updated"] == tariff["last_updated"]

    name = {"name": "Interparking Gent Zuid", "last_updated": "2019-06-26T12:39:09Z"}
    assert ocpi.patch(url(loc), name).json["status_code"] == 1000
    stored = ocpi.get(url(loc)).json["data"]
    assert stored["name"] == "Interparking Gent Zuid"
    assert stored["evses"][1]["connectors"][0]["tariff_ids"] == ["15"]  # untouched


def test_patch_remove_evse_keeps_it_as_removed(ocpi, parties):
    loc = example("location_example.json")
    ocpi.put(url(loc), loc)
    response = ocpi.patch(url(loc, "3256"), example("location_patch_example_remove_evse.json"))
    assert response.status_code == 200
    evse = db.session.query(Evse).filter_by(uid="3256").one()
    assert evse.status == "REMOVED"
    assert len(ocpi.get(url(loc)).json["data"]["evses"]) == 2


def test_patch_without_last_updated_is_2001(ocpi, parties):
    loc = example("location_example.json")
    ocpi.put(url(loc), loc)
    response = ocpi.patch(url(loc, "3256"), {"status": "CHARGING"})
    assert response.status_code == 400
    assert response.json["status_code"] == 2001
    assert "last_updated" in response.json["status_message"]
    bad = ocpi.patch(url(loc, "3256"), {"status": "DANCING", "last_updated": "2030-01-01T00:00:00Z"})
    assert bad.status_code == 400
    assert bad.json["status_message"].startswith("status must be one of")
    assert ocpi.get(url(loc, "3256")).json["data"]["status"] == "AVAILABLE"


def test_patch_on_unknown_object_is_2003(ocpi, parties):
    loc = example("location_example.json")
    ocpi.put(url(loc), loc)
    response = ocpi.patch(url(loc, "nope"), example("location_patch_example_status.json"))
    assert response.status_code == 404
    assert response.json["status_code"] == 2003


def test_older_patch_or_put_does_not_overwrite_newer_data(ocpi, parties):
    loc = example("location_example.json")
    ocpi.put(url(loc), loc)
    newer = {"status": "CHARGING", "last_updated": "2020-01-01T10:00:00Z"}
    older = {"status": "OUTOFORDER", "last_updated": "2020-01-01T09:00:00Z"}
    assert ocpi.patch(url(loc, "3256"), newer).status_code == 200
    late = ocpi.patch(url(loc, "3256"), older)
    assert late.status_code == 200 and late.json["status_code"] == 1000  # acknowledged ...
    assert ocpi.get(url(loc, "3256")).json["data"]["status"] == "CHARGING"  # ... not applied

    stale_put = copy.deepcopy(loc)  # last_updated 2015: older than the PATCH of 2020 on the Location
    stale_put["name"] = "Old name"
    assert ocpi.put(url(loc), stale_put).json["status_code"] == 1000
    assert ocpi.get(url(loc)).json["data"]["name"] == "Gent Zuid"


def test_put_evse_and_connector_update_parents(ocpi, parties):
    loc = example("location_example.json")
    ocpi.put(url(loc), loc)
    evse = copy.deepcopy(loc["evses"][0])
    evse["uid"] = "4000"
    evse["last_updated"] = "2021-02-02T10:00:00Z"
    assert ocpi.put(url(loc, "4000"), evse).status_code == 201  # a new EVSE
    assert ocpi.get(url(loc)).json["data"]["last_updated"] == "2021-02-02T10:00:00Z"

    connector = {
        **loc["evses"][0]["connectors"][0],
        "id": "3",
        "max_electric_power": 22,
        "last_updated": "2021-03-03T10:00:00Z",
    }
    assert ocpi.put(url(loc, "4000", "3"), connector).status_code == 201  # a new connector
    data = ocpi.get(url(loc)).json["data"]
    assert data["last_updated"] == "2021-03-03T10:00:00Z"
    assert data["evses"][2]["last_updated"] == "2021-03-03T10:00:00Z"
    assert data["evses"][2]["connectors"][2] == connector  # raw value kept
    stored = db.session.query(Evse).filter_by(uid="4000").one()
    assert stored.max_power_kw == Decimal("22.000")  # 22 "W" was kW


def test_another_partys_location_is_refused(ocpi, partner):
    loc = example("location_example.json")  # BE/BEC: not a party of the test CPO (NL/TCP)
    response = ocpi.put(url(loc), loc)
    assert response.status_code == 403
    assert response.json["status_code"] == 2000
    assert db.session.query(Location).count() == 0
    own = {**loc, "country_code": "NL", "party_id": "TCP"}
    mismatch = ocpi.put("/ocpi/2.2.1/locations/NL/TCP/LOC1", {**own, "party_id": "BEC"})
    assert mismatch.status_code == 400
    assert "party_id" in mismatch.json["status_message"]


def test_unknown_token_is_401(client, partner):
    response = client.get("/ocpi/2.2.1/locations/NL/TCP/X", headers={"Authorization": "Token nope"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("raw", "power_type", "volts", "amps", "expected"),
    [
        (11000, "AC_3_PHASE", 230, 16, 11000),  # as sent
        (None, "AC_3_PHASE", 230, 16, 11040),  # missing: nominal V × A × phases
        (11, "AC_3_PHASE", 230, 16, 11000),  # sent in kW
        (150, "DC", 920, 400, 150000),  # sent in kW, legitimately below nominal once fixed
        (150000000, "DC", 920, 400, 150000),  # sent in mW
        (50000, "DC", 1000, 400, 50000),  # limited below nominal: kept
        (22000, "AC_1_PHASE", 230, 32, 22000),  # above nominal (wrong phase count): kept
        (7, None, None, None, 7000),
    ],
)
def test_power_sanitising_rule(raw, power_type, volts, amps, expected):
    assert sanitise_power_w(raw, power_type, volts, amps) == expected


def test_a_new_location_asks_for_the_finder_statistics_and_an_update_does_not(ocpi, parties, monkeypatch):
    """A CPO pushing its network object by object grows what the finder reads many times over; each new object
    asks ``refresh_grown_statistics`` (one catalogue query; ANALYZE once a table has doubled: tested in
    tests/billing/test_run_statistics.py), so the finder's prepared plans follow. An update grows nothing."""
    from app.roaming.door.v221 import locations as door
    from app.roaming.receive.location_writes import LOCATION_TABLES

    asked: list[tuple] = []
    monkeypatch.setattr(door, "refresh_grown_statistics", lambda tables: asked.append(tuple(tables)) or [])
    loc = example("location_example.json")
    assert ocpi.put(url(loc), loc).status_code == 201
    assert asked == [LOCATION_TABLES]
    assert ocpi.put(url(loc), loc).status_code == 200
    assert asked == [LOCATION_TABLES]
