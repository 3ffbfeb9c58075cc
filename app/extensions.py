"""Flask extensions, created unbound here and bound to the app in ``create_app``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from celery import Celery
from flask import Flask
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from app.db import Base, configure_sqlite
from app.security import is_machine_request


class _SQLAlchemy(SQLAlchemy):
    """Flask-SQLAlchemy whose SQLite engines get the project's settings (WAL, busy timeout, immediate transactions,
    foreign keys: :func:`app.db.configure_sqlite`) the moment they are made, before any connection is opened.
    ``_make_engine`` is Flask-SQLAlchemy's one place where every engine is created (the pinned 3.1 calls it for
    each bind in ``init_app``); PostgreSQL engines pass through unchanged."""

    def _make_engine(self, bind_key: str | None, options: dict[str, Any], app: Flask) -> sa.engine.Engine:
        engine = super()._make_engine(bind_key, options, app)
        configure_sqlite(engine, busy_timeout_seconds=app.config.get("SQLITE_BUSY_TIMEOUT_SECONDS", 15.0))
        return engine


db = _SQLAlchemy(model_class=Base)

if TYPE_CHECKING:
    from flask_sqlalchemy.model import Model as _FlaskSQLAlchemyModel

    class Model(Base, _FlaskSQLAlchemyModel):
        """What ``db.Model`` is at run time: our declarative :class:`~app.db.Base` with Flask-SQLAlchemy's
        model API. Flask-SQLAlchemy types ``db.Model`` as an instance attribute, which a type checker cannot
        take as a base class; model classes derive from this name instead."""

else:
    Model = db.Model

migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


class _Limiter(Limiter):
    """Flask-Limiter without its per-request search for request-wide limits while there are none.

    Flask-Limiter checks limits in two places: a ``before_request`` hook for the limits that apply to many routes
    (application, default, blueprint and meta limits, and the in-memory fallback while the storage is down), and
    the wrapper of each decorated view for that view's own limits. This app has no request-wide limits (every
    limit is on its route), yet the hook resolved them on every request of every door: a fifth of the CPU of
    ``GET /api/v1/status`` (instructions counted in-process). Skipped only while none is configured (looked up on
    each request, so one added later applies); the decorated limits, the rate limit headers and the exemptions are
    untouched.
    """

    def _check_request_limit(self, callable_name: str | None = None, in_middleware: bool = True) -> None:
        if in_middleware and not self.has_request_wide_limits():
            return
        super()._check_request_limit(callable_name, in_middleware)

    def has_request_wide_limits(self) -> bool:
        manager = self.limit_manager
        return bool(
            manager._application_limits
            or manager._default_limits
            or manager._blueprint_limits
            or self._meta_limits
            or self._in_memory_fallback
        )


limiter = _Limiter(key_func=get_remote_address, default_limits=[])
# No rate limit applies to the machine doors (partners are authenticated, their volume is contractual); saying so
# up front spares Flask-Limiter its per-request search for limits that do not exist.
limiter.request_filter(is_machine_request)
babel = Babel()
api = Api()
# Tasks run inside a Flask app context (see app.jobs.FlaskTask).
celery = Celery("emsp", task_cls="app.jobs:FlaskTask")

if TYPE_CHECKING:

    class FlaskForm:
        """What the type checker knows of ``flask_wtf.FlaskForm``, which (like WTForms) ships no types: the
        calls the views make, and Any for the rest. Forms derive from this name."""

        def __init__(self, formdata: Any = ..., **kwargs: Any) -> None: ...

        def validate_on_submit(self, extra_validators: Any = None) -> bool: ...

        def validate(self, extra_validators: Any = None) -> bool: ...

        def __getattr__(self, name: str) -> Any: ...

else:
    from flask_wtf import FlaskForm as FlaskForm  # re-exported for the forms
