"""A stand-in for our own Nominatim and Photon servers: a werkzeug server on a free loopback port that answers
``/search`` (Nominatim, ``format=json``) and ``/api`` (Photon) with the answers recorded beside this module.

Every request is recorded (path, query parameters, headers), so a test can count what reached the geocoder.
``misbehave`` switches, read on each request:

- ``delay``: seconds to wait before answering (a slow server);
- ``drip``: seconds between the bytes of a long answer (never idle long enough for a read timeout);
- ``status``: answer this HTTP status with a short text body instead of the recording;
- ``body``: answer these bytes (status 200, JSON content type) instead of the recording;
- ``redirect``: answer 302 to this URL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

RECORDINGS = Path(__file__).resolve().parent
EMPTY_PHOTON = {"type": "FeatureCollection", "features": []}


@dataclass
class Seen:
    path: str
    args: dict[str, str]
    headers: dict[str, str]


@dataclass
class RecordedGeocoder:
    nominatim: dict[str, Any] = field(
        default_factory=lambda: json.loads((RECORDINGS / "nominatim_search.json").read_text(encoding="utf-8"))
    )
    photon: dict[str, Any] = field(
        default_factory=lambda: json.loads((RECORDINGS / "photon_api.json").read_text(encoding="utf-8"))
    )
    seen: list[Seen] = field(default_factory=list)
    misbehave: dict[str, Any] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)
    domain: str = ""  # host:port, as GEOCODER_DOMAIN takes it

    def searches(self, query: str | None = None) -> list[Seen]:
        return [seen for seen in self.seen if query is None or seen.args.get("q") == query]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.seen.append(Seen(request.path, dict(request.args), dict(request.headers)))
        return self._answer(request)(environ, start_response)

    def _answer(self, request: Request) -> Response:
        if self.misbehave.get("delay") and self.stopping.wait(float(self.misbehave["delay"])):
            return Response(b"", status=503)
        if "redirect" in self.misbehave:
            return Response(b"", status=302, headers={"Location": self.misbehave["redirect"]})
        if "status" in self.misbehave:
            return Response(b"Service Unavailable", status=int(self.misbehave["status"]), mimetype="text/plain")
        if "body" in self.misbehave:
            return Response(self.misbehave["body"], mimetype="application/json")
        query = (request.args.get("q") or "").strip().lower()
        if request.path == "/search":
            body = json.dumps(self.nominatim.get(query, [])).encode()
        elif request.path == "/api":
            body = json.dumps(self.photon.get(query, EMPTY_PHOTON)).encode()
        else:
            return Response(b"no such route", status=404, mimetype="text/plain")
        if self.misbehave.get("drip"):
            return Response(self._drip(body, float(self.misbehave["drip"])), mimetype="application/json",
                            headers={"Content-Length": str(len(body))})  # fmt: skip
        return Response(body, mimetype="application/json")

    def _drip(self, body: bytes, interval: float) -> Iterator[bytes]:
        for index in range(len(body)):
            if self.stopping.wait(interval):
                return
            yield body[index : index + 1]


class RunningGeocoder:
    def __init__(self, geocoder: RecordedGeocoder) -> None:
        self.geocoder = geocoder
        self.server = make_server("127.0.0.1", 0, geocoder, threaded=True)
        geocoder.domain = f"127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.geocoder.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_recorded_geocoder() -> RunningGeocoder:
    """Serve the recorded answers on a free loopback port; call ``.stop()`` when done."""
    return RunningGeocoder(RecordedGeocoder())
