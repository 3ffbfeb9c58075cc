"""Core of the fake CPO: a werkzeug WSGI app on a free loopback port with a route table.

Misbehaviour switches of the core (``cpo.misbehave``; the handler modules document their own):

- ``redirect_every_call``: answer every request first with ``307 Temporary Redirect`` to the same path under
  ``REDIRECT_PREFIX`` (query kept), and serve it there, once: a request already under the prefix is served, not
  redirected again. ``True`` redirects within this server (same origin); a base URL such as
  ``"http://localhost:1234"`` redirects to that origin instead (another server, or this one by another name).
  The answer served under the prefix builds its links on the original path (a proxy in front of the API), so
  the Link of the next page points at the endpoint the partner announced, which redirects again.
- ``outage``: the whole CPO is down, every route alike (token pushes, pulls, commands, credentials), until the
  switch is cleared. ``"500"``: every request is answered HTTP 500 with OCPI 3000; ``"hang"``: no answer for
  ``outage_hang_seconds`` (default 30, so past any client deadline a test sets), or until the outage ends, then
  HTTP 503. Either way nothing is acted on; the requests are recorded in ``received`` as usual and counted in
  ``state["outage_requests"]``.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib
import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

REDIRECT_PREFIX = "/moved"

Handler = Callable[["FakeCpo", Request, dict[str, Any]], Response]
HANDLER_MODULES = ("handshake", "sender", "receiver")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeCpo:
    """State of one fake CPO: its identity, tokens, data to serve, and everything it received."""

    country_code: str = "NL"
    party_id: str = "TCP"
    name: str = "Test CPO"
    token_a_for_emsp: str = "cpo-token-a"  # the token the e-MSP uses to register with us
    accepted_tokens: set[str] = field(default_factory=lambda: {"cpo-token-a"})
    emsp_credentials: dict[str, Any] | None = None  # what the e-MSP sent us in POST credentials
    data: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # module -> objects to serve
    received: list[Recorded] = field(default_factory=list)
    misbehave: dict[str, Any] = field(default_factory=dict)  # switches read by handler modules
    state: dict[str, Any] = field(default_factory=dict)  # scratch space for handler modules
    base_url: str = ""
    routes: list[tuple[Rule, Handler]] = field(default_factory=list)

    def route(self, path: str, methods: list[str], handler: Handler) -> None:
        self.routes.append((Rule(path, methods=methods, endpoint=str(len(self.routes))), handler))

    def url(self, path: str) -> str:
        return self.base_url + path

    def requests_to(self, path_prefix: str, method: str | None = None) -> list[Recorded]:
        return [r for r in self.received if r.path.startswith(path_prefix) and (method is None or r.method == method)]


def envelope(
    data: Any = None,
    status_code: int = 1000,
    status_message: str | None = None,
    http_status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "status_code": status_code,
        "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if data is not None:
        body["data"] = data
    if status_message:
        body["status_message"] = status_message
    return Response(json.dumps(body), status=http_status, mimetype="application/json", headers=headers or {})


def token_of(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "token" or not value:
        return None
    try:
        return base64.b64decode(value, validate=True).decode()
    except ValueError:
        return value


class _WsgiApp:
    def __init__(self, cpo: FakeCpo) -> None:
        self.cpo = cpo
        self.url_map = Map([rule for rule, _ in cpo.routes])
        self.handlers = {rule.endpoint: handler for rule, handler in cpo.routes}

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        request = Request(environ)
        redirect_to = self.cpo.misbehave.get("redirect_every_call")
        if redirect_to:
            if not request.path.startswith(REDIRECT_PREFIX + "/"):
                self._record(request)
                return _redirect(request, redirect_to)(environ, start_response)
            self._record(request)  # recorded under the prefix: tests see that the redirect was followed
            body = request.get_data()  # read once: the request seen by the handler reads it again
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ["PATH_INFO"] = environ["PATH_INFO"][len(REDIRECT_PREFIX) :]
            request = Request(environ)
        else:
            self._record(request)
        outage = self.cpo.misbehave.get("outage")
        if outage:
            return _outage(self.cpo, str(outage))(environ, start_response)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            endpoint, values = adapter.match()
        except Exception:
            return envelope(status_code=2000, status_message="no such route", http_status=404)(environ, start_response)
        if token_of(request) not in self.cpo.accepted_tokens:
            return envelope(status_code=2000, status_message="unknown token", http_status=401)(environ, start_response)
        response = self.handlers[endpoint](self.cpo, request, {**values, "body": _body_of(request)})
        return response(environ, start_response)

    def _record(self, request: Request) -> None:
        self.cpo.received.append(
            Recorded(request.method, request.path, dict(request.args), dict(request.headers), _body_of(request))
        )


_COUNT_LOCK = threading.Lock()


def _outage(cpo: FakeCpo, mode: str) -> Response:
    """What a CPO that is down answers: HTTP 500 at once (``"500"``), or nothing for a long while (``"hang"``)."""
    with _COUNT_LOCK:
        cpo.state["outage_requests"] = cpo.state.get("outage_requests", 0) + 1
    if mode == "hang":
        until = time.monotonic() + float(cpo.misbehave.get("outage_hang_seconds", 30.0))
        while time.monotonic() < until and cpo.misbehave.get("outage") == "hang":
            time.sleep(0.02)
        return envelope(status_code=3000, status_message="service unavailable", http_status=503)
    if mode != "500":
        raise ValueError(f"unknown outage mode {mode!r}: '500' or 'hang'")
    return envelope(status_code=3000, status_message="internal server error", http_status=500)


def _body_of(request: Request) -> Any:
    """The JSON body, the text when it is not JSON, None when there is none (werkzeug caches the data)."""
    body: Any = None
    if request.data:
        try:
            body = json.loads(request.data)
        except ValueError:
            body = request.get_data(as_text=True)
    return body


def _redirect(request: Request, redirect_to: Any) -> Response:
    """307 to the same path under REDIRECT_PREFIX, on this origin (``True``) or on the origin given."""
    origin = redirect_to.rstrip("/") if isinstance(redirect_to, str) else request.host_url.rstrip("/")
    query = request.query_string.decode()
    location = f"{origin}{REDIRECT_PREFIX}{request.path}" + (f"?{query}" if query else "")
    return Response(b"", status=307, headers={"Location": location})


class RunningCpo:
    def __init__(self, cpo: FakeCpo) -> None:
        self.cpo = cpo
        for name in HANDLER_MODULES:
            try:
                module = importlib.import_module(f"tests.roaming.fake_cpo.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"tests.roaming.fake_cpo.{name}":
                    raise
                continue
            module.install(cpo)
        self.server = make_server("127.0.0.1", 0, _WsgiApp(cpo), threaded=True)
        cpo.base_url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.cpo.misbehave.pop("outage", None)  # a request still hanging ends now
        self.server.shutdown()
        self.thread.join(timeout=5)


def start_fake_cpo(**options: Any) -> RunningCpo:
    """Start a fake CPO on a free loopback port; call ``.stop()`` when done."""
    return RunningCpo(FakeCpo(**options))
