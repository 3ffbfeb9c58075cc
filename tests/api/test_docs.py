"""The browsable documentation: Swagger UI served from our own static files (vendored, with its licence), started
by a script of ours, under the app's Content-Security-Policy (no CDN, no inline script)."""

from __future__ import annotations

import json
import re

from flask.testing import FlaskClient

from app.config import PROJECT_ROOT

VENDOR = PROJECT_ROOT / "static" / "vendor" / "swagger-ui"


def test_the_docs_page_loads_only_our_own_assets(client: FlaskClient, db_session: object) -> None:
    page = client.get("/api/v1/docs", headers={"Accept-Language": "fr"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(source.startswith("/") for source in sources), sources  # nothing from elsewhere
    assert "<script>" not in html and "onload=" not in html  # no inline script: the CSP forbids it
    for source in sources:
        assert client.get(source).status_code == 200, source
    assert 'data-spec-url="/api/v1/openapi.json"' in html
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    start = client.get("/api/v1/docs/start.js")
    assert start.mimetype == "text/javascript" and b"SwaggerUIBundle" in start.data


def test_swagger_ui_is_vendored_with_its_licence_and_version() -> None:
    package = json.loads((VENDOR / "package.json").read_text())
    assert package["name"] == "swagger-ui-dist" and package["license"] == "Apache-2.0"
    assert "Apache License" in (VENDOR / "LICENSE").read_text()
    assert package["version"] in (VENDOR / "README.md").read_text()  # which release, and how to update it
    assert (VENDOR / "swagger-ui-bundle.js").stat().st_size > 1_000_000
