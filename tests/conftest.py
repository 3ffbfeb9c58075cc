"""Shared fixtures: one app per test session, each test inside a transaction that is rolled back.

The schema is built by running the Alembic migrations (so every test run also proves they work), on SQLite by
default and on PostgreSQL when ``TEST_DATABASE_URL`` points there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, g, has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import text

from app import create_app
from app.config import INSTANCE_DIR
from app.extensions import db, limiter
from app.jobs import init_celery
from app.plans.services import seed_default_plans
from tests.helpers import Mailbox


def _reset_database(app: Flask) -> None:
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    with app.app_context():
        if url.startswith("sqlite"):
            db.engine.dispose()
            Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        else:
            with db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        upgrade()
        db.engine.dispose()


class FreshGlobalsClient(FlaskClient):
    """A test client whose every request starts with an empty ``g``.

    In production each request gets its own app context. In tests the ``db_session`` fixture keeps one app
    context open, and Flask reuses it for every request, so ``g`` (the logged-in user, the locale) would leak
    from one request, or one client, into the next.
    """

    def open(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if has_app_context():
            for name in list(vars(g)):
                delattr(g, name)
            # A request only ever sees committed work. Committing the test's setup here (a SAVEPOINT release
            # inside the rolled-back outer transaction) also keeps a view's rollback from undoing it.
            db.session.commit()
        return super().open(*args, **kwargs)


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    INSTANCE_DIR.mkdir(exist_ok=True)
    overrides = {}
    if not os.environ.get("TEST_DATABASE_URL"):
        # A private SQLite file per run, so parallel runs (several developers, CI) never share one.
        overrides["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    application = create_app("test", **overrides)
    application.test_client_class = FreshGlobalsClient
    _reset_database(application)
    yield application


# A real seller's identity, as a deployment sets it: tests that build the production app (its other checks) need
# one, since production refuses to start without it (tests/test_seller_identity.py deletes them to check that).
SELLER_ENVIRONMENT = {
    "COMPANY_NAME": "Laadnet NV",
    "SELLER_STREET": "Wetstraat 16",
    "SELLER_POSTAL_CODE": "1000",
    "SELLER_CITY": "Brussel",
    "SELLER_COUNTRY": "BE",
    "SELLER_VAT_NUMBER": "BE0202239951",
    "SELLER_IBAN": "BE68539007547034",
    "SELLER_EMAIL": "facturatie@laadnet.example",
    "SELLER_COMPANY_REGISTER": "RPR Brussel",
}


@pytest.fixture(autouse=True)
def _seller_identity_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SELLER_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(autouse=True)
def _celery_follows_the_session_app(request: pytest.FixtureRequest) -> None:
    """The Celery instance is process-wide and configured by the last ``create_app``. Tests that build other
    apps (production config with a broker in the environment, the worker test) must not leave later tests
    queueing tasks to a broker nobody serves: re-bind it to the session app, eager, before each test."""
    if "app" in request.fixturenames:
        init_celery(request.getfixturevalue("app"))


@pytest.fixture
def db_session(app: Flask) -> Iterator[object]:
    """Run the test inside one outer transaction that is rolled back at the end.

    The engine entries of Flask-SQLAlchemy are swapped for a connection holding that transaction, and sessions
    join it through SAVEPOINTs, so code under test may commit and roll back as in production.
    """
    with app.app_context():
        engines = db.engines
        originals = dict(engines)
        connection = originals[None].connect()
        outer = connection.begin()
        engines[None] = connection
        db.session.remove()
        db.session.configure(join_transaction_mode="create_savepoint")
        # Reference data every deployment has (`flask plans seed`).
        seed_default_plans()
        try:
            yield db.session
        finally:
            db.session.remove()
            outer.rollback()
            connection.close()
            engines.update(originals)


@pytest.fixture
def mailbox(app: Flask, tmp_path: Path) -> Iterator[Mailbox]:
    previous = app.config["MAIL_OUTBOX_DIR"]
    app.config["MAIL_OUTBOX_DIR"] = str(tmp_path / "outbox")
    yield Mailbox(tmp_path / "outbox")
    app.config["MAIL_OUTBOX_DIR"] = previous


@pytest.fixture
def client(app: Flask, db_session: object, mailbox: Mailbox) -> Iterator[FlaskClient]:
    with app.app_context():
        limiter.reset()
    with app.test_client() as test_client:
        yield test_client
