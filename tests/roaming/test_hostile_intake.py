"""Hostile and out-of-range input on every OCPI receiver (issue 12): refused with HTTP 400 / OCPI 2001 naming the
field (413 for an oversized body), never a 5xx, and nothing stored or changed.

One test per attack class, parametrised over the receivers it concerns: Locations PUT/PATCH at the three levels,
Tariffs PUT, Sessions PUT/PATCH, CDRs POST, Tokens authorize, Commands result, Credentials PUT, HubClientInfo
PUT. The same rules hold for objects that arrive by pull or import (checked on the services at the end).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from app.charging.models import Authorization, Cdr, ChargingSession
from app.extensions import db
from app.roaming.models import Connector, Evse, Location, Partner, PartnerParty, TariffVersion
from app.roaming.ocpi.body import check_tree
from app.roaming.ocpi.reader import InvalidObjectError
from app.roaming.receive.cdrs import store_cdr
from app.roaming.receive.locations import upsert_locations
from app.roaming.receive.sessions import CDR_DIMENSIONS, SESSION_DIMENSIONS, store_session
from app.roaming.receive.tariffs import store_tariffs
from tests.roaming.conftest import OcpiTestClient, add_registered_hub
from tests.roaming.token_fixtures import example

HUB_TOKEN = "hub-token-for-hostile-tests"
LATER = "2022-02-02T10:00:00Z"
LOC = "/ocpi/2.2.1/locations/NL/TCP/LOC1"


# --------------------------------------------------------------------------------------------- valid objects


def _ours(obj: dict[str, Any]) -> dict[str, Any]:
    """An official example made the test partner's (NL/TCP), so only the attack is wrong with it."""
    return {**copy.deepcopy(obj), "country_code": "NL", "party_id": "TCP"}


def location() -> dict[str, Any]:
    return _ours(example("location_example.json"))


def evse() -> dict[str, Any]:
    return copy.deepcopy(location()["evses"][0])  # uid 3256, connectors 1 and 2


def connector() -> dict[str, Any]:
    return copy.deepcopy(evse()["connectors"][0])  # id 1


def tariff() -> dict[str, Any]:
    return _ours(example("tariff_1_simple_2hour.json"))  # id 12


def session() -> dict[str, Any]:
    return _ours(example("session_example_2_short_finished.json"))  # id 101


def cdr() -> dict[str, Any]:
    return _ours(example("cdr_example.json"))  # id 12345


def credentials() -> dict[str, Any]:
    return {
        "token": "their-new-token",
        "url": "https://cpo.example/ocpi/versions",
        "roles": [{"role": "CPO", "party_id": "TCP", "country_code": "NL", "business_details": {"name": "Test CPO"}}],
    }


def client_info() -> dict[str, Any]:
    return {"country_code": "NL", "party_id": "ALL", "role": "CPO", "status": "CONNECTED", "last_updated": LATER}


@dataclass(frozen=True)
class Receiver:
    method: str
    path: str
    body: Callable[[], dict[str, Any]]
    needs: str = ""  # "location" / "session": stored first; "hub": called by a hub


RECEIVERS = {
    "location PUT": Receiver("PUT", LOC, location),
    "location PATCH": Receiver("PATCH", LOC, lambda: {"name": "Gent Noord", "last_updated": LATER}, "location"),
    "evse PUT": Receiver("PUT", f"{LOC}/3256", evse, "location"),
    "evse PATCH": Receiver("PATCH", f"{LOC}/3256", lambda: {"status": "CHARGING", "last_updated": LATER}, "location"),
    "connector PUT": Receiver("PUT", f"{LOC}/3256/1", connector, "location"),
    "connector PATCH": Receiver(
        "PATCH", f"{LOC}/3256/1", lambda: {"max_amperage": 32, "last_updated": LATER}, "location"
    ),
    "tariff PUT": Receiver("PUT", "/ocpi/2.2.1/tariffs/NL/TCP/12", tariff),
    "session PUT": Receiver("PUT", "/ocpi/2.2.1/sessions/NL/TCP/101", session),
    "session PATCH": Receiver(
        "PATCH", "/ocpi/2.2.1/sessions/NL/TCP/101", lambda: {"kwh": 42, "last_updated": LATER}, "session"
    ),
    "cdr POST": Receiver("POST", "/ocpi/2.2.1/cdrs", cdr),
    "token authorize": Receiver("POST", "/ocpi/2.2.1/tokens/012345678/authorize", lambda: {"location_id": "LOC1"}),
    "command result": Receiver(
        "POST", "/ocpi/2.2.1/commands/START_SESSION/no-such-command", lambda: {"result": "ACCEPTED"}
    ),
    "credentials PUT": Receiver("PUT", "/ocpi/2.2.1/credentials", credentials),
    "hubclientinfo PUT": Receiver("PUT", "/ocpi/2.2.1/hubclientinfo/NL/ALL", client_info, "hub"),
}
OBJECT_RECEIVERS = [
    name for name in RECEIVERS if name.split()[0] in ("location", "evse", "connector", "tariff", "session", "cdr")
]


def _caller(client, ocpi: OcpiTestClient, receiver: Receiver) -> OcpiTestClient:  # type: ignore[no-untyped-def]
    if receiver.needs == "location":
        assert ocpi.put(LOC, location()).status_code == 201
    elif receiver.needs == "session":
        assert ocpi.put("/ocpi/2.2.1/sessions/NL/TCP/101", session()).status_code == 201
    elif receiver.needs == "hub":
        add_registered_hub(HUB_TOKEN, name="Hostile Hub")
        return OcpiTestClient(client, token=HUB_TOKEN)
    return ocpi


def _snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table a receiver writes (nothing may change after a refusal)."""
    db.session.expire_all()
    tables = (Location, Evse, Connector, TariffVersion, ChargingSession, Cdr, Authorization, Partner, PartnerParty)
    return {
        table.__tablename__: [
            dict(row) for row in db.session.execute(select(table.__table__).order_by(table.__table__.c.id)).mappings()
        ]
        for table in tables
    }


def _send(caller: OcpiTestClient, receiver: Receiver, text: str | bytes):  # type: ignore[no-untyped-def]
    return caller.call(receiver.method, receiver.path, data=text, content_type="application/json")


def _refused(caller: OcpiTestClient, receiver: Receiver, text: str | bytes, *, naming: str = "") -> str:
    """Send ``text``; it must be refused 400/2001 (naming ``naming``) with nothing stored. The message."""
    before = _snapshot()
    response = _send(caller, receiver, text)
    body = response.get_json()
    assert response.status_code == 400, (response.status_code, body)
    assert body["status_code"] == 2001, body
    assert naming in body["status_message"], body
    assert _snapshot() == before
    return body["status_message"]


def _with(body: dict[str, Any], placeholder_text: str, **fields: Any) -> str:
    """The body as JSON text with ``fields`` added, each ``"@"`` replaced by raw JSON text (NaN, deep nesting)."""
    return json.dumps({**body, **fields}).replace('"@"', placeholder_text)


@pytest.fixture(params=list(RECEIVERS))
def receiver(request, client, ocpi) -> tuple[OcpiTestClient, Receiver]:  # type: ignore[no-untyped-def]
    chosen = RECEIVERS[request.param]
    return _caller(client, ocpi, chosen), chosen


@pytest.fixture(params=OBJECT_RECEIVERS)
def object_receiver(request, client, ocpi) -> tuple[OcpiTestClient, Receiver]:  # type: ignore[no-untyped-def]
    chosen = RECEIVERS[request.param]
    return _caller(client, ocpi, chosen), chosen


# --------------------------------------------------------------------------------------------- C: hostile JSON


def test_deep_nesting_is_refused_before_parsing(receiver):
    caller, chosen = receiver
    deep = "[" * 1000 + "]" * 1000
    message = _refused(caller, chosen, _with(chosen.body(), deep, extension="@"))
    assert "nested deeper than 32 levels" in message
    _refused(caller, chosen, deep)  # the body itself


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(receiver, constant):
    caller, chosen = receiver
    message = _refused(caller, chosen, _with(chosen.body(), constant, extension={"nested": ["@"]}))
    assert f"{constant} is not a JSON number" in message


@pytest.mark.parametrize("character", ["\u0000", "\u0008", "\u001b", "\u007f", "\u0085", "\ud800"])
def test_control_characters_anywhere_are_refused_naming_the_path(receiver, character):
    caller, chosen = receiver
    text = json.dumps({**chosen.body(), "extension": {"list": [f"Gent{character}Zuid"]}})
    _refused(caller, chosen, text, naming="extension.list[0]")
    # ... and in a field name
    _refused(caller, chosen, json.dumps({**chosen.body(), f"bad{character}key": 1}), naming="field name")


def test_tab_and_line_breaks_in_text_are_kept_as_real_feeds_send_them(client, ocpi):
    """types.asciidoc forbids them, but the NDW feed has a tab in a location name and line breaks in tariff
    alt texts: harmless whitespace, kept rather than losing a real charge point."""
    chosen = RECEIVERS["location PUT"]
    caller = _caller(client, ocpi, chosen)
    body = {**chosen.body(), "name": "Gent\tZuid", "extension": {"note": "line one\r\nline two"}}
    response = _send(caller, chosen, json.dumps(body))
    assert response.status_code in (200, 201), response.get_json()
    assert db.session.scalar(select(Location.name).where(Location.ocpi_id == body["id"])) == "Gent\tZuid"


KNOWN_TEXT_FIELDS = {  # a field each object receiver reads or keeps, and the path it has in the message
    "location PUT": ("name", "name"),
    "location PATCH": ("name", "name"),
    "evse PUT": ("physical_reference", "physical_reference"),
    "evse PATCH": ("floor_level", "floor_level"),
    "connector PUT": ("terms_and_conditions", "terms_and_conditions"),
    "connector PATCH": ("terms_and_conditions", "terms_and_conditions"),
    "tariff PUT": ("currency", "currency"),
    "session PUT": ("meter_id", "meter_id"),
    "session PATCH": ("meter_id", "meter_id"),
    "cdr POST": ("remark", "remark"),
}


@pytest.mark.parametrize("name", list(KNOWN_TEXT_FIELDS))
def test_a_nul_in_a_field_we_read_is_refused(client, ocpi, name):
    chosen = RECEIVERS[name]
    caller = _caller(client, ocpi, chosen)
    field, path = KNOWN_TEXT_FIELDS[name]
    _refused(caller, chosen, json.dumps({**chosen.body(), field: "Gent\u0000Zuid"}), naming=path)


def test_a_nul_in_a_cdr_location_name_is_refused(ocpi):
    """The issue's case: PostgreSQL could not read the stored JSON back, so the driver was never invoiced."""
    body = cdr()
    body["cdr_location"]["name"] = "Gent\u0000Zuid"
    _refused(ocpi, RECEIVERS["cdr POST"], json.dumps(body), naming="cdr_location.name")


# --------------------------------------------------------------------------------------------- B: string lengths

TOO_LONG = {  # receiver → (mutation, the field named); one field per object beyond the spec's length
    "location PUT": (lambda b: b.update(name="x" * 256), "name"),
    "location PATCH": (lambda b: b.update(city="x" * 46), "city"),
    "evse PUT": (lambda b: b.update(physical_reference="x" * 17), "physical_reference"),
    "evse PATCH": (lambda b: b.update(directions=[{"language": "nl", "text": "x" * 513}]), "directions[0].text"),
    "connector PUT": (lambda b: b.update(tariff_ids=["x" * 37]), "tariff_ids[0]"),
    "connector PATCH": (lambda b: b.update(terms_and_conditions="https://" + "x" * 250), "terms_and_conditions"),
    "tariff PUT": (
        lambda b: b.update(tariff_alt_text=[{"language": "en", "text": "x" * 513}]),
        "tariff_alt_text[0].text",
    ),
    "session PUT": (lambda b: b.update(meter_id="x" * 256), "meter_id"),
    "session PATCH": (lambda b: b.update(authorization_reference="x" * 37), "authorization_reference"),
    "cdr POST": (lambda b: b["cdr_location"].update(evse_id="x" * 49), "cdr_location.evse_id"),
    "token authorize": (lambda b: b.update(location_id="x" * 37), "location_id"),
    "credentials PUT": (
        lambda b: b["roles"][0]["business_details"].update(name="x" * 101),
        "roles[0].business_details.name",
    ),
}


@pytest.mark.parametrize("name", list(TOO_LONG))
def test_strings_longer_than_the_spec_allows_are_refused(client, ocpi, name):
    chosen = RECEIVERS[name]
    caller = _caller(client, ocpi, chosen)
    body = chosen.body()
    damage, path = TOO_LONG[name]
    damage(body)
    message = _refused(caller, chosen, json.dumps(body), naming=path)
    assert "longer than" in message


def test_unknown_enum_values_of_fields_we_use_are_refused(client, ocpi):
    for name, damage, path in (
        ("evse PATCH", lambda b: b.update(status="HALF_BROKEN"), "status"),
        ("session PUT", lambda b: b.update(status="PAUSED"), "status"),
        (
            "cdr POST",
            lambda b: b["charging_periods"][0]["dimensions"][0].update(type="LIGHT_YEARS"),
            "charging_periods[0].dimensions[0].type",
        ),
        (
            "tariff PUT",
            lambda b: b["elements"][0]["price_components"][0].update(type="PER_SMILE"),
            "elements[0].price_components[0].type",
        ),
    ):
        chosen = RECEIVERS[name]
        caller = _caller(client, ocpi, chosen) if name == "evse PATCH" else ocpi
        body = chosen.body()
        damage(body)
        _refused(caller, chosen, json.dumps(body), naming=path)
    # An enum we only keep may hold a value of a newer version: accepted as sent.
    newer = {**location(), "parking_type": "ROOFTOP_HELIPAD", "facilities": ["TELEPORTER"]}
    assert ocpi.put(LOC, newer).status_code == 200  # the Location exists since the EVSE PATCH above


# --------------------------------------------------------------------------------------------- A: numbers

OUT_OF_RANGE = [  # (receiver, mutation, the field named)
    ("cdr POST", lambda b: b.update(total_energy="@1e30"), "total_energy"),
    ("cdr POST", lambda b: b.update(total_energy="@99999999999.999"), "total_energy"),
    ("cdr POST", lambda b: b.update(total_energy=-20_000), "total_energy"),
    ("cdr POST", lambda b: b.update(total_time=24 * 367), "total_time"),
    ("cdr POST", lambda b: b.update(total_cost={"excl_vat": "@1e12"}), "total_cost.excl_vat"),
    (
        "cdr POST",
        lambda b: b.update(total_parking_cost={"excl_vat": 4, "incl_vat": "@1e30"}),
        "total_parking_cost.incl_vat",
    ),
    (
        "cdr POST",
        lambda b: b["cdr_location"]["coordinates"].update(latitude="95.0000"),
        "cdr_location.coordinates.latitude",
    ),
    (
        "cdr POST",
        lambda b: b["charging_periods"][0]["dimensions"][0].update(volume="@1e30"),
        "charging_periods[0].dimensions[0].volume",
    ),
    (
        "cdr POST",
        lambda b: b["tariffs"][0]["elements"][0]["price_components"][0].update(price="@1e30"),
        "tariffs[0].elements[0].price_components[0].price",
    ),
    ("session PUT", lambda b: b.update(kwh="@1e30"), "kwh"),
    (
        "session PUT",
        lambda b: b["charging_periods"][2]["dimensions"][0].update(volume=-1),
        "charging_periods[2].dimensions[0].volume",
    ),
    ("session PATCH", lambda b: b.update(total_cost={"excl_vat": "@1e30"}), "total_cost.excl_vat"),
    ("connector PUT", lambda b: b.update(max_voltage=10**30), "max_voltage"),
    ("connector PUT", lambda b: b.update(max_amperage=10**6), "max_amperage"),
    ("connector PUT", lambda b: b.update(max_electric_power=10**12), "max_electric_power"),
    (
        "connector PATCH",
        lambda b: b.update(max_voltage=1500, max_amperage=3000, power_type="DC", max_electric_power=None),
        "max_amperage",
    ),  # 4.5 MW
    ("location PUT", lambda b: b["coordinates"].update(latitude="91.000000"), "coordinates.latitude"),
    (
        "location PUT",
        lambda b: (
            b["energy_mix"].update(energy_sources=[{"source": "SOLAR", "percentage": 300}])
            if "energy_mix" in b
            else b.update(
                energy_mix={"is_green_energy": True, "energy_sources": [{"source": "SOLAR", "percentage": 300}]}
            )
        ),
        "energy_mix.energy_sources[0].percentage",
    ),
    (
        "evse PUT",
        lambda b: b.update(coordinates={"latitude": "50.000000", "longitude": "-181.00000"}),
        "coordinates.longitude",
    ),
    (
        "tariff PUT",
        lambda b: b["elements"][0]["price_components"][0].update(price="@1e30"),
        "elements[0].price_components[0].price",
    ),
    (
        "tariff PUT",
        lambda b: b["elements"][0]["price_components"][0].update(step_size=10**12),
        "elements[0].price_components[0].step_size",
    ),
    ("tariff PUT", lambda b: b.update(max_price={"excl_vat": "@1e30"}), "max_price.excl_vat"),
    ("evse PATCH", lambda b: b.update(extension={"any": {"number": "@1e400"}}), "extension.any.number"),
    ("token authorize", lambda b: b.update(extension="@1e400"), "extension"),
]


@pytest.mark.parametrize(("name", "damage", "path"), OUT_OF_RANGE, ids=[f"{n}-{p}" for n, _, p in OUT_OF_RANGE])
def test_numbers_beyond_physics_or_columns_are_refused(client, ocpi, name, damage, path):
    chosen = RECEIVERS[name]
    caller = _caller(client, ocpi, chosen)
    body = chosen.body()
    damage(body)
    # "@1e30" stands for the raw JSON number 1e30 (json.dumps would not write 1e30 or 99999999999.999 as such).
    text = json.dumps(body)
    for raw in ("1e30", "99999999999.999", "1e12", "1e400"):
        text = text.replace(f'"@{raw}"', raw)
    _refused(caller, chosen, text, naming=path)


def test_the_official_examples_and_real_units_stay_accepted(ocpi):
    """The bounds are physical, not tight: the examples' Wh sent as kWh in a Session, more decimals than a
    column holds (rounded half up at intake), a credit CDR's negative cost."""
    assert ocpi.put("/ocpi/2.2.1/sessions/NL/TCP/101", session()).status_code == 201  # ENERGY 41000 (Wh)
    body = {**cdr(), "total_energy": 15.34256, "total_cost": {"excl_vat": -4.00005, "incl_vat": -4.4}}
    assert (
        ocpi.call("POST", "/ocpi/2.2.1/cdrs", data=json.dumps(body), content_type="application/json").status_code == 201
    )
    stored = db.session.scalar(select(Cdr))
    assert str(stored.total_energy) == "15.3426" and str(stored.total_cost_excl_vat) == "-4.0001"


# --------------------------------------------------------------------------------------------- C: DateTimes


@pytest.mark.parametrize(
    "moment", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00", "1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z"]
)
def test_datetimes_out_of_range_are_refused(ocpi, moment):
    assert ocpi.put(LOC, location()).status_code == 201
    assert ocpi.put("/ocpi/2.2.1/sessions/NL/TCP/101", session()).status_code == 201
    for name in (
        "location PUT",
        "location PATCH",
        "evse PUT",
        "evse PATCH",
        "connector PUT",
        "connector PATCH",
        "tariff PUT",
        "session PUT",
        "session PATCH",
        "cdr POST",
    ):
        chosen = RECEIVERS[name]
        _refused(ocpi, chosen, json.dumps({**chosen.body(), "last_updated": moment}), naming="last_updated")
    _refused(ocpi, RECEIVERS["cdr POST"], json.dumps({**cdr(), "start_date_time": moment}), naming="start_date_time")
    body = cdr()
    body["charging_periods"][0]["start_date_time"] = moment
    _refused(ocpi, RECEIVERS["cdr POST"], json.dumps(body), naming="charging_periods[0].start_date_time")


def test_a_client_info_timestamp_out_of_range_is_refused(client, ocpi):
    chosen = RECEIVERS["hubclientinfo PUT"]
    hub = _caller(client, ocpi, chosen)
    _refused(
        hub, chosen, json.dumps({**client_info(), "last_updated": "9999-12-31T23:59:59-01:00"}), naming="last_updated"
    )


# --------------------------------------------------------------------------------------------- C: URL and query


@pytest.mark.parametrize(
    ("method", "path", "parameter"),
    [
        ("GET", "/ocpi/2.2.1/locations/NL/TCP/LOC%001", "location_id"),
        ("PUT", "/ocpi/2.2.1/locations/NL/TCP/LOC%001", "location_id"),
        ("PATCH", "/ocpi/2.2.1/locations/NL/TCP/LOC1/32%0A56", "evse_uid"),
        ("PUT", "/ocpi/2.2.1/locations/NL/TCP/LOC1/3256/%00", "connector_id"),
        ("GET", "/ocpi/2.2.1/locations/NL/TCP/" + "L" * 37, "location_id"),
        ("GET", "/ocpi/2.2.1/locations/NL/TCPX/LOC1", "party_id"),
        ("PUT", "/ocpi/2.2.1/sessions/NL/TCP/10%001", "session_id"),
        ("PATCH", "/ocpi/2.2.1/sessions/NL/TCP/" + "S" * 37, "session_id"),
        ("PUT", "/ocpi/2.2.1/tariffs/NL/TCP/1%C2%852", "tariff_id"),
        ("DELETE", "/ocpi/2.2.1/tariffs/NL/TCP/%00", "tariff_id"),
        ("POST", "/ocpi/2.2.1/tokens/0123%00/authorize", "token_uid"),
        ("POST", "/ocpi/2.2.1/tokens/" + "9" * 37 + "/authorize", "token_uid"),
        ("POST", "/ocpi/2.2.1/commands/START_SESSION/ab%00c", "uid"),
        ("GET", "/ocpi/2.2.1/cdrs/99999999999999999999", "cdr_id"),
        ("GET", "/ocpi/2.2.1/hubclientinfo/N%00/ALL", "country_code"),
    ],
)
def test_bad_ids_in_the_url_are_refused_naming_them(ocpi, method, path, parameter):
    before = _snapshot()
    response = ocpi.call(method, path, json={"result": "ACCEPTED"} if method == "POST" else location())
    assert response.status_code == 400, (response.status_code, response.get_json())
    assert response.get_json()["status_code"] == 2001
    assert parameter in response.get_json()["status_message"]
    assert _snapshot() == before


@pytest.mark.parametrize(
    "query",
    [
        "offset=99999999999999999999",
        "offset=-1",
        "offset=abc",
        "offset=%EF%BC%91",
        "offset=2147483648",
        "limit=-5",
        "limit=0",
        "limit=99999999999999999999",
        "limit=1e3",
        "date_from=9999-12-31T23:59:59-01:00",
        "date_to=0001-01-01T00:00:00%2B01:00",
        "date_from=yesterday",
        "after=9999-12-31T23:59:59-01:00~1",
        "after=2020-01-01T00:00:00%2B00:00~99999999999999999999",
        "after=2020-01-01T00:00:00%2B00:00~1&total=99999999999999999999",
    ],
)
def test_bad_query_parameters_on_the_token_list_are_2001_naming_them(ocpi, query):
    response = ocpi.get(f"/ocpi/2.2.1/tokens?{query}")
    assert response.status_code == 400, (response.status_code, response.get_json())
    assert response.get_json()["status_code"] == 2001
    assert query.split("=", 1)[0] in response.get_json()["status_message"]


def test_good_query_parameters_still_work(ocpi):
    response = ocpi.get("/ocpi/2.2.1/tokens?offset=0&limit=5000&date_from=2015-01-01T00:00:00Z")
    assert response.status_code == 200 and response.headers["X-Limit"] == "1000"  # limit capped, not refused


# --------------------------------------------------------------------------------------------- D: body size


def test_a_body_over_the_limit_is_413_in_the_ocpi_envelope(receiver, app):
    caller, chosen = receiver
    limit = app.config["OCPI_MAX_BODY_BYTES"]
    text = json.dumps({**chosen.body(), "padding": "x" * limit})
    before = _snapshot()
    response = _send(caller, chosen, text)
    assert response.status_code == 413, (response.status_code, response.get_json())
    assert response.get_json()["status_code"] == 2000
    assert "timestamp" in response.get_json()
    assert _snapshot() == before


def test_a_chunked_body_over_the_limit_is_413_too(ocpi, app):
    """No Content-Length to check up front: reading stops at the limit (a server that de-chunks, as gunicorn
    does, says so with ``wsgi.input_terminated``)."""
    import io

    text = json.dumps({**location(), "padding": "x" * app.config["OCPI_MAX_BODY_BYTES"]}).encode()
    response = ocpi.client.open(
        LOC,
        method="PUT",
        input_stream=io.BytesIO(text),
        content_type="application/json",
        headers={**ocpi.headers(), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413, (response.status_code, response.get_json())
    assert _snapshot()["roaming_locations"] == []


# --------------------------------------------------------------------------------------------- E: time order


def test_a_cdr_ending_before_it_starts_is_refused(ocpi):
    _refused(
        ocpi,
        RECEIVERS["cdr POST"],
        json.dumps({**cdr(), "end_date_time": "2015-06-29T21:00:00Z"}),
        naming="end_date_time",
    )
    _refused(
        ocpi,
        RECEIVERS["cdr POST"],
        json.dumps({**cdr(), "end_date_time": "2016-07-01T00:00:00Z"}),
        naming="end_date_time",
    )  # more than 366 days


def test_a_charging_period_after_the_cdr_ends_is_refused_but_one_before_it_starts_is_not(ocpi):
    late = cdr()
    late["charging_periods"].append(
        {"start_date_time": "2015-06-29T23:40:00Z", "dimensions": [{"type": "PARKING_TIME", "volume": 0.1}]}
    )
    _refused(ocpi, RECEIVERS["cdr POST"], json.dumps(late), naming="charging_periods[1].start_date_time")
    # Dutch CPOs align periods on the hour: the first one starts before the session (21:39:09).
    aligned = cdr()
    aligned["charging_periods"][0]["start_date_time"] = "2015-06-29T21:00:00Z"
    response = ocpi.call("POST", "/ocpi/2.2.1/cdrs", data=json.dumps(aligned), content_type="application/json")
    assert response.status_code == 201, response.get_json()


def test_a_session_ending_before_it_starts_is_refused(client, ocpi):
    _refused(
        ocpi,
        RECEIVERS["session PUT"],
        json.dumps({**session(), "end_date_time": "2015-06-29T22:00:00Z"}),
        naming="end_date_time",
    )
    chosen = RECEIVERS["session PATCH"]
    _caller(client, ocpi, chosen)
    _refused(
        ocpi,
        chosen,
        json.dumps({"end_date_time": "2015-06-29T22:00:00Z", "last_updated": LATER}),
        naming="end_date_time",
    )


# --------------------------------------------------------------------------------------------- F: 201 Created


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", LOC, location),
        ("PUT", f"{LOC}/4000", lambda: {**evse(), "uid": "4000"}),
        ("PUT", f"{LOC}/3256/9", lambda: {**connector(), "id": "9"}),
        ("PUT", "/ocpi/2.2.1/sessions/NL/TCP/101", session),
        ("PUT", "/ocpi/2.2.1/tariffs/NL/TCP/12", tariff),
        ("POST", "/ocpi/2.2.1/cdrs", cdr),
    ],
)
def test_a_new_object_is_201_created_and_a_repeat_or_update_200(ocpi, method, path, body):
    if path.startswith(f"{LOC}/"):
        assert ocpi.put(LOC, location()).status_code == 201
    first = ocpi.call(method, path, json=body())
    assert (first.status_code, first.get_json()["status_code"]) == (201, 1000), first.get_json()
    again = ocpi.call(method, path, json=body())
    assert (again.status_code, again.get_json()["status_code"]) == (200, 1000), again.get_json()


def test_patches_are_never_201(client, ocpi):
    for name in ("location PATCH", "evse PATCH", "connector PATCH", "session PATCH"):
        chosen = RECEIVERS[name]
        if not _snapshot()["roaming_locations" if chosen.needs == "location" else "roaming_sessions"]:
            _caller(client, ocpi, chosen)
        response = ocpi.call(chosen.method, chosen.path, json=chosen.body())
        assert response.status_code == 200, (name, response.get_json())


# --------------------------------------------------------------------------------------------- pull and import


def test_the_same_rules_hold_for_objects_that_arrive_by_pull_or_import(db_session, partner):
    """The services check the whole tree themselves (the pull client parses with floats, an importer reads
    files): a NUL, an infinite number, an absurd value or deep nesting built in Python is refused per object."""
    bad_location = {**location(), "name": "Gent\u0000Zuid"}
    result = upsert_locations([bad_location, location()], partner=partner)
    assert result.stored == 1 and result.errors[0][0] == 0 and "name" in result.errors[0][2]

    deep: Any = "bottom"
    for _ in range(5000):  # no recursion anywhere: json.dumps itself could not even write this
        deep = [deep]
    result = store_tariffs([{**tariff(), "extension": deep}], partner=partner)
    assert result.stored == 0 and "nested deeper than 32 levels" in result.errors[0][2]

    with pytest.raises(InvalidObjectError, match="total_energy"):
        store_cdr(partner, {**cdr(), "total_energy": 1e30})
    with pytest.raises(InvalidObjectError, match="extension"):
        store_cdr(partner, {**cdr(), "extension": float("nan")})
    with pytest.raises(InvalidObjectError, match=r"cdr_token\.uid"):
        session_with_nul = session()
        session_with_nul["cdr_token"]["uid"] = "12\u00003"
        store_session(partner, session_with_nul)
    assert db.session.scalars(select(Cdr)).all() == [] and db.session.scalars(select(ChargingSession)).all() == []


def test_check_tree_walks_without_recursion_and_names_the_first_field():
    deep: Any = {}
    for _ in range(100_000):
        deep = {"x": deep}
    with pytest.raises(InvalidObjectError, match="nested deeper than 32"):
        check_tree(deep)
    with pytest.raises(InvalidObjectError) as error:
        check_tree({"a": "fine", "b": [{"c": 1}, {"d": "bad\u0000"}], "e": "bad\u0001"})
    assert error.value.path == "b[1].d"


def test_the_dimension_types_are_pricings():
    from app.pricing.model import CDR_DIMENSIONS as PRICING_DIMENSIONS

    assert set(CDR_DIMENSIONS) == set(SESSION_DIMENSIONS) == set(PRICING_DIMENSIONS)


@pytest.mark.parametrize("path", ["/ocpi/2.2.1/locations/NL/TCP//LOC1", "/ocpi/2.2.1/sessions/NL//TCP/1"])
def test_an_empty_url_segment_gets_an_ocpi_answer_not_an_html_redirect(ocpi: OcpiTestClient, path: str) -> None:
    """Found by fuzzing: the router merged "a//b" into "a/b" with an HTML 308 to another route."""
    response = ocpi.get(path)
    assert response.status_code == 404
    assert response.get_json()["status_code"] == 2000
