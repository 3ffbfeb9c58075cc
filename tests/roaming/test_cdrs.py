"""CDRs Receiver over HTTP: the official example, Location header, idempotency, credit CDRs, exact money,
bad input named with nothing stored."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

from app.cards.models import CardStatus
from app.charging.models import Cdr
from app.extensions import db
from app.roaming import cdr_listeners
from app.roaming.receive.cdrs import store_cdr
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
