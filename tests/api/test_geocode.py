"""``GET /api/v1/geocode``: a typed place, found in any of its languages by the offline gazetteer, labelled in the
caller's language and cached; an unknown place, bad input and a geocoder that is down each get a clear problem."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.extensions import db
from app.finder.models import GeocodeAnswer
from tests.api.helpers import SignedIn, call, problem
from tests.finder.geocoder_recordings.server import start_recorded_geocoder

GHENT = (51.05, 3.71667)  # where the offline gazetteer puts Ghent


@pytest.fixture
def config(app: Flask) -> Iterator[dict[str, Any]]:
    saved = dict(app.config)
    yield app.config
    app.config.clear()
    app.config.update(saved)


@pytest.mark.parametrize("typed", ["Gent", "Ghent", "Gand", "  gAND "])
def test_ghent_is_found_by_its_dutch_english_and_french_names(client, db_session, typed):
    response = client.get("/api/v1/geocode", query_string={"q": typed})
    assert response.status_code == 200, response.get_data(as_text=True)
    [place] = response.get_json()["places"]
    assert (place["lat"], place["lon"]) == GHENT
    assert place["kind"] == "city" and place["country"] == "BE"


def test_the_label_is_in_the_callers_language(client, db_session, driver: SignedIn):
    french = client.get("/api/v1/geocode?q=Gand", headers={"Accept-Language": "fr"}).get_json()
    assert french["places"][0]["name"] == "Gand, Belgique"
    # Signed in, the account's language wins over the phone's Accept-Language.
    driver.account.language = "nl"
    db.session.commit()
    dutch = call(client, "GET", "/api/v1/geocode?q=Gent", driver, headers={"Accept-Language": "fr"}).get_json()
    assert dutch["places"][0]["name"] == "Gent, België"


def test_a_postcode_is_a_place_too(client, db_session):
    [place] = client.get("/api/v1/geocode?q=3500").get_json()["places"]
    assert place["kind"] == "postcode" and place["country"] == "BE"


def test_an_unknown_place_is_a_clear_problem_and_remembered(client, db_session):
    body = problem(client.get("/api/v1/geocode?q=Xyzzyville"), 404, "place_not_found")
    assert "Xyzzyville" in body["message"] and list(body["errors"]) == ["q"]
    remembered = db.session.scalar(
        select(func.count()).select_from(GeocodeAnswer).where(GeocodeAnswer.found.is_(False))
    )
    assert remembered == 1


@pytest.mark.parametrize(
    ("query", "parameter"),
    [({}, "q"), ({"q": ""}, "q"), ({"q": "   "}, "q"), ({"q": "x" * 201}, "q"), ({"q": "Gent\x00"}, "q"),
     ({"q": "Gent", "country": "BEL"}, "country")],
)  # fmt: skip
def test_bad_input_answers_400_naming_the_parameter_and_stores_nothing(client, db_session, query, parameter):
    body = problem(client.get("/api/v1/geocode", query_string=query), 400, "invalid_parameter")
    assert list(body["errors"]) == [parameter]
    assert db.session.scalar(select(func.count()).select_from(GeocodeAnswer)) == 0


def test_a_country_hint_is_accepted(client, db_session):
    [place] = client.get("/api/v1/geocode?q=Gent&country=be").get_json()["places"]
    assert (place["lat"], place["lon"]) == GHENT


def test_a_geocoder_that_is_down_says_try_again(client, db_session, config):
    running = start_recorded_geocoder()
    try:
        config.update(
            GEOCODER="nominatim", GEOCODER_DOMAIN=running.geocoder.domain, GEOCODER_SCHEME="http", GEOCODER_TIMEOUT=1.0
        )
        running.geocoder.misbehave["status"] = 503
        body = problem(client.get("/api/v1/geocode?q=Gent"), 503, "geocoder_unavailable")
        assert "try again" in body["message"]
    finally:
        running.stop()
