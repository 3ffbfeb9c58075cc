"""CDRs Receiver over HTTP: the official example, Location header, idempotency, credit CDRs, exact money,
bad input named with nothing stored, fields real CPOs omit derived from what we hold."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal

from app.audit.services import Actor
from app.cards import services as card_services
from app.cards.models import CardStatus
from app.charging.models import Cdr
from app.extensions import db
from app.plans import services as plan_services
from app.rating.models import SessionCharge
from app.roaming import cdr_listeners
from app.roaming.receive.cdrs import store_cdr
from app.roaming.receive.locations import upsert_locations
from app.roaming.receive.tariffs import store_tariffs
from tests.factories import make_user, one_connector_location
from tests.roaming.token_fixtures import allow_parties, card_in, example, example_text, our_cdr_token


def _cdrs() -> list[Cdr]:
    db.session.expire_all()
    return db.session.query(Cdr).order_by(Cdr.id).all()


def _post_raw(ocpi, text: str):  # type: ignore[no-untyped-def]
    return ocpi.call("POST", "/ocpi/2.2.1/cdrs", data=text, content_type="application/json")


def test_official_example_is_stored_with_exact_amounts_and_a_location(ocpi, partner):
    allow_parties(partner, ("BE", "BEC"))
    response = _post_raw(ocpi, example_text("cdr_example.json"))  # latitude/longitude swapped: still valid
    assert response.status_code == 201, response.get_json()  # Created (status_codes); a repeat is 200
    assert response.get_json()["status_code"] == 1000
    location = response.headers["Location"]
    [cdr] = _cdrs()
    assert location.endswith(f"/ocpi/2.2.1/cdrs/{cdr.id}")
    assert cdr.total_cost_excl_vat == Decimal("4.00") and cdr.total_cost_incl_vat == Decimal("4.40")
    assert cdr.total_energy == Decimal("15.342") and cdr.total_time == Decimal("1.973")
    assert cdr.country == "BEL" and cdr.currency == "EUR" and cdr.token_uid == "012345678"
    assert cdr.card_id is None  # the example's token is another e-MSP's
    fetched = ocpi.get(location.split("localhost", 1)[-1])
    assert fetched.status_code == 200
    assert fetched.get_json()["data"]["id"] == "12345"
    assert fetched.get_json()["data"]["cdr_location"]["coordinates"]["latitude"] == "3.729944"


def test_the_same_cdr_twice_is_stored_once_with_the_same_location(ocpi, partner):
    allow_parties(partner, ("BE", "BEC"))
    first = _post_raw(ocpi, example_text("cdr_example.json"))
    second = _post_raw(ocpi, example_text("cdr_example.json"))
    assert second.status_code == 200 and second.get_json()["status_code"] == 1000
    assert first.headers["Location"] == second.headers["Location"]
    assert len(_cdrs()) == 1


def test_store_cdr_reports_repeats(app, db_session, partner):
    data = example("cdr_example.json")  # floats, as the pull client parses them
    cdr, created = store_cdr(partner, data)
    again, created_again = store_cdr(partner, copy.deepcopy(data))
    assert created and not created_again and again.id == cdr.id
    assert cdr.total_cost_incl_vat == Decimal("4.4")


def test_credit_cdr_is_linked_to_its_original(ocpi, partner):
    allow_parties(partner, ("BE", "BEC"))
    card = card_in(CardStatus.ACTIVE)
    original = {**example("cdr_example.json"), "cdr_token": our_cdr_token(card)}
    _post_raw(ocpi, json.dumps(original))
    credit = {
        **original,
        "id": "12345-C",
        "credit": True,
        "credit_reference_id": "12345",
        "total_cost": {"excl_vat": -4.00, "incl_vat": -4.40},
        "last_updated": "2015-07-01T10:00:00Z",
    }
    response = _post_raw(ocpi, json.dumps(credit))
    assert response.status_code == 201
    first, second = _cdrs()
    assert second.credit and second.credit_reference_id == "12345" and second.original_cdr_id == first.id
    assert second.total_cost_incl_vat == Decimal("-4.40")
    assert first.account_id == card.account_id == second.account_id


def test_credit_cdr_arriving_first_is_linked_when_the_original_comes(ocpi, partner):
    allow_parties(partner, ("BE", "BEC"))
    original = example("cdr_example.json")
    credit = {**original, "id": "12345-C", "credit": True, "credit_reference_id": "12345"}
    _post_raw(ocpi, json.dumps(credit))
    _post_raw(ocpi, json.dumps(original))
    credit_row, original_row = _cdrs()
    assert credit_row.original_cdr_id == original_row.id


def test_missing_fields_are_named_and_nothing_is_stored(ocpi, partner):
    allow_parties(partner, ("BE", "BEC"))
    cases = {
        "cdr_location.coordinates.latitude": lambda d: d["cdr_location"]["coordinates"].pop("latitude"),
        "cdr_token.contract_id": lambda d: d["cdr_token"].pop("contract_id"),
        "total_cost.excl_vat": lambda d: d["total_cost"].pop("excl_vat"),
        "total_energy": lambda d: d.pop("total_energy"),
        "charging_periods": lambda d: d.update(charging_periods=[]),
        "credit_reference_id": lambda d: d.update(credit=True),
    }
    for field, damage in cases.items():
        data = example("cdr_example.json")
        damage(data)
        response = _post_raw(ocpi, json.dumps(data))
        assert response.status_code == 400, field
        assert response.get_json()["status_code"] == 2001
        assert field in response.get_json()["status_message"], (field, response.get_json())
    assert _post_raw(ocpi, "[1, 2").get_json()["status_code"] == 2001
    assert _cdrs() == []


def test_cdrs_of_other_parties_and_other_partners_are_refused(ocpi, partner):
    response = _post_raw(ocpi, example_text("cdr_example.json"))  # BE/BEC is not this partner's party
    assert response.status_code == 403
    assert ocpi.get("/ocpi/2.2.1/cdrs/999999").status_code == 404


def test_only_our_own_tokens_link_a_cdr_to_a_card(ocpi, partner):
    allow_parties(partner, ("BE", "BEC"))
    card = card_in(CardStatus.ACTIVE)
    ours = {**example("cdr_example.json"), "id": "OURS-1", "cdr_token": our_cdr_token(card)}
    # Another e-MSP's token that happens to carry the same uid as one of our cards.
    theirs = {**ours, "id": "THEIRS-1", "cdr_token": {**our_cdr_token(card), "party_id": "XYZ"}}
    for body in (ours, theirs):
        assert _post_raw(ocpi, json.dumps(body)).status_code == 201
    stored = {cdr.ocpi_id: cdr for cdr in _cdrs()}
    assert (stored["OURS-1"].card_id, stored["OURS-1"].account_id) == (card.id, card.account_id)
    assert (stored["THEIRS-1"].card_id, stored["THEIRS-1"].account_id) == (None, None)


def test_a_new_cdr_of_ours_is_announced_once_to_the_listeners(ocpi, partner, monkeypatch):
    """Rating listens here (``app.rating.init_app``); a repeat or another e-MSP's CDR announces nothing."""
    allow_parties(partner, ("BE", "BEC"))
    card = card_in(CardStatus.ACTIVE)
    announced: list[int] = []
    monkeypatch.setattr(cdr_listeners, "AFTER_CDR_STORED", [announced.append])
    ours = {**example("cdr_example.json"), "id": "OURS-1", "cdr_token": our_cdr_token(card)}
    theirs = {**example("cdr_example.json"), "id": "THEIRS-1"}
    for body, created in ((ours, True), (ours, False), (theirs, True)):
        assert _post_raw(ocpi, json.dumps(body)).status_code == (201 if created else 200)
    stored = {cdr.ocpi_id: cdr.id for cdr in _cdrs()}
    assert announced == [stored["OURS-1"]]


# --- fields OCPI requires that real CPOs omit, derived from what we hold (never money or energy) -----------------


_TARIFF = {**example("cdr_example.json")["tariffs"][0], "country_code": "NL", "party_id": "TCP", "id": "T1"}


def _driver_card():  # type: ignore[no-untyped-def]
    """A card of a driver whose plan started before the CDRs below: they can be rated."""
    user = make_user()
    for stretch in plan_services.history(user.account.id):
        stretch.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return card_services.issue_app_token(user.account, Actor.of(user))


def _cdr_at_our_location(card, **place: object) -> dict:  # type: ignore[no-untyped-def]
    """A CDR of NL/TCP at the Location LOC-EST (EVSE uid ``E1``, evse_id ``NL*TCP*E1``, connector ``1``)."""
    data = {
        **example("cdr_example.json"),
        "country_code": "NL",
        "party_id": "TCP",
        "id": "CDR-DERIVED",
        "cdr_token": our_cdr_token(card),
        "start_date_time": "2026-10-01T10:00:00Z",
        "end_date_time": "2026-10-01T11:30:00Z",
        "last_updated": "2026-10-01T11:31:00Z",
    }
    data["charging_periods"] = [
        {**data["charging_periods"][0], "start_date_time": "2026-10-01T10:00:00Z", "tariff_id": "T1"}
    ]
    data["tariffs"] = [_TARIFF]
    data["cdr_location"] = {**data["cdr_location"], "id": "LOC-EST", "evse_id": "NL*TCP*E1", **place}
    return data


def _hold_location_and_tariff() -> None:
    upsert_locations([one_connector_location("T1")], partner=None)
    store_tariffs([_TARIFF], partner=None)
    db.session.commit()


def test_a_cdr_without_evse_uid_is_stored_with_the_uid_of_our_evse_and_rated(ocpi, partner):
    _hold_location_and_tariff()
    card = _driver_card()
    body = _cdr_at_our_location(card)
    del body["cdr_location"]["evse_uid"]  # real CPOs omit it; OCPI requires it
    response = _post_raw(ocpi, json.dumps(body))
    assert response.status_code == 201, response.get_json()
    [cdr] = _cdrs()
    assert cdr.evse_uid == "E1" and cdr.data["cdr_location"]["evse_uid"] == "E1"
    charge = db.session.query(SessionCharge).filter_by(cdr_id=cdr.id).one()  # billed
    # The price promise found the connector's tariff through the EVSE's real uid (the evse_id would not).
    assert charge.account_id == card.account_id and charge.estimate_incl_vat is not None


def test_an_evse_uid_we_cannot_look_up_is_the_evse_id_itself(ocpi, partner):
    body = {**example("cdr_example.json"), "country_code": "NL", "party_id": "TCP"}
    del body["cdr_location"]["evse_uid"]
    assert _post_raw(ocpi, json.dumps(body)).status_code == 201  # we hold no Location LOC1
    assert _cdrs()[0].evse_uid == "BE*BEC*E041503003"


def test_the_place_and_duration_come_from_what_we_hold(ocpi, partner):
    _hold_location_and_tariff()
    card = _driver_card()
    body = _cdr_at_our_location(card)
    for name in (
        "evse_uid",
        "connector_id",
        "connector_standard",
        "connector_format",
        "connector_power_type",
        "address",
        "city",
        "country",
        "coordinates",
    ):
        del body["cdr_location"][name]
    del body["total_time"]
    del body["cdr_token"]["contract_id"]
    assert _post_raw(ocpi, json.dumps(body)).status_code == 201
    [cdr] = _cdrs()
    place = cdr.data["cdr_location"]
    assert (place["evse_uid"], place["connector_id"], place["connector_standard"]) == ("E1", "1", "IEC_62196_T2")
    assert (place["connector_format"], place["connector_power_type"]) == ("SOCKET", "AC_3_PHASE")
    assert (place["address"], place["city"], place["country"]) == ("Stationsplein 1", "Utrecht", "NLD")
    assert place["coordinates"] == {"latitude": "52.0894440", "longitude": "5.1102780"}
    assert cdr.total_time == Decimal("1.5") and cdr.country == "NLD"  # end minus start: 1 h 30 min
    assert cdr.data["cdr_token"]["contract_id"] == card.contract_id and cdr.account_id == card.account_id


def test_what_cannot_be_derived_is_still_refused_naming_it(ocpi, partner):
    cases = {
        "cdr_location.evse_uid": lambda d: [d["cdr_location"].pop(k) for k in ("evse_uid", "evse_id")],
        "cdr_location.connector_standard": lambda d: d["cdr_location"].pop("connector_standard"),  # no Location
        "cdr_token.contract_id": lambda d: d["cdr_token"].pop("contract_id"),  # another e-MSP's token
    }
    for field, damage in cases.items():
        data = {**copy.deepcopy(example("cdr_example.json")), "country_code": "NL", "party_id": "TCP"}
        damage(data)
        response = _post_raw(ocpi, json.dumps(data))
        assert response.get_json()["status_code"] == 2001 and field in response.get_json()["status_message"], field
    assert _cdrs() == []
