"""Tokens Sender list over HTTP: which cards are listed, Token objects, pagination edge cases."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from app.cards.models import Card, CardStatus
from app.extensions import db
from app.timestamps import ocpi_timestamp
from tests.roaming.token_fixtures import card_in

BASE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _cards(count: int) -> list[Card]:
    cards = [card_in(CardStatus.ACTIVE) for _ in range(count)]
    for index, card in enumerate(cards):  # distinct, known last_updated values
        card.last_updated = BASE + dt.timedelta(minutes=index)
    db.session.flush()
    return cards


def _next(response) -> str | None:  # type: ignore[no-untyped-def]
    link = response.headers.get("Link")
    if not link:
        return None
    url = link.split(";")[0].strip("<> ")
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_lists_token_objects_with_headers_and_follows_links(ocpi, partner):
    cards = _cards(5)
    shipped = card_in(CardStatus.SHIPPED)
    shipped.last_updated = BASE + dt.timedelta(hours=5)
    response = ocpi.get("/ocpi/2.2.1/tokens?limit=2")
    body = response.get_json()
    assert response.status_code == 200 and body["status_code"] == 1000
    assert response.headers["X-Total-Count"] == "6" and response.headers["X-Limit"] == "2"
    first = body["data"][0]
    assert set(first) >= {
        "country_code",
        "party_id",
        "uid",
        "type",
        "contract_id",
        "issuer",
        "valid",
        "whitelist",
        "last_updated",
    }
    assert first["uid"] == cards[0].uid and first["valid"] is True
    assert first["last_updated"] == ocpi_timestamp(BASE)
    seen = [token["uid"] for token in body["data"]]
    url = _next(response)
    while url:
        response = ocpi.get(url)
        seen += [token["uid"] for token in response.get_json()["data"]]
        url = _next(response)
    assert seen == [card.uid for card in cards] + [shipped.uid]
    # The last page has no Link.
    assert "Link" not in response.headers


def test_offset_paging_without_our_cursor_still_works(ocpi, partner):
    cards = _cards(4)
    response = ocpi.get("/ocpi/2.2.1/tokens?offset=2&limit=2")
    assert [t["uid"] for t in response.get_json()["data"]] == [cards[2].uid, cards[3].uid]
    assert "Link" not in response.headers


def test_date_filters_are_inclusive_from_and_exclusive_to(ocpi, partner):
    cards = _cards(4)
    date_from = ocpi_timestamp(BASE + dt.timedelta(minutes=1))
    date_to = ocpi_timestamp(BASE + dt.timedelta(minutes=3))
    response = ocpi.get(f"/ocpi/2.2.1/tokens?date_from={date_from}&date_to={date_to}")
    assert [t["uid"] for t in response.get_json()["data"]] == [cards[1].uid, cards[2].uid]
    assert response.headers["X-Total-Count"] == "2"


def test_empty_page(ocpi, partner):
    _cards(1)
    response = ocpi.get("/ocpi/2.2.1/tokens?date_from=2030-01-01T00:00:00Z")
    assert response.status_code == 200
    assert response.get_json()["data"] == []
    assert response.headers["X-Total-Count"] == "0" and "Link" not in response.headers
    beyond = ocpi.get("/ocpi/2.2.1/tokens?offset=50")
    assert beyond.get_json()["data"] == [] and "Link" not in beyond.headers


def test_invalid_parameters_and_unregistered_callers(ocpi, partner, client):
    assert ocpi.get("/ocpi/2.2.1/tokens?limit=abc").get_json()["status_code"] == 2001
    assert ocpi.get("/ocpi/2.2.1/tokens?date_from=yesterday").get_json()["status_code"] == 2001
    assert ocpi.get("/ocpi/2.2.1/tokens?after=garbage").get_json()["status_code"] == 2001
    assert client.get("/ocpi/2.2.1/tokens").status_code == 401


def test_invalid_cards_are_listed_as_not_valid(ocpi, partner):
    blocked = card_in(CardStatus.BLOCKED)
    response = ocpi.get("/ocpi/2.2.1/tokens")
    [token] = [t for t in response.get_json()["data"] if t["uid"] == blocked.uid]
    assert token["valid"] is False


def test_our_token_objects_have_the_shape_of_the_official_rfid_example(ocpi, partner):
    """Every field we send is one the spec's full RFID example has, with the same JSON type; the fields we leave
    out are the optional ones we have no data for (default_profile_type, energy_contract)."""
    import json

    from tests.shared_data import EXAMPLES

    example = json.loads((EXAMPLES / "token_example_2_full_rfid.json").read_text())
    card_in(CardStatus.ACTIVE)
    [ours] = ocpi.get("/ocpi/2.2.1/tokens?limit=1").get_json()["data"]
    assert set(ours) <= set(example)
    assert {name: type(value) for name, value in ours.items()} == {name: type(example[name]) for name in ours}
    assert set(example) - set(ours) <= {"language", "default_profile_type", "energy_contract"}
    assert ours["type"] == "RFID" and ours["last_updated"].endswith("Z")
