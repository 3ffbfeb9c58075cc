"""Fault: PostgreSQL restarted during CDR ingest over HTTP (issue 17, "Faults, as tests in the suite").

A CPO posts CDRs to our OCPI door (gunicorn, two processes, as in production) while the database restarts under
it, once cleanly (``pg_ctl restart -m fast``: sessions are ended, running transactions aborted) and once as a crash
(``-m immediate``: no shutdown checkpoint, crash recovery at start). The CPO keeps a list of what we acknowledged
(HTTP 2xx with OCPI 1000) and of what failed (an error answer, a dropped connection) and, as a CPO does, sends the
failed ones again once we answer again. Then:

- every CDR acknowledged is stored, exactly once; the ones acknowledged before the crash survive it (an
  acknowledgement is given only after the commit);
- every re-sent CDR is stored exactly once (a CDR whose commit landed while its answer was lost is recognised as
  a repeat, not stored twice);
- the web processes answer again without being restarted: their connection pools drop the dead connections and
  open new ones (``app.db.ping_after_idle``, and SQLAlchemy's invalidation of a pool whose connection died).

The machine's shared PostgreSQL is never touched: the test starts a cluster of its own (``initdb`` into a temp
folder, ``pg_ctl start`` on a free port, as the ``postgres`` user when run as root, as CI does). PostgreSQL only:
skipped on the SQLite pass and where the PostgreSQL server binaries are not installed.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import requests

from tests.shared_data import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOKEN = "cpo-token-for-the-restart-test"  # a loopback test partner
CDRS = 400
SENDERS = 4
WEB_WORKERS, WEB_THREADS = 2, 4
PAUSE_AFTER_FAILURE = 0.2  # a CPO whose call failed does not hammer us: it waits a moment
RESEND_ATTEMPTS = 20


def _server_binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl (the server package)."""
    found = [
        folder
        for folder in Path("/usr/lib/postgresql").glob("*/bin")
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists()
    ]
    found.sort(key=lambda folder: int(folder.parent.name) if folder.parent.name.isdigit() else 0)
    return found[-1] if found else None


PG_BIN = _server_binaries()
ON_POSTGRESQL = (os.environ.get("TEST_DATABASE_URL") or "").startswith("postgresql")

pytestmark = [
    pytest.mark.skipif(
        not ON_POSTGRESQL, reason="PostgreSQL only: restarts a PostgreSQL cluster (the SQLite pass has no server)"
    ),
    pytest.mark.skipif(PG_BIN is None, reason="the PostgreSQL server binaries (initdb, pg_ctl) are not installed"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A PostgreSQL cluster of the test's own in a temp folder, on a free loopback port."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.folder = Path(tempfile.mkdtemp(prefix="emsp-pg-restart-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgresql.log"
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0  # initdb refuses root: run the server as the postgres user
        if self.as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self.options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.folder} "
            "-c max_connections=40"
        )
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def libpq_url(self) -> str:
        return self.url.replace("postgresql+psycopg://", "postgresql://")

    def _run(self, *command: str) -> None:
        argv = [str(self.binaries / command[0]), *command[1:]]
        if self.as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)

    def _pg_ctl(self, action: str, *extra: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", *extra, action)

    def init_and_start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self._pg_ctl("start", "-o", self.options)

    def restart(self, mode: str) -> None:
        """``pg_ctl restart -m fast|immediate``; returns when the server accepts connections again."""
        self._pg_ctl("restart", "-m", mode, "-o", self.options)

    def remove(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._pg_ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    assert PG_BIN is not None
    started = Cluster(PG_BIN)
    try:
        started.init_and_start()
        yield started
    except subprocess.CalledProcessError as exc:
        log = started.log.read_text(errors="replace")[-2000:] if started.log.exists() else ""
        raise AssertionError(f"{exc.cmd}: {exc.stderr.decode(errors='replace')}\n{log}") from exc
    finally:
        started.remove()


def _migrate_and_add_partner(url: str) -> None:
    """The schema by the migrations, and a registered CPO (BE/BEC, the official examples' party) with our token."""
    from flask_migrate import upgrade

    from app import create_app
    from app.db import utcnow
    from app.extensions import db
    from app.roaming.models import Partner, PartnerParty, PartnerStatus
    from app.roaming.ocpi.auth import hash_token

    app = create_app("test", SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        upgrade()
        partner = Partner(
            name="Restart CPO",
            country_code="BE",
            party_id="BEC",
            status=PartnerStatus.REGISTERED,
            incoming_token_hash=hash_token(TOKEN),
            registered_at=utcnow(),
            version="2.2.1",
            endpoints=[],
        )
        partner.parties.append(PartnerParty(country_code="BE", party_id="BEC", role="CPO"))
        db.session.add(partner)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


class Web:
    """gunicorn serving wsgi:app (gthread, as gunicorn.conf.py configures production) against the cluster."""

    def __init__(self, database_url: str, folder: Path) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "gunicorn.log"
        env = {
            **os.environ,
            "APP_ENV": "development",
            "DATABASE_URL": database_url,
            "SERVER_NAME": "",
            "OCPI_BASE_URL": self.base_url,
        }
        for name in ("CELERY_BROKER_URL", "RATELIMIT_STORAGE_URI"):  # nothing of ours outside the cluster
            env.pop(name, None)
        command = [
            str(BIN / "gunicorn"),
            "--workers", str(WEB_WORKERS), "--threads", str(WEB_THREADS),
            "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning", "wsgi:app",
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)

    def wait_until_answering(self, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"gunicorn stopped: {self.log.read_text(errors='replace')[-2000:]}"
            try:
                requests.get(f"{self.base_url}/ocpi/versions", timeout=5)
                return
            except requests.RequestException:
                time.sleep(0.2)
        pytest.fail(f"gunicorn did not answer within {seconds} s")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGQUIT)  # gunicorn's quick shutdown: nothing is in flight any more
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def web(cluster: Cluster, tmp_path: Path) -> Iterator[Web]:
    started = Web(cluster.url, tmp_path)  # boots while the schema is built: neither waits for the other
    try:
        _migrate_and_add_partner(cluster.url)
        started.wait_until_answering()
        yield started
    finally:
        started.stop()
        print(f"--- gunicorn.log\n{started.log.read_text(errors='replace')[-3000:]}")  # shown when the test failed


EXAMPLE = json.loads((EXAMPLES / "cdr_example.json").read_text())


def cdr_id(number: int) -> str:
    return f"RESTART-{number:04d}"


def cdr_body(ocpi_id: str) -> bytes:
    """The official example CDR (another e-MSP's token: stored, not rated) under an id of its own."""
    return json.dumps({**EXAMPLE, "id": ocpi_id}).encode()


@dataclass
class Answer:
    ocpi_id: str
    acknowledged: bool
    what: str  # "HTTP 201 / 1000", "HTTP 500 / 3000", "ConnectionError"
    started: float
    location: str | None = None


@dataclass
class Cpo:
    """The sender: posts CDRs with its OCPI credentials and remembers what got a 1000 and what did not."""

    base_url: str
    answers: list[Answer] = field(default_factory=list)
    acknowledged: dict[str, str] = field(default_factory=dict)  # ocpi id -> the Location we answered
    moved: list[str] = field(default_factory=list)  # a CDR acknowledged twice under two Locations: stored twice
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, session: requests.Session, ocpi_id: str) -> bool:
        headers = {
            "Authorization": "Token " + base64.b64encode(TOKEN.encode()).decode(),
            "Content-Type": "application/json",
        }
        started = time.monotonic()
        location = None
        try:
            response = session.post(
                f"{self.base_url}/ocpi/2.2.1/cdrs", data=cdr_body(ocpi_id), headers=headers, timeout=15
            )
            try:
                status_code = response.json().get("status_code")
            except ValueError:
                status_code = None
            acknowledged = response.status_code in (200, 201) and status_code == 1000
            what = f"HTTP {response.status_code} / {status_code}"
            location = response.headers.get("Location")
        except requests.RequestException as exc:
            acknowledged, what = False, type(exc).__name__
        with self.lock:
            self.answers.append(Answer(ocpi_id, acknowledged, what, started, location))
            if acknowledged:
                previous = self.acknowledged.setdefault(ocpi_id, location or "")
                if previous != (location or ""):
                    self.moved.append(f"{ocpi_id}: answered {location}, earlier {previous}")
        return acknowledged

    def send_all(self, waiting: queue.Queue[str], failed: list[str]) -> None:
        with requests.Session() as session:
            while True:
                try:
                    ocpi_id = waiting.get_nowait()
                except queue.Empty:
                    return
                if not self.post(session, ocpi_id):
                    with self.lock:
                        failed.append(ocpi_id)
                    time.sleep(PAUSE_AFTER_FAILURE)

    def count_acknowledged(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def acknowledged_ids(self) -> set[str]:
        with self.lock:
            return set(self.acknowledged)

    def failures_started_between(self, start: float, end: float) -> list[Answer]:
        with self.lock:
            return [answer for answer in self.answers if start <= answer.started < end and not answer.acknowledged]


def stored_ids(cluster: Cluster) -> list[str]:
    with psycopg.connect(cluster.libpq_url) as connection:
        rows = connection.execute("SELECT ocpi_id FROM roaming_cdrs WHERE party_id = 'BEC'").fetchall()
    return [row[0] for row in rows]


def wait_for(what: str, condition: object, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.02)
    pytest.fail(f"not seen within {seconds} s: {what}")


def test_cdrs_acknowledged_across_database_restarts_are_stored_once(cluster: Cluster, web: Web) -> None:
    started = time.monotonic()
    cpo = Cpo(web.base_url)
    everything = [cdr_id(number) for number in range(CDRS)]
    waiting: queue.Queue[str] = queue.Queue()
    for ocpi_id in everything:
        waiting.put(ocpi_id)
    failed: list[str] = []
    senders = [threading.Thread(target=cpo.send_all, args=(waiting, failed)) for _ in range(SENDERS)]
    for sender in senders:
        sender.start()
    try:
        # A clean restart a quarter of the way in, a crash (no shutdown checkpoint) half-way.
        wait_for("a quarter of the CDRs acknowledged", lambda: cpo.count_acknowledged() >= CDRS // 4)
        cluster.restart("fast")
        back_after_fast = time.monotonic()
        wait_for("CDRs acknowledged after the clean restart", lambda: cpo.count_acknowledged() >= CDRS // 2)
        acknowledged_before_crash = cpo.acknowledged_ids()
        crash = time.monotonic()
        cluster.restart("immediate")
        back_after_crash = time.monotonic()
        # Everything acknowledged before the crash survived it.
        lost = acknowledged_before_crash - set(stored_ids(cluster))
        assert not lost, f"acknowledged, then lost in the crash: {sorted(lost)[:10]}"
    finally:
        for sender in senders:
            sender.join(timeout=120)
    assert not any(sender.is_alive() for sender in senders)
    first_pass_failures = sorted(set(failed) - set(cpo.acknowledged))
    first_pass_seconds = time.monotonic() - started

    # The CPO sends again what failed, to the same web processes (never restarted), until each gets its 1000.
    with requests.Session() as session:
        for ocpi_id in first_pass_failures:
            for _ in range(RESEND_ATTEMPTS):
                if cpo.post(session, ocpi_id):
                    break
                time.sleep(PAUSE_AFTER_FAILURE)
            else:
                pytest.fail(f"{ocpi_id} still refused after {RESEND_ATTEMPTS} attempts: {cpo.answers[-1].what}")

    assert web.process.poll() is None, "the web tier was restarted (or died)"
    assert 0 < len(first_pass_failures) < CDRS, "the restarts were not felt (or nothing got through)"
    stored = stored_ids(cluster)
    assert sorted(stored) == sorted(everything), "every CDR stored exactly once, and nothing else"
    assert set(cpo.acknowledged) == set(everything)
    # A CDR whose commit landed but whose answer was lost is recognised on its re-send: the same Location.
    assert not cpo.moved and len(set(cpo.acknowledged.values())) == CDRS

    # Recovery: once the cluster is back, the stale pooled connections fail at most a request each before the pools
    # reconnect (SQLAlchemy invalidates a pool whose connection died); afterwards everything is answered.
    late_fast = cpo.failures_started_between(back_after_fast, crash)
    late_crash = cpo.failures_started_between(back_after_crash, time.monotonic())
    stale_connections = WEB_WORKERS * WEB_THREADS
    assert len(late_fast) <= stale_connections, [answer.what for answer in late_fast]
    assert len(late_crash) <= stale_connections, [answer.what for answer in late_crash]
    print(
        f"{CDRS} CDRs, {len(first_pass_failures)} refused during the restarts and re-sent, "
        f"{len(late_fast)} / {len(late_crash)} failures after the cluster was back "
        f"(fast / immediate); first pass {first_pass_seconds:.1f} s"
    )
