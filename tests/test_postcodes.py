"""Belgian and Dutch postal codes are checked in the accounts service: sign-up and the profile page refuse a wrong
one on the postal code field and change nothing; a right one is stored in the post's own form."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.accounts import services
from app.accounts.models import User
from app.accounts.postcodes import InvalidPostcodeError, normalise_postcode
from app.extensions import db
from tests.factories import driver_profile, login, make_user
from tests.helpers import submit_form


@pytest.mark.parametrize(
    ("country", "typed", "stored"),
    [
        ("BE", "1000", "1000"),
        ("BE", " 9999 ", "9999"),
        ("NL", "1234ab", "1234 AB"),
        ("NL", "1234 AB", "1234 AB"),
        ("NL", "3511\u00a0lx", "3511 LX"),
        ("NL", "9999ZZ", "9999 ZZ"),
        ("LU", "l-1511", "L-1511"),  # other countries: trimmed, as typed
    ],
)
def test_valid_postcodes_are_normalised(app, country, typed, stored):
    with app.test_request_context():
        assert normalise_postcode(country, typed) == stored


@pytest.mark.parametrize(
    ("country", "typed"),
    [
        ("BE", "0999"),
        ("BE", "999"),
        ("BE", "10000"),
        ("BE", "1000 AB"),
        ("BE", "B-1000"),
        ("NL", "0123 AB"),
        ("NL", "1234"),
        ("NL", "1234 A"),
        ("NL", "1234 SA"),
        ("NL", "1234sd"),
        ("NL", "1234 SS"),
        ("NL", "12345 AB"),
        ("NL", "1234-AB"),
    ],
)
def test_invalid_postcodes_are_refused(app, country, typed):
    with app.test_request_context(), pytest.raises(InvalidPostcodeError):
        normalise_postcode(country, typed)


def test_the_service_names_the_field_and_stores_the_standard_form(db_session):
    with pytest.raises(services.AccountError) as refused:
        services.create_user(
            "wrong@example.com", "a-long-password", services.Role.DRIVER, profile=driver_profile(postal_code="0500")
        )
    assert refused.value.field == "postal_code"
    assert "Belgian postal code" in str(refused.value)
    user = services.create_user(
        "right@example.com",
        "a-long-password",
        services.Role.DRIVER,
        profile=driver_profile(country="NL", postal_code="1011ab", city="Amsterdam"),
    )
    assert user.account is not None and user.account.postal_code == "1011 AB"


SIGNUP = {
    "email": "postcode@example.com",
    "password": "a-long-password",
    "password_repeat": "a-long-password",
    "full_name": "Piet Post",
    "street": "Kerkstraat 5",
    "postal_code": "1011 SS",
    "city": "Amsterdam",
    "country": "NL",
    "language": "en",
    "plan": "payg",
    "accept_terms": "y",
}


def test_signup_refuses_a_wrong_dutch_postcode_on_its_field(client, mailbox):
    response = submit_form(client, "/signup?lang=en", SIGNUP)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="postal_code-error"' in html and "never end in SS" in html
    assert db.session.scalar(select(func.count()).select_from(User).where(User.email == SIGNUP["email"])) == 0
    assert mailbox.messages() == []
    submit_form(client, "/signup?lang=en", {**SIGNUP, "postal_code": "1011ab"})
    user = db.session.scalar(select(User).where(User.email == SIGNUP["email"]))
    assert user is not None and user.account.postal_code == "1011 AB"


def test_profile_refuses_a_wrong_belgian_postcode_and_keeps_the_old_one(client):
    user = make_user()
    login(client, user)
    data = {
        "full_name": "Jan Janssens",
        "street": "Meir 10",
        "postal_code": "0900",
        "city": "Antwerpen",
        "country": "BE",
        "language": "en",
        "submit": "Save",
    }
    response = submit_form(client, "/profile", data)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="postal_code-error"' in html and "from 1000 to 9999" in html
    db.session.refresh(user.account)
    assert user.account.postal_code == "2000"
