"""The web tier is stateless, so it scales out (issue 17, docs/deploy.md): two web processes (gunicorn) and two
Celery workers against one database and one Redis, as two machines behind a load balancer would run.

- A driver signed in on one web process is signed in on the other (the session is a signed cookie; the
  remember-me and device tokens live in the database).
- A rate limit counts across both processes (Flask-Limiter's storage is Redis), so a password guesser gains
  nothing by spreading attempts over the machines.
- Jobs queued by either web process are run by the workers, whichever takes them (Redis as the broker), and
  each job runs once.

On PostgreSQL the processes share a scratch database of their own (the suite's test database is held by the
test session's connection); on SQLite a file. Needs Redis: ``CELERY_BROKER_URL`` (CI sets it), else the local
default if it answers.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from flask_migrate import upgrade

from app import create_app
from app.accounts import services as accounts
from app.accounts.models import Role
from app.extensions import db
from app.plans.services import seed_default_plans
from tests.helpers import listens

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CONFIGURED = os.environ.get("CELERY_BROKER_URL")
REDIS = CONFIGURED if CONFIGURED and CONFIGURED.startswith("redis") else "redis://127.0.0.1:6379/0"
PASSWORD = "two-machines-pass-1"
# Rate limits are counted in the shared Redis per address typed: an address of its own per run, so two runs (SQLite
# then PostgreSQL, or a re-run within the minute) never share a limit.
EMAIL = f"lotte-{uuid.uuid4().hex[:8]}@example.com"
ATTEMPTS_PER_MINUTE = 4  # the per-account login limit the processes run with
DEADLINE_SECONDS = 120  # generous: a loaded machine takes many seconds to boot a worker and answer its first page


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def shared_database(tmp_path: Path) -> Iterator[str]:
    """A database of the processes' own, migrated, holding one confirmed driver."""
    test_url = os.environ.get("TEST_DATABASE_URL") or ""
    if test_url.startswith("postgresql"):
        name = f"emsp_processes_{uuid.uuid4().hex[:8]}"
        admin = test_url.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://") + "/postgres"
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        url = test_url.rsplit("/", 1)[0] + "/" + name
    else:
        admin, name = "", ""
        url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    app = create_app("test", SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        upgrade()
        seed_default_plans()
        profile = accounts.DriverProfile("Lotte Janssens", "Kouter 1", "9000", "Gent", "BE", "nl")
        accounts.create_user(EMAIL, PASSWORD, Role.DRIVER, profile=profile, actor_label="test")
        db.session.commit()
        db.engine.dispose()
    yield url
    if admin:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


class Machines:
    """Two web processes and two workers, started with one database, one Redis and one queue of their own."""

    def __init__(self, database: str, folder: Path) -> None:
        self.folder = folder
        self.queue = f"test-{uuid.uuid4().hex[:8]}"  # never mixed with another test's or run's jobs
        self.env = {
            **os.environ,
            "APP_ENV": "development",
            "DATABASE_URL": database,
            "SECRET_KEY": "one-secret-for-every-web-process-of-the-tier",
            "CELERY_BROKER_URL": REDIS,
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "RATELIMIT_STORAGE_URI": REDIS,
            "LOGIN_ACCOUNT_RATE_LIMIT": f"{ATTEMPTS_PER_MINUTE} per minute",
            "LOGIN_RATE_LIMIT": "100 per minute",
            "RESET_RATE_LIMIT": "100 per minute",
            "MAIL_OUTBOX_DIR": str(folder / "outbox"),
            "MAIL_SERVER": "",
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        self.web_urls: list[str] = []

    def _start(self, name: str, command: list[str]) -> None:
        with (self.folder / f"{name}.log").open("wb") as log:
            self.processes.append(subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log))

    def start(self) -> None:
        for number in (1, 2):
            port = _free_port()
            self._start(
                f"web{number}",
                [str(BIN / "gunicorn"), "--workers", "1", "--threads", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
            )
            self.web_urls.append(f"http://127.0.0.1:{port}")
            self._start(
                f"worker{number}",
                [str(BIN / "celery"), "-A", "app.worker", "worker", "--pool", "threads", "--concurrency", "2",
                 "--queues", self.queue, "--hostname", f"worker{number}@%h", "--loglevel", "INFO"],
            )  # fmt: skip
        for url in self.web_urls:
            self.wait_for(f"{url} answering", lambda url=url: self._answers(url))

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            return requests.get(f"{url}/login", timeout=30).status_code == 200
        except requests.RequestException:  # not listening yet, or still loading the app
            return False

    def wait_for(self, what: str, found: object) -> object:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            result = found()  # type: ignore[operator]
            if result:
                return result
            for process in self.processes:
                assert process.poll() is None, f"{' '.join(process.args[:4])} stopped with {process.returncode}"
            time.sleep(0.2)
        pytest.fail(f"not seen within {DEADLINE_SECONDS} s: {what}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for log in sorted(self.folder.glob("*.log")):  # shown by pytest when the test failed
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}")


@pytest.fixture
def machines(shared_database: str, tmp_path: Path) -> Iterator[Machines]:
    if not CONFIGURED and not listens(REDIS):
        pytest.skip("no CELERY_BROKER_URL and no local Redis")  # CI always has Redis: there this runs
    assert listens(REDIS), f"Redis at {REDIS} does not answer"
    started = Machines(shared_database, tmp_path)
    try:
        started.start()
        yield started
    finally:
        started.stop()


def _csrf(browser: requests.Session, url: str) -> str:
    page = browser.get(url, timeout=10).text
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"', page
    )
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def _log_in(browser: requests.Session, web: str, password: str) -> requests.Response:
    token = _csrf(browser, f"{web}/login")
    return browser.post(
        f"{web}/login",
        data={"csrf_token": token, "email": EMAIL, "password": password},
        allow_redirects=False,
        timeout=10,
    )


def test_two_web_processes_and_two_workers_share_sessions_limits_and_jobs(machines: Machines) -> None:
    first, second = machines.web_urls

    # Signed in on the first web process, the driver's cookie is good on the second.
    browser = requests.Session()
    assert _log_in(browser, first, PASSWORD).status_code == 302
    dashboard = browser.get(f"{second}/dashboard", allow_redirects=False, timeout=10)
    assert dashboard.status_code == 200 and "Lotte Janssens" in dashboard.text

    # Wrong passwords spread over both processes count against one limit (the sign-in above counted too).
    guesser = requests.Session()
    answers = [
        _log_in(guesser, (first, second)[attempt % 2], "wrong-password-0").status_code
        for attempt in range(ATTEMPTS_PER_MINUTE + 1)
    ]
    assert answers == [200] * (ATTEMPTS_PER_MINUTE - 1) + [429, 429], answers

    # A password reset asked on either process is mailed by a worker, once each.
    for web in (first, second):
        asker = requests.Session()
        token = _csrf(asker, f"{web}/password/reset")
        sent = asker.post(f"{web}/password/reset", data={"csrf_token": token, "email": EMAIL}, timeout=10)
        assert sent.status_code == 200
    outbox = machines.folder / "outbox"
    mails = machines.wait_for("two reset mails", lambda: len(list(outbox.glob("*.eml"))) >= 2 and outbox.glob("*.eml"))
    time.sleep(1)  # a job run twice would write a third mail by now
    assert len(list(outbox.glob("*.eml"))) == 2 and mails
    taken = [log.read_text(errors="replace").count("succeeded") for log in sorted(machines.folder.glob("worker*.log"))]
    assert sum(taken) >= 2, taken
