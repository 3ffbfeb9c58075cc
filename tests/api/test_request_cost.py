"""What every API request costs was cut at its causes (issue 15, "Speed"); each cut keeps its guarantee:

- the API has no cookie session (bearer tokens only), yet the portal's session is untouched;
- the security headers are added in one pass, once each, and a header a view set stays;
- Flask-Limiter's per-request hook skips its search only while no request-wide limit exists: default and
  application limits still apply, and so do the limits on routes;
- a device's "last used" leaves the request for a per-process writer, which keeps the latest use and never moves
  it back;
- a GET reads without a transaction on PostgreSQL (no BEGIN, no ROLLBACK), and may not write unless it says so.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from flask_limiter.util import get_remote_address
from sqlalchemy import Engine, create_engine, event, insert, select, update

from app.accounts import api_tokens
from app.accounts.api_tokens import ApiDevice, LastUsedWriter
from app.api.reads import ReadOnlyRequestError, end_read_only_request, start_read_only_request, writes_allowed
from app.db import utcnow
from app.extensions import _Limiter, db
from app.security import add_security_headers
from tests.api.helpers import SignedIn, call
from tests.factories import login, make_user

SECURITY_HEADERS = (
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Permissions-Policy",
    "Cross-Origin-Opener-Policy",
)


def test_the_api_neither_reads_nor_sets_the_portal_session(client: FlaskClient, driver: SignedIn) -> None:
    login(client, make_user())
    assert client.get_cookie("session") is not None
    # ?lang= would be remembered in the portal's session; an API call has none to remember it in.
    for response in (
        client.get("/api/v1/status?lang=fr"),
        call(client, "GET", "/api/v1/cards?lang=fr", driver),
        client.get("/api/v1/me"),  # the portal cookie is no sign-in here: 401
    ):
        assert "Set-Cookie" not in response.headers, response.headers
    assert client.get("/api/v1/me").status_code == 401
    # The portal still has its session, in the language it had.
    dashboard = client.get("/dashboard")
    assert dashboard.status_code == 200
    assert 'lang="en"' in dashboard.get_data(as_text=True)


def test_security_headers_come_once_and_private_answers_are_not_stored(client: FlaskClient, driver: SignedIn) -> None:
    public = client.get("/api/v1/status")
    private = call(client, "GET", "/api/v1/cards", driver)
    for response in (public, private):
        for name in SECURITY_HEADERS:
            assert len(response.headers.getlist(name)) == 1, (name, response.headers)
    assert "Cache-Control" not in public.headers
    assert private.headers["Cache-Control"] == "no-store" and private.headers["Pragma"] == "no-cache"


def test_a_header_the_view_set_is_kept(app: Flask) -> None:
    with app.test_request_context("/invoices/1.pdf"):
        response = Response(b"%PDF", headers={"X-Frame-Options": "SAMEORIGIN", "Content-Disposition": "attachment"})
        add_security_headers(response)
    assert response.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"  # a download is private whoever asks


def _limited_app(limiter: _Limiter, *, decorated: str | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(RATELIMIT_STORAGE_URI="memory://", RATELIMIT_HEADERS_ENABLED=True)
    limiter.init_app(app)

    def hello() -> str:
        return "hello"

    app.add_url_rule("/", "hello", limiter.limit(decorated)(hello) if decorated else hello)
    return app


@pytest.mark.parametrize(
    "arguments",
    [{"default_limits": ["2 per minute"]}, {"application_limits": ["2 per minute"]}],
    ids=["default", "application"],
)
def test_request_wide_limits_still_apply(arguments: dict[str, list[str]]) -> None:
    limiter = _Limiter(key_func=get_remote_address, **arguments)  # type: ignore[arg-type]
    assert limiter.has_request_wide_limits()
    client = _limited_app(limiter).test_client()
    assert [client.get("/").status_code for _ in range(3)] == [200, 200, 429]


def test_a_routes_own_limit_applies_without_request_wide_ones() -> None:
    limiter = _Limiter(key_func=get_remote_address, default_limits=[])
    client = _limited_app(limiter, decorated="1 per minute").test_client()
    assert not limiter.has_request_wide_limits()
    first, second = client.get("/"), client.get("/")
    assert (first.status_code, second.status_code) == (200, 429)
    assert first.headers["X-RateLimit-Limit"] == "1"  # the headers of the route's limit are still sent


# --- "last used" off the request path ---------------------------------------------------------------------------


@pytest.fixture
def devices_engine(tmp_path: Path) -> Iterator[Engine]:
    """A database of its own for the writer (it commits on its own connections, outside the test's transaction)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'devices.sqlite3'}")
    db.metadata.create_all(engine, tables=[ApiDevice.__table__])  # type: ignore[list-item]
    yield engine
    engine.dispose()


def _store_device(engine: Engine, device_id: int, last_used_at: dt.datetime) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(ApiDevice.__table__),  # type: ignore[arg-type]
            {
                "id": device_id,
                "user_id": 1,
                "name": "Phone",
                "created_at": last_used_at,
                "last_used_at": last_used_at,
                "access_token_hash": f"{device_id:064d}",
                "access_expires_at": last_used_at,
                "refresh_family": f"{device_id:022d}",
                "refresh_token_hash": f"{device_id:064d}",
                "refresh_expires_at": last_used_at,
            },
        )


def _last_used(engine: Engine, device_id: int) -> dt.datetime:
    with engine.connect() as connection:
        moment = connection.scalar(select(ApiDevice.last_used_at).where(ApiDevice.id == device_id))
    assert moment is not None
    return moment


def test_last_used_is_handed_to_the_writer_not_written_in_the_request(
    app: Flask, client: FlaskClient, driver: SignedIn, devices_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = LastUsedWriter(devices_engine, flush_seconds=3600)  # flushed by the test, not by its thread
    monkeypatch.setitem(app.extensions, api_tokens.LAST_USED_EXTENSION_KEY, writer)
    monkeypatch.setitem(app.config, "API_LAST_USED_BUFFERED", True)
    long_ago = utcnow() - dt.timedelta(minutes=10)
    driver.device.last_used_at = long_ago
    db.session.flush()
    _store_device(devices_engine, driver.device.id, long_ago)

    before = utcnow()
    assert call(client, "GET", "/api/v1/cards", driver).status_code == 200
    db.session.refresh(driver.device)
    assert driver.device.last_used_at == long_ago  # nothing written by the request
    assert writer.pending() == 1
    assert api_tokens.flush_last_used(app) == 1
    assert _last_used(devices_engine, driver.device.id) >= before


def test_the_writer_keeps_the_latest_use_and_never_moves_it_back(devices_engine: Engine) -> None:
    start = utcnow() - dt.timedelta(hours=1)
    _store_device(devices_engine, 7, start)
    _store_device(devices_engine, 8, start)
    writer = LastUsedWriter(devices_engine, flush_seconds=3600)
    later, latest = start + dt.timedelta(minutes=10), start + dt.timedelta(minutes=20)
    for device_id, moment in ((7, later), (7, latest), (7, later), (8, later)):
        writer.add((device_id, moment))
    assert writer.flush() == 4
    assert (_last_used(devices_engine, 7), _last_used(devices_engine, 8)) == (latest, later)
    writer.add((7, start))  # a use older than the stored one (a slow worker's batch) changes nothing
    writer.flush()
    assert _last_used(devices_engine, 7) == latest


# --- a GET reads only, without a transaction on PostgreSQL -------------------------------------------------------


def _try_to_write() -> None:
    db.session.execute(update(ApiDevice).where(ApiDevice.id == 0).values(name="x"))


def test_a_get_may_not_write_unless_it_says_so(app: Flask, db_session: object) -> None:
    with app.test_request_context("/api/v1/cards", method="GET"):
        start_read_only_request()
        with pytest.raises(ReadOnlyRequestError, match="GET /api/v1/cards tried to write"):
            _try_to_write()
        db.session.rollback()
        with writes_allowed():  # the token check's own write
            _try_to_write()
        end_read_only_request(Response())
        _try_to_write()  # after the answer (a test's own code while the client keeps the context)
    for path, method in (("/api/v1/cards", "POST"), ("/api/v1/invoices/1/pdf", "GET")):  # a write, a PDF stored
        with app.test_request_context(path, method=method):
            start_read_only_request()
            _try_to_write()


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="autocommit reads are PostgreSQL's (SQLite's reads already run outside the writer's transaction)",
)
def test_a_get_reads_in_autocommit_mode_on_postgresql(app: Flask) -> None:
    """On the app's own engine (not the tests' outer transaction): every statement of a GET runs in autocommit
    mode (psycopg sends no BEGIN, there is nothing to roll back); a POST keeps its transaction."""
    seen: list[tuple[str, bool]] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append((statement.split()[0], conn.connection.dbapi_connection.autocommit))

    with app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            assert app.test_client().get("/api/v1/status").status_code == 200
            read = list(seen)
            seen.clear()
            unknown = "F" * 22 + "." + "S" * 43  # well formed, of no device: looked up, then refused
            assert app.test_client().post("/api/v1/auth/refresh", json={"refresh_token": unknown}).status_code == 401
            written = list(seen)
        finally:
            event.remove(engine, "before_cursor_execute", record)
            db.session.remove()
    assert read == [("SELECT", True)]
    assert written and not any(autocommit for _statement, autocommit in written)
