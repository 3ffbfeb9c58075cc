"""One error dispatcher for every door (DESIGN.md §5).

The same exception becomes an HTML page for the portal and back office, an RFC 9457 problem document for the
JSON API and the Stripe webhook, and an OCPI envelope for roaming partners. Which one is decided by the URL
prefix, so a view never formats its own errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

JSON_PREFIXES = ("/api/", "/webhooks/")

# A door with its own error format (OCPI's envelope under /ocpi) registers a renderer for its URL prefix from
# its package's init_app; this module knows no door but the HTML pages and the JSON problem documents.
ErrorRenderer = Callable[[HTTPException], Response]


def register_door_errors(app: Flask, prefix: str, renderer: ErrorRenderer) -> None:
    app.extensions.setdefault("door_error_renderers", {})[prefix] = renderer


def _renderer_for_path(path: str) -> ErrorRenderer | None:
    renderers: dict[str, ErrorRenderer] = current_app.extensions.get("door_error_renderers", {})
    for prefix, renderer in renderers.items():
        if path == prefix or path.startswith(prefix + "/"):
            return renderer
    return None


def door_for_path(path: str) -> str:
    if _renderer_for_path(path) is not None:
        return "own"
    if path.startswith(JSON_PREFIXES) or path in ("/api", "/webhooks"):
        return "json"
    return "html"


def _problem(http: HTTPException) -> dict[str, Any]:
    problem: dict[str, Any] = {
        "type": "about:blank",
        "title": http.name,
        "status": http.code,
        "detail": http.description,
    }
    errors = getattr(http, "data", {}).get("messages") if hasattr(http, "data") else None
    if errors:
        problem["errors"] = errors
    return problem


def render_http_error(http: HTTPException) -> Response | tuple[Any, int]:
    code = http.code or 500
    own_renderer = _renderer_for_path(request.path)
    if own_renderer is not None:
        return own_renderer(http)
    if door_for_path(request.path) == "json":
        response = jsonify(_problem(http))
        response.status_code = code
        response.mimetype = "application/problem+json"
        return response
    titles = {
        400: _("Bad request"),
        401: _("Please log in"),
        403: _("Access denied"),
        404: _("Page not found"),
        405: _("Method not allowed"),
        429: _("Too many attempts"),
        500: _("Something went wrong"),
    }
    explanations = {
        400: _("The request could not be understood. Please go back and try again."),
        403: _("You do not have access to this page."),
        404: _("The page you asked for does not exist or is not yours."),
        429: _("You tried this too often. Please wait a minute and try again."),
        500: _("An unexpected error happened on our side. We have been notified."),
    }
    body = render_template(
        "errors/error.html",
        code=code,
        title=titles.get(code, http.name),
        explanation=explanations.get(code, http.description),
    )
    response = Response(body, status=code)
    if code == 405:
        # Set by MethodNotAllowed only; other HTTP exceptions have no such attribute.
        valid_methods = getattr(http, "valid_methods", None)
        if isinstance(valid_methods, list | tuple):
            response.headers["Allow"] = ", ".join(valid_methods)
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException) -> Response | tuple[Any, int]:
        return render_http_error(error)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response | tuple[Any, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_http_error(InternalServerError())
