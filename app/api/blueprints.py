"""The API's blueprint class: how it reads input, and which routes need a signed-in driver.

Every resource module makes one :class:`ApiBlueprint`. Its input goes through :class:`ApiParser` (strict JSON:
no ``NaN``, no nesting deeper than 32, numbers exact, bodies capped at :data:`MAX_BODY_BYTES`), and, unless the
blueprint is made with ``public=True``, every route first authenticates the bearer token
(:func:`app.api.auth.authenticate_driver`). A GET reads only, without a transaction on PostgreSQL
(:mod:`app.api.reads`). Being on the blueprint rather than on each view, a new route cannot
forget it. The OpenAPI document states the bearer scheme once for all operations; public ones say ``security: []``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import flask_smorest
from flask import Request, request
from marshmallow import Schema
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from app.api.auth import authenticate_driver
from app.api.reads import end_read_only_request, start_read_only_request
from app.ocpi_values import load_json

F = TypeVar("F", bound=Callable[..., Any])

# The largest body an API call may send (the biggest real one, a profile, is under 2 kB).
MAX_BODY_BYTES = 64 * 1024
# Ids in URLs are database keys: Flask's converter bounds them, so a huge number is a plain 404, not an overflow.
ID = "int(min=1, max=2147483647)"


class ApiParser(FlaskParser):
    """webargs' Flask parser with the house's JSON rules (``app.ocpi_values.load_json``): a body that nests 5,000
    levels or says ``NaN`` is "Invalid JSON body." (400), not a crash or a float."""

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req):
            return core.missing
        body = req.get_data(cache=True)
        if not body.strip():
            return core.missing
        try:
            return load_json(body)
        except (ValueError, RecursionError) as error:
            self._handle_invalid_json_error(error, req)  # type: ignore[arg-type]  # any reason reads the same


def _cap_body() -> None:
    # Werkzeug refuses to read more than this (413) whatever Content-Length says.
    request.max_content_length = MAX_BODY_BYTES


class ApiBlueprint(flask_smorest.Blueprint):  # type: ignore[misc]  # flask_smorest is untyped
    ARGUMENTS_PARSER = ApiParser()

    def __init__(self, name: str, import_name: str, *, tag: str, public: bool = False, **kwargs: Any) -> None:
        super().__init__(name, import_name, **kwargs)
        # Flask's blueprint names are global ("cards" is the portal's): the document groups by this tag instead.
        self.tag = tag
        self.public = public
        self.before_request(start_read_only_request)  # first: before anything reads
        self.after_request(end_read_only_request)
        self.before_request(_cap_body)
        if not public:
            self.before_request(authenticate_driver)

    # flask-smorest ships no types: its decorators, typed here once, keep the views typed.
    def route(self, rule: str, **options: Any) -> Callable[[F], F]:
        options.setdefault("tags", [self.tag])
        return cast(Callable[[F], F], super().route(rule, **options))

    def arguments(self, schema: Any, **kwargs: Any) -> Callable[[F], F]:
        # webargs makes a new instance of a schema class on every request (a deep copy of all its fields); one
        # instance, made here, serves every request (loading keeps no state on it).
        if isinstance(schema, type) and issubclass(schema, Schema):
            schema = schema()
        return cast(Callable[[F], F], super().arguments(schema, **kwargs))

    def response(self, status_code: int, schema: Any = None, **kwargs: Any) -> Callable[[F], F]:
        return cast(Callable[[F], F], super().response(status_code, schema, **kwargs))

    def alt_response(self, status_code: int, **kwargs: Any) -> Callable[[F], F]:
        return cast(Callable[[F], F], super().alt_response(status_code, **kwargs))

    def doc(self, **kwargs: Any) -> Callable[[F], F]:
        return cast(Callable[[F], F], super().doc(**kwargs))
