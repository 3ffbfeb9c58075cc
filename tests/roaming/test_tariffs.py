"""Tariffs Receiver (mod_tariffs) with the official examples, versions, DELETE and tariff_in_force."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from app.extensions import db
from app.roaming.models import PartnerParty, TariffVersion
from app.roaming.ocpi.reader import InvalidObjectError
from app.roaming.receive.locations import upsert_location
from app.roaming.receive.tariffs import (
    current_tariff,
    store_tariff,
    tariff_in_force,
    tariff_versions,
    tariffs_for_connector,
)
from tests.shared_data import EXAMPLES as SHARED_EXAMPLES

EXAMPLES = SHARED_EXAMPLES
TARIFF_EXAMPLES = sorted(p.name for p in EXAMPLES.glob("tariff*.json") if p.name != "tariff_put_example.json")
UTC = dt.UTC


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def url(obj: dict) -> str:
    return f"/ocpi/2.2.1/tariffs/{obj['country_code']}/{obj['party_id']}/{obj['id']}"


@pytest.fixture
def parties(partner):  # type: ignore[no-untyped-def]
    for cc, pid in {("DE", "ALL"), ("NL", "TNM"), ("BE", "BEC")}:
        partner.parties.append(PartnerParty(country_code=cc, party_id=pid, role="CPO"))
    db.session.flush()
    return partner


def test_every_tariff_example_is_accepted_and_read_back(ocpi, parties):
    assert len(TARIFF_EXAMPLES) == 19  # 17 tariff_N examples + 2 tariffrestriction examples
    newest: dict[str, dict] = {}
    for name in TARIFF_EXAMPLES:
        obj = example(name)
        response = ocpi.put(url(obj), obj)
        # Created for a new tariff, 200 for a new version of one we hold (status_codes).
        assert response.status_code == (200 if obj["id"] in newest else 201), (name, response.json)
        assert response.json["status_code"] == 1000
        if obj["id"] not in newest or obj["last_updated"] >= newest[obj["id"]]["last_updated"]:
            newest[obj["id"]] = obj  # (examples 6 and 8 share id 16; 8 is the older version)
        assert ocpi.get(url(obj)).json["data"] == newest[obj["id"]], name
    assert len(tariff_versions("DE", "ALL", "16")) == 2


def test_tariff_put_example_without_last_updated_is_2001(ocpi, parties):
    obj = example("tariff_put_example.json")
    response = ocpi.put(url(obj), obj)
    assert response.status_code == 400
    assert response.json["status_code"] == 2001
    assert response.json["status_message"] == "last_updated is required"
    assert db.session.query(TariffVersion).count() == 0


def test_unpriceable_tariff_is_refused_with_the_field_path(ocpi, parties):
    obj = example("tariff_1_simple_2hour.json")
    obj["elements"][0]["price_components"][0]["type"] = "BANANAS"
    response = ocpi.put(url(obj), obj)
    assert response.status_code == 400
    assert response.json["status_code"] == 2001
    assert "elements[0].price_components[0].type" in response.json["status_message"]


def test_versions_are_kept_and_repeat_is_idempotent(ocpi, parties):
    v1 = example("tariff_1_simple_2hour.json")
    v2 = {
        **v1,
        "currency": "EUR",
        "last_updated": "2016-01-01T00:00:00Z",
        "elements": [{"price_components": [{"type": "TIME", "price": 3.00, "vat": 10.0, "step_size": 60}]}],
    }
    for body in (v1, v1, v2, v2):
        assert ocpi.put(url(v1), body).json["status_code"] == 1000
    versions = tariff_versions("DE", "ALL", "12")
    assert [v.data["elements"][0]["price_components"][0]["price"] for v in versions] == [2.0, 3.0]
    assert ocpi.get(url(v1)).json["data"] == v2
    # an older version arriving late is kept as history but does not become current
    v0 = {**v1, "last_updated": "2014-01-01T00:00:00Z"}
    assert ocpi.put(url(v1), v0).json["status_code"] == 1000
    assert len(tariff_versions("DE", "ALL", "12")) == 3
    assert current_tariff("DE", "ALL", "12").data == v2


def test_delete_keeps_versions(ocpi, parties):
    obj = example("tariff_4_complex.json")
    ocpi.put(url(obj), obj)
    response = ocpi.delete(url(obj))
    assert response.status_code == 200 and response.json["status_code"] == 1000
    versions = tariff_versions(obj["country_code"], obj["party_id"], obj["id"])
    assert len(versions) == 1 and versions[0].deleted_at is not None
    gone = ocpi.get(url(obj))
    assert gone.status_code == 404 and gone.json["status_code"] == 2000
    assert "Unknown Tariff" in gone.json["status_message"]
    unknown = ocpi.delete(url({**obj, "id": "never"}))
    assert unknown.status_code == 404 and unknown.json["status_code"] == 2000


def test_another_partys_tariff_is_refused(ocpi, partner):
    obj = example("tariff_1_simple_2hour.json")  # DE/ALL
    response = ocpi.put(url(obj), obj)
    assert response.status_code == 403
    assert db.session.query(TariffVersion).count() == 0


def _tariff(price: float, last_updated: str, **extra) -> dict:
    return {
        "country_code": "NL",
        "party_id": "TCP",
        "id": "T1",
        "currency": "EUR",
        "last_updated": last_updated,
        "elements": [{"price_components": [{"type": "ENERGY", "price": price, "step_size": 1}]}],
        **extra,
    }


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_tariff_in_force_across_versions(db_session, partner):
    keys = {"partner": partner, "country_code": "NL", "party_id": "TCP"}
    store_tariff(_tariff(0.30, "2026-01-01T00:00:00Z"), received_at=_at("2026-01-01T00:05:00"), **keys)
    store_tariff(_tariff(0.40, "2026-02-01T00:00:00Z"), received_at=_at("2026-02-01T00:05:00"), **keys)
    # an old version delivered late by a pull: known from March on, but published before v2
    store_tariff(_tariff(0.35, "2026-01-15T00:00:00Z"), received_at=_at("2026-03-01T00:00:00"), **keys)

    def price(at: str) -> float | None:
        version = tariff_in_force("NL", "TCP", "T1", _at(at))
        return None if version is None else version.data["elements"][0]["price_components"][0]["price"]

    assert price("2025-12-01T00:00:00") == 0.30  # before anything reached us: the oldest version
    assert price("2026-01-10T00:00:00") == 0.30
    assert price("2026-02-01T00:04:00") == 0.30  # published but not yet received: we promised 0.30
    assert price("2026-02-01T00:05:00") == 0.40  # received at that instant (inclusive)
    assert price("2026-03-02T00:00:00") == 0.40  # the late old version never overrides a newer one

    from app.roaming.receive.tariffs import delete_tariff

    delete_tariff("NL", "TCP", "T1", at=_at("2026-04-01T00:00:00"))
    assert price("2026-03-15T00:00:00") == 0.40  # still in force before the deletion
    assert price("2026-04-02T00:00:00") is None


def test_tariff_in_force_respects_validity_window(db_session, partner):
    keys = {"partner": partner, "country_code": "NL", "party_id": "TCP"}
    store_tariff(_tariff(0.30, "2026-01-01T00:00:00Z"), received_at=_at("2026-01-01T00:00:00"), **keys)
    store_tariff(
        _tariff(0.50, "2026-01-02T00:00:00Z", start_date_time="2026-06-01T00:00:00Z"),
        received_at=_at("2026-01-02T00:00:00"),
        **keys,
    )
    assert (
        tariff_in_force("NL", "TCP", "T1", _at("2026-03-01T00:00:00")).data["elements"][0]["price_components"][0][
            "price"
        ]
        == 0.30
    )  # the newer version is not valid yet
    assert (
        tariff_in_force("NL", "TCP", "T1", _at("2026-07-01T00:00:00")).data["elements"][0]["price_components"][0][
            "price"
        ]
        == 0.50
    )


def test_tariffs_for_connector(db_session, partner):
    location = json.loads((EXAMPLES / "location_example.json").read_text())
    location.update(country_code="NL", party_id="TCP")
    stored = upsert_location(location, partner=partner, country_code="NL", party_id="TCP")
    tariff = {**_tariff(0.25, "2026-01-01T00:00:00Z"), "id": "11"}
    store_tariff(tariff, partner=partner, country_code="NL", party_id="TCP", received_at=_at("2026-01-01T00:00:00"))
    found = tariffs_for_connector(stored, "3256", "1", _at("2026-05-01T00:00:00"))
    assert [v.ocpi_id for v in found] == ["11"]
    assert tariffs_for_connector(stored, "3256", "2", _at("2026-05-01T00:00:00")) == []  # tariff 13 unknown
    with pytest.raises(LookupError):
        tariffs_for_connector(stored, "3256", "9", _at("2026-05-01T00:00:00"))


def test_store_tariff_rejects_url_mismatch(db_session, partner):
    with pytest.raises(InvalidObjectError) as error:
        store_tariff(_tariff(0.3, "2026-01-01T00:00:00Z"), partner=partner, country_code="NL", party_id="XXX")
    assert error.value.path == "party_id"
