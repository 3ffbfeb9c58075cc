"""One error dispatcher: HTML for people, problem+json for the API, the OCPI envelope for partners."""

from __future__ import annotations

from app import create_app


def test_html_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Page not found" in response.get_data(as_text=True)


def test_api_404_is_problem_json(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 404 and body["title"] == "Not Found"


def test_api_405_is_problem_json(client):
    response = client.delete("/api/v1/status")
    assert response.status_code == 405
    assert response.get_json()["status"] == 405


def test_ocpi_errors_use_the_envelope(client):
    response = client.get("/ocpi/2.2.1/nothing-here")
    assert response.status_code == 404
    body = response.get_json()
    assert body["status_code"] == 2000
    assert body["timestamp"].endswith("Z")
    assert "data" not in body


def test_api_status_and_openapi(client):
    response = client.get("/api/v1/status")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/status" in spec["paths"]


def test_unexpected_exception_gives_500_page_in_each_door():
    def boom():  # type: ignore[no-untyped-def]
        raise RuntimeError("kaboom")

    app = create_app("test")  # a fresh app: routes cannot be added once an app has served requests
    for rule in ("/boom-html", "/api/v1/boom", "/ocpi/boom"):
        app.add_url_rule(rule, endpoint=rule, view_func=boom)
    client = app.test_client()
    html = client.get("/boom-html")
    assert html.status_code == 500 and "Something went wrong" in html.get_data(as_text=True)
    assert "kaboom" not in html.get_data(as_text=True)
    api = client.get("/api/v1/boom")
    assert api.status_code == 500 and api.get_json()["status"] == 500
    ocpi = client.get("/ocpi/boom")
    assert ocpi.status_code == 500 and ocpi.get_json()["status_code"] == 3000
