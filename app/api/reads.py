"""GET requests of the API only read, and on PostgreSQL they read without a transaction of their own.

A transaction costs a read two database round trips, ``BEGIN`` and ``ROLLBACK``: half of those of a list call (the
token check and the route's query are the others), and on this machine's benchmark 60 % of the database's CPU per
call. A read needs neither: under READ COMMITTED, PostgreSQL's level here, each statement sees its own snapshot
whether or not a transaction holds them together, so the answer is the same without one. So a GET (or HEAD) of an
:class:`~app.api.blueprints.ApiBlueprint` runs its statements in autocommit mode (no ``BEGIN``, nothing to roll
back): psycopg's switch, set on the connection when the request takes it and unset when it goes back to the pool,
without a round trip either way.

What keeps this safe: such a request may not write. A statement that would (INSERT, UPDATE, DELETE) is refused
before it reaches the database (:class:`ReadOnlyRequestError`, a 500), so a GET that starts writing fails its tests
instead of committing half its work. The GETs that do store something on the way (a geocoder's answer, an invoice
PDF rendered on first download) say so with :func:`writes_on_get` and run in a transaction as before. The token
check's own write, a device's "last used" when it is not buffered, is let through (:func:`writes_allowed`): it
commits at once, as the check would have committed it.

Where the session cannot switch (a session joined to an outer transaction, as in the tests; SQLite, whose reads
already run outside the writer's transaction, ``app.db.configure_sqlite``) the request keeps its transaction, and
the refusal of writes still holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from flask import Response, current_app, g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.extensions import db

F = TypeVar("F", bound=Callable[..., Any])

_READ_ONLY = "api_read_only"
_WRITES_ALLOWED = "api_writes_allowed"
_WRITES_ON_GET = "_api_writes_on_get"
_AUTOCOMMIT = "api_read_only_autocommit"  # in a pooled connection's info while it is switched
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_WRITING_STATEMENTS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE"})


class ReadOnlyRequestError(RuntimeError):
    """A GET of the API tried to write without saying so (:func:`writes_on_get`)."""


def writes_on_get(view: F) -> F:
    """Mark a GET view that stores something (put it right above the ``def``): it runs in a transaction."""
    setattr(view, _WRITES_ON_GET, True)
    return view


def _writes(endpoint: str | None) -> bool:
    view = current_app.view_functions.get(endpoint or "")
    # A MethodView's route is a function made by as_view; the mark is on the class's method.
    method = getattr(getattr(view, "view_class", None), "get", None)
    return bool(getattr(method or view, _WRITES_ON_GET, False))


def start_read_only_request() -> None:
    """``before_request`` of every API blueprint, before anything reads: a GET that does not write reads in
    autocommit mode, and any write it attempts is refused."""
    if request.method not in _SAFE_METHODS or _writes(request.endpoint):
        return
    g.setdefault(_READ_ONLY, True)
    session = db.session()
    if session.in_transaction():
        return  # something read already (a hook of another door): keep its transaction
    bind = session.get_bind()
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        # psycopg's own switch on the connection the session just took, as SQLAlchemy's psycopg dialect flips it
        # for its pings (its isolation_level option does the same through more machinery: ~5 % of a bare call's
        # CPU). It sends nothing; BEGIN would only have come with the first statement. _restore_transactions
        # switches it back when the connection returns to the pool.
        pooled = session.connection().connection
        if pooled.dbapi_connection is not None:
            pooled.dbapi_connection.autocommit = True
            pooled.info[_AUTOCOMMIT] = True


def end_read_only_request(response: Response) -> Response:
    """``after_request`` of every API blueprint (error answers included): what runs after the answer (a test's
    own code, while the test client keeps the request's context) may write again."""
    g.pop(_READ_ONLY, None)
    return response


@contextmanager
def writes_allowed() -> Iterator[None]:
    """Let a write through in a read-only request (the token check's "last used", when it is not buffered): it
    commits at once in autocommit mode, as its caller would have committed it."""
    previous = g.get(_WRITES_ALLOWED, False)
    setattr(g, _WRITES_ALLOWED, True)
    try:
        yield
    finally:
        setattr(g, _WRITES_ALLOWED, previous)


def _refuse_writes(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
    if not has_request_context() or not g.get(_READ_ONLY) or g.get(_WRITES_ALLOWED):
        return
    compiled_write = context is not None and (context.isinsert or context.isupdate or context.isdelete)
    first_word = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
    if compiled_write or first_word in _WRITING_STATEMENTS:
        raise ReadOnlyRequestError(
            f"{request.method} {request.path} tried to write ({statement[:200]}): a GET of the API reads only; "
            "mark its view with app.api.reads.writes_on_get if it must store something"
        )


def _restore_transactions(dbapi_connection: Any, connection_record: Any) -> None:
    # After the pool's reset (a rollback: nothing to roll back in autocommit mode), before anyone else uses it.
    if connection_record.info.pop(_AUTOCOMMIT, False) and dbapi_connection is not None:
        dbapi_connection.autocommit = False


def init_app() -> None:
    """Refuse writes of read-only requests, and give connections back to the pool in transaction mode, on every
    engine (once per process)."""
    if not event.contains(Engine, "before_cursor_execute", _refuse_writes):
        event.listen(Engine, "before_cursor_execute", _refuse_writes)
    if not event.contains(Engine, "checkin", _restore_transactions):
        event.listen(Engine, "checkin", _restore_transactions)
