"""Tiny servers on loopback for the tests of outgoing calls: a scripted HTTP server (answers, redirects, slow
answers, one byte at a time) and a tarpit that accepts connections and never says a word.

Each stands for a party on the network: a partner, a redirector, an internal service that must stay unreached.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Seen:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Route = Callable[["_Handler", Seen], None]


@dataclass
class ScriptedServer:
    """An HTTP server on 127.0.0.1:<free port>; ``routes`` maps a path (without query) to what to do."""

    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    port: int = 0
    scheme: str = "http"

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    def paths_seen(self) -> list[str]:
        return [request.path for request in self.seen]


class _Handler(BaseHTTPRequestHandler):
    server_version = "loopback-test"
    scripted: ScriptedServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path.split("?", 1)[0], dict(self.headers), body)
        self.scripted.seen.append(seen)
        route = self.scripted.routes.get(seen.path)
        if route is None:
            send(self, 404, b"no such route")
        else:
            route(self, seen)

    # http.server dispatches to do_<METHOD>: the names are its, not ours.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle  # noqa: N815


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def ocpi(
    data: Any = None,
    status_code: int = 1000,
    http_status: int = 200,
    status_message: str | None = None,
    headers: dict[str, str] | None = None,
) -> Route:
    """Answer an OCPI envelope."""
    envelope: dict[str, Any] = {"data": data, "status_code": status_code, "timestamp": "2026-11-01T00:00:00Z"}
    if status_message is not None:
        envelope["status_message"] = status_message
    body = json.dumps(envelope).encode()
    return lambda handler, seen: send(handler, http_status, body, headers)


def raw(status: int, body: bytes, content_type: str = "text/html") -> Route:
    return lambda handler, seen: send(handler, status, body, content_type=content_type)


def redirect(location: str, status: int = 302) -> Route:
    return lambda handler, seen: send(handler, status, b"", {"Location": location})


def echo_request() -> Route:
    """Answer an OCPI envelope describing the request received (method, body, whether a token came along)."""

    def route(handler: _Handler, seen: Seen) -> None:
        data = {
            "method": seen.method,
            "body": seen.body.decode(),
            "authorization": seen.headers.get("Authorization"),
            "host": seen.headers.get("Host"),
        }
        ocpi(data)(handler, seen)

    return route


def delayed(seconds: float, then: Route) -> Route:
    """Wait before answering (returns early when the server stops)."""

    def route(handler: _Handler, seen: Seen) -> None:
        if not handler.scripted.stopping.wait(seconds):
            then(handler, seen)

    return route


def drip(total_bytes: int, interval: float) -> Route:
    """Headers at once, then the body one byte every ``interval`` seconds: never idle long enough for a read
    timeout, yet the whole answer takes ``total_bytes * interval`` seconds."""

    def route(handler: _Handler, seen: Seen) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(total_bytes))
        handler.end_headers()
        try:
            for _ in range(total_bytes):
                if handler.scripted.stopping.wait(interval):
                    return
                handler.wfile.write(b" ")
                handler.wfile.flush()
        except OSError:
            return  # the client hung up: what the deadline is for

    return route


class RunningServer:
    def __init__(self, scripted: ScriptedServer, tls: TlsFiles | None = None) -> None:
        handler = type("BoundHandler", (_Handler,), {"scripted": scripted})
        self.scripted = scripted
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.http.daemon_threads = True
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.certificate, tls.key)
            self.http.socket = context.wrap_socket(self.http.socket, server_side=True)
            scripted.scheme = "https"
        scripted.port = self.http.server_address[1]
        self.thread = threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.scripted.stopping.set()
        self.http.shutdown()
        self.http.server_close()
        self.thread.join(timeout=5)


def start_scripted(tls: TlsFiles | None = None) -> RunningServer:
    return RunningServer(ScriptedServer(), tls)


@dataclass(frozen=True)
class TlsFiles:
    """A private CA and a server certificate it signed for ``host`` (PEM files)."""

    ca: Path
    certificate: Path
    key: Path


def make_tls_files(directory: Path, host: str) -> TlsFiles:
    """With the openssl command line tool: a throw-away CA and a certificate for ``host``."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Loopback CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    )
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={host}")
    (directory / "server.ext").write_text(f"subjectAltName=DNS:{host}\nextendedKeyUsage=serverAuth\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    )
    return TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")


class Tarpit:
    """Accepts TCP connections on 127.0.0.1:<free port> and never sends a byte (nor a TLS handshake)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)  # so the accept loop notices stop()
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, path: str = "/", scheme: str = "https") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.accepted.append(connection)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.listener.close()
        for connection in self.accepted:
            connection.close()
