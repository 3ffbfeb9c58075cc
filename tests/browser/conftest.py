"""A live server on a loopback port and Debian's Chromium driven by Playwright.

The live server commits for real (the browser is another process), so these tests do not use the rolled-back
``db_session``; they delete what they created afterwards.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import delete
from werkzeug.serving import make_server

from app import create_app
from app.extensions import db, limiter
from app.plans.services import seed_default_plans

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


class LiveServer:
    def __init__(self, app: Flask, outbox: Path) -> None:
        self.app = app
        self.outbox = outbox
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        # Links in mails are built on the configured base URL (never the Host header): the live server's own.
        app.config["PUBLIC_BASE_URL"] = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


def _wipe_tables(app: Flask) -> None:
    with app.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(delete(table))
        db.session.commit()


def make_live_app(app: Flask, tmp_path: Path, **overrides: object) -> Flask:
    """An app for a live server: the suite's database (schema built by the session ``app``), its own outbox,
    the standard plans committed."""
    live_app = create_app(
        "test",
        MAIL_OUTBOX_DIR=str(tmp_path / "outbox"),
        SERVER_NAME=None,
        SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
        **overrides,
    )
    with live_app.app_context():
        limiter.reset()
        seed_default_plans()
        db.session.commit()
    return live_app


@contextmanager
def running(live_app: Flask, outbox: Path) -> Iterator[LiveServer]:
    server = LiveServer(live_app, outbox)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        _wipe_tables(live_app)


@pytest.fixture
def live_server(app: Flask, tmp_path: Path) -> Iterator[LiveServer]:
    with running(make_live_app(app, tmp_path), tmp_path / "outbox") as server:
        yield server


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium; see README")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()
