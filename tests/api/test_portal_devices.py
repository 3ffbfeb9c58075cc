"""The portal's profile lists the app's signed-in devices: sign one out, or everything everywhere; a new password
ends them all too."""

from __future__ import annotations

from flask.testing import FlaskClient

from app.accounts.api_tokens import RevokedReason
from app.extensions import db
from tests.api.helpers import SignedIn, call, problem, sign_in
from tests.factories import PASSWORD, login, make_user
from tests.helpers import submit_form


def test_the_profile_lists_the_devices_and_signs_one_out(client: FlaskClient, driver: SignedIn) -> None:
    tablet = sign_in(driver.user, "Kitchen tablet")
    login(client, driver.user)
    page = client.get("/profile").get_data(as_text=True)
    assert "Test phone" in page and "Kitchen tablet" in page
    response = submit_form(client, f"/profile/devices/{tablet.device.id}/sign-out", {}, form_url="/profile")
    assert response.status_code == 302
    problem(call(client, "GET", "/api/v1/me", tablet), 401, "invalid_token")
    assert call(client, "GET", "/api/v1/me", driver).status_code == 200
    page = client.get("/profile").get_data(as_text=True)
    assert "Kitchen tablet is signed out of the app." in page
    table = page[page.index('id="app-devices"') :]
    assert "Test phone" in table and "Kitchen tablet" not in table


def test_another_drivers_device_cannot_be_signed_out_from_the_portal(
    client: FlaskClient, driver: SignedIn, other_driver: SignedIn
) -> None:
    login(client, driver.user)
    response = submit_form(client, f"/profile/devices/{other_driver.device.id}/sign-out", {}, form_url="/profile")
    assert response.status_code == 404
    assert call(client, "GET", "/api/v1/me", other_driver).status_code == 200


def test_sign_out_everywhere_ends_the_app_devices_too(client: FlaskClient, driver: SignedIn) -> None:
    tablet = sign_in(driver.user, "Tablet")
    login(client, driver.user)
    assert submit_form(client, "/profile/sign-out-everywhere", {}, form_url="/profile").status_code == 302
    for who in (driver, tablet):
        problem(call(client, "GET", "/api/v1/me", who), 401, "invalid_token")
        problem(client.post("/api/v1/auth/refresh", json={"refresh_token": who.refresh_token}), 401, "invalid_token")
    db.session.refresh(driver.device)
    assert driver.device.revoked_reason == RevokedReason.EVERYWHERE


def test_a_new_password_signs_the_app_out(client: FlaskClient, driver: SignedIn) -> None:
    login(client, driver.user)
    response = submit_form(
        client,
        "/profile/password",
        {
            "pw-current_password": PASSWORD,
            "pw-password": "a-new-long-password",
            "pw-password_repeat": "a-new-long-password",
        },
        form_url="/profile",
    )
    assert response.status_code == 302
    problem(call(client, "GET", "/api/v1/me", driver), 401, "invalid_token")


def test_the_portal_logout_leaves_the_app_signed_in(client: FlaskClient, driver: SignedIn) -> None:
    login(client, driver.user)
    assert submit_form(client, "/logout", {}, form_url="/profile").status_code == 302
    assert call(client, "GET", "/api/v1/me", driver).status_code == 200


def test_staff_have_no_devices_to_list(client: FlaskClient, db_session: object) -> None:
    from app.accounts.models import Role

    login(client, make_user(Role.SUPPORT))
    assert submit_form(client, "/profile/sign-out-everywhere", {}, form_url="/backoffice/").status_code == 302
