"""Every refusal of the API is an RFC 9457 problem document with a stable code and a message in the caller's
language; invalid input names its field; the body is read strictly (size, nesting, NaN)."""

from __future__ import annotations

from flask.testing import FlaskClient

from app.extensions import db
from tests.api.helpers import SignedIn, call, problem
from tests.factories import make_user


def test_unknown_routes_and_methods_are_problems_not_html(client: FlaskClient, driver: SignedIn) -> None:
    problem(call(client, "GET", "/api/v1/nothing-here", driver), 404, "not_found")
    problem(call(client, "GET", "/api/v1/cards/99999999999999999999", driver), 404, "not_found")  # no overflow
    problem(call(client, "GET", "/api/v1/cards/0", driver), 404, "not_found")
    not_allowed = problem(call(client, "PUT", "/api/v1/me", driver), 405, "method_not_allowed")
    assert not_allowed["type"] == "about:blank"
    assert set(call(client, "PUT", "/api/v1/me", driver).headers["Allow"].split(", ")) >= {"GET", "PATCH"}


def test_invalid_input_names_each_field(client: FlaskClient, driver: SignedIn) -> None:
    body = problem(
        call(client, "PATCH", "/api/v1/me", driver, json={"country": "US", "city": "x" * 101, "shoe_size": 44}),
        422,
        "validation_failed",
    )
    assert set(body["errors"]) == {"country", "city", "shoe_size"}
    assert body["errors"]["shoe_size"] == ["Unknown field."]
    query = problem(call(client, "GET", "/api/v1/cards?limit=1000", driver), 422, "validation_failed")
    assert list(query["errors"]) == ["limit"]


def test_a_service_refusal_names_its_field_and_changes_nothing(client: FlaskClient, driver: SignedIn) -> None:
    body = problem(
        call(client, "PATCH", "/api/v1/me", driver, json={"full_name": "Ann", "vat_number": "BE0403170701"}),
        422,
        "validation_failed",
    )
    assert list(body["errors"]) == ["company_name"]  # a VAT number needs a company (accounts.services)
    db.session.refresh(driver.account)
    assert driver.account.full_name == "Ann Driver" and driver.account.vat_number is None


def test_control_characters_and_lone_surrogates_never_reach_a_service(client: FlaskClient, driver: SignedIn) -> None:
    for raw in (b'{"full_name": "Ann\\u0000"}', b'{"full_name": "Ann\\ud800"}', b'{"city": "A\\u001bB"}'):
        response = call(client, "PATCH", "/api/v1/me", driver, data=raw, content_type="application/json")
        body = problem(response, 422, "validation_failed")
        assert body["errors"] and all(
            messages == ["Control characters are not allowed."] for messages in body["errors"].values()
        )
    db.session.refresh(driver.account)
    assert driver.account.full_name == "Ann Driver"


def test_the_body_is_read_strictly(client: FlaskClient, driver: SignedIn) -> None:
    for raw in (b"[" * 5000, b'{"full_name": NaN}', b'{"full_name": "unterminated', b"\xff\xfe\x00"):
        body = problem(
            call(client, "PATCH", "/api/v1/me", driver, data=raw, content_type="application/json"), 400, "bad_request"
        )
        assert body["errors"] == {"body": ["Invalid JSON body."]}
    too_big = b'{"full_name": "' + b"a" * 70_000 + b'"}'
    problem(
        call(client, "PATCH", "/api/v1/me", driver, data=too_big, content_type="application/json"),
        413,
        "payload_too_large",
    )


def test_messages_follow_accept_language_before_sign_in(client: FlaskClient, db_session: object) -> None:
    user = make_user()
    answer = client.post(
        "/api/v1/auth/token",
        json={"email": user.email, "password": "wrong-password!", "device_name": "x"},
        headers={"Accept-Language": "nl-BE,nl;q=0.9"},
    )
    body = problem(answer, 401, "invalid_credentials")
    assert body["message"] == "E-mailadres of wachtwoord is niet correct."
    assert answer.headers["Content-Language"] == "nl"
    assert body["code"] == "invalid_credentials" and body["title"] == "Unauthorized"  # stable, not translated


def test_messages_follow_the_account_language_once_signed_in(client: FlaskClient, driver: SignedIn) -> None:
    driver.account.language = "fr"
    db.session.flush()
    answer = call(client, "POST", "/api/v1/balance/pay", driver, json={}, headers={"Accept-Language": "nl"})
    body = problem(answer, 409, "payment_method_required")
    assert body["message"] == "Ajoutez d'abord un moyen de paiement valide."
    assert answer.headers["Content-Language"] == "fr"


def test_the_status_route_is_public_and_the_document_is_served(client: FlaskClient, db_session: object) -> None:
    assert client.get("/api/v1/status").get_json()["status"] == "ok"
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["paths"]["/api/v1/auth/token"]["post"]["security"] == []
    problem_response = document["components"]["responses"]["DEFAULT_ERROR"]
    assert list(problem_response["content"]) == ["application/problem+json"]
