"""The API refuses a wrong Belgian or Dutch postal code with a problem naming the field (the accounts service's
check, shared with sign-up and the profile page)."""

from __future__ import annotations

from app.extensions import db
from tests.api.helpers import call


def test_profile_api_refuses_a_wrong_postcode_naming_the_field(client, driver):
    response = call(client, "PATCH", "/api/v1/me", driver, json={"country": "NL", "postal_code": "0123 AB"})
    assert response.status_code == 422
    problem = response.get_json()
    assert "postal_code" in problem["errors"], problem
    db.session.refresh(driver.account)
    assert (driver.account.country, driver.account.postal_code) == ("BE", "2000")
    changed = call(client, "PATCH", "/api/v1/me", driver, json={"country": "NL", "postal_code": "3511lx"})
    assert changed.status_code == 200 and changed.get_json()["postal_code"] == "3511 LX"
