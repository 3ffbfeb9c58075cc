"""Sessions Receiver over HTTP with the official examples: PUT/GET/PATCH, ordering by last_updated, bad input,
the token's account, and the price promise (tariff version frozen at the start)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from app.cards.models import CardStatus
from app.charging.models import ChargingSession
from app.extensions import db
from app.roaming.models import TariffVersion
from tests.roaming.token_fixtures import allow_parties, card_in, example, our_cdr_token

URL_1 = "/ocpi/2.2.1/sessions/NL/STK/101"
URL_2 = "/ocpi/2.2.1/sessions/BE/BEC/101"


def _stored(country_code: str, party_id: str, session_id: str) -> ChargingSession | None:
    db.session.expire_all()
    return (
        db.session.query(ChargingSession)
        .filter_by(country_code=country_code, party_id=party_id, ocpi_id=session_id)
        .one_or_none()
    )


def test_put_and_get_the_official_examples(ocpi, partner):
    allow_parties(partner, ("NL", "STK"), ("BE", "BEC"))
    for url, name in ((URL_1, "session_example_1_simple_start.json"), (URL_2, "session_example_2_short_finished.json")):
        response = ocpi.put(url, json=example(name))
        assert response.status_code == 201, response.get_json()  # Created (status_codes)
        assert response.get_json()["status_code"] == 1000
        assert response.headers["X-Request-ID"] == "req-1"
    fetched = ocpi.get(URL_2).get_json()
    assert fetched["status_code"] == 1000
    assert fetched["data"]["id"] == "101" and fetched["data"]["status"] == "COMPLETED"
    assert len(fetched["data"]["charging_periods"]) == 3
    stored = _stored("BE", "BEC", "101")
    assert stored.kwh == Decimal("41.12")
    assert stored.start_date_time == dt.datetime(2015, 6, 29, 22, 39, 9, tzinfo=dt.UTC)
    # The examples' token belongs to another e-MSP (NL/TST): stored, but nobody's session.
    assert stored.card_id is None and stored.account_id is None
    assert ocpi.get("/ocpi/2.2.1/sessions/BE/BEC/nope").status_code == 404


def test_patch_appends_charging_periods_and_ignores_older_updates(ocpi, partner):
    allow_parties(partner, ("BE", "BEC"))
    ocpi.put(URL_2, json=example("session_example_2_short_finished.json"))
    response = ocpi.patch(URL_2, json=example("session_patch_example_charging_period.json"))
    assert response.status_code == 200 and response.get_json()["status_code"] == 1000
    stored = _stored("BE", "BEC", "101")
    assert len(stored.data["charging_periods"]) == 4
    assert stored.kwh == Decimal("15")
    assert stored.data["total_cost"] == {"excl_vat": 0.8, "incl_vat": 0.88}
    # total_cost patch of 08:11 is older than the 08:16 patch above: acknowledged, not applied.
    response = ocpi.patch(URL_2, json=example("session_patch_example_total_cost.json"))
    assert response.status_code == 200
    assert _stored("BE", "BEC", "101").data["total_cost"] == {"excl_vat": 0.8, "incl_vat": 0.88}
    # A PUT older than what we hold does not overwrite it either.
    stale = {**example("session_example_2_short_finished.json"), "kwh": 1, "last_updated": "2015-01-01T00:00:00Z"}
    ocpi.put(URL_2, json=stale)
    assert _stored("BE", "BEC", "101").kwh == Decimal("15")


def test_patch_needs_last_updated_and_an_existing_session(ocpi, partner):
    allow_parties(partner, ("BE", "BEC"))
    response = ocpi.patch(URL_2, json={"kwh": 3, "last_updated": "2020-01-01T00:00:00Z"})
    assert response.status_code == 404
    ocpi.put(URL_2, json=example("session_example_2_short_finished.json"))
    response = ocpi.patch(URL_2, json={"kwh": 3})
    assert response.status_code == 400
    body = response.get_json()
    assert body["status_code"] == 2001 and "last_updated" in body["status_message"]


def test_missing_required_field_is_named_and_nothing_is_stored(ocpi, partner):
    allow_parties(partner, ("NL", "STK"))
    for field, expected in (("cdr_token.uid", "cdr_token.uid"), ("status", "status"), ("kwh", "kwh")):
        body = example("session_example_1_simple_start.json")
        if "." in field:
            del body["cdr_token"]["uid"]
        else:
            del body[field]
        response = ocpi.put(URL_1, json=body)
        assert response.status_code == 400
        assert response.get_json()["status_code"] == 2001
        assert expected in response.get_json()["status_message"]
    response = ocpi.call("PUT", URL_1, data="{not json", content_type="application/json")
    assert response.status_code == 400 and response.get_json()["status_code"] == 2001
    assert _stored("NL", "STK", "101") is None


def test_other_partys_sessions_are_refused(ocpi, partner):
    response = ocpi.put(URL_1, json=example("session_example_1_simple_start.json"))
    assert response.status_code == 403
    assert _stored("NL", "STK", "101") is None


def test_session_of_our_token_belongs_to_its_account(ocpi, partner):
    allow_parties(partner, ("NL", "STK"))
    card = card_in(CardStatus.ACTIVE)
    body = {**example("session_example_1_simple_start.json"), "cdr_token": our_cdr_token(card)}
    assert ocpi.put(URL_1, json=body).status_code == 201
    stored = _stored("NL", "STK", "101")
    assert stored.card_id == card.id and stored.account_id == card.account_id


def _tariff(tariff_id: str, last_updated: dt.datetime, price: str) -> TariffVersion:
    version = TariffVersion(
        country_code="BE",
        party_id="BEC",
        ocpi_id=tariff_id,
        currency="EUR",
        last_updated=last_updated,
        data={
            "country_code": "BE",
            "party_id": "BEC",
            "id": tariff_id,
            "currency": "EUR",
            "elements": [{"price_components": [{"type": "ENERGY", "price": price, "step_size": 1}]}],
            "last_updated": last_updated.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    db.session.add(version)
    db.session.flush()
    return version


def test_price_promise_freezes_the_tariff_named_by_the_session(ocpi, partner):
    allow_parties(partner, ("BE", "BEC"))
    first = _tariff("12", dt.datetime(2015, 1, 1, tzinfo=dt.UTC), "0.25")
    ocpi.put(URL_2, json=example("session_example_2_short_finished.json"))
    assert _stored("BE", "BEC", "101").frozen_tariff_id == first.id
    # A new version published later does not change the promise.
    _tariff("12", dt.datetime(2019, 6, 23, tzinfo=dt.UTC), "0.99")
    ocpi.patch(URL_2, json=example("session_patch_example_charging_period.json"))
    assert _stored("BE", "BEC", "101").frozen_tariff_id == first.id


def test_price_promise_through_the_connector_of_the_stored_location(ocpi, partner):
    allow_parties(partner, ("BE", "BEC"))
    response = ocpi.put("/ocpi/2.2.1/locations/BE/BEC/LOC1", json=example("location_example.json"))
    assert response.status_code == 201, response.get_json()
    tariff = _tariff("11", dt.datetime(2015, 1, 1, tzinfo=dt.UTC), "0.30")  # connector 3256/1 → tariff 11
    body = example("session_example_2_short_finished.json")
    for period in body["charging_periods"]:
        period.pop("tariff_id", None)
    ocpi.put(URL_2, json=body)
    assert _stored("BE", "BEC", "101").frozen_tariff_id == tariff.id
