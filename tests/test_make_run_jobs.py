"""The periodic and queued jobs run under `make run` (issue 17): a Celery worker and beat on the embedded broker.

The worker and beat are started as the Makefile's ``run`` target starts them (same commands, a SQLite broker file
and an app database of their own in a temp folder). A web-like process (our app with the same broker) queues a
job, and the worker runs it; a card is blocked, and beat (a short test interval for the token push) has the
worker push it to the partner, with nobody asking for a push. Both stop cleanly on SIGTERM (Ctrl-C in
`make run` ends them the same way).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from app import create_app
from app.audit.services import Actor
from app.cards import services as card_services
from app.cards.models import BlockReason, Card, CardStatus
from app.config import ConfigError, _env_intervals
from app.db import utcnow
from app.extensions import celery, db
from app.jobs import check_beat_intervals, init_celery, purge_delivered_messages
from app.mail import send_rendered_mail
from app.roaming.models import Partner, PartnerStatus
from tests.roaming.conftest import fake_cpo  # noqa: F401  (fixture)
from tests.roaming.fake_cpo import FakeCpo
from tests.roaming.fake_cpo.receiver import TOKENS_PATH
from tests.roaming.token_fixtures import card_in

ROOT = Path(__file__).resolve().parents[1]
CELERY = str(Path(sys.executable).with_name("celery"))
# As the Makefile's `run` target starts them (checked below, so the two cannot drift apart).
WORKER_ARGS = ("--quiet", "-A", "app.worker", "worker", "--pool", "threads", "--concurrency", "4")
BEAT_ARGS = ("--quiet", "-A", "app.worker", "beat", "--schedule")
# Each wait: beat's default push interval (30 s) alone would not decide it, the test's interval (2 s) does. Generous:
# on a loaded CI machine a worker process takes many seconds to import the app before it takes its first job.
DEADLINE_SECONDS = 120


@pytest.fixture
def web_app(tmp_path: Path) -> Iterator[Flask]:
    """The web process of `make run`: our app on its SQLite file, queueing to the embedded broker (not inline)."""
    previous = celery.conf.get("flask_app")
    app = create_app(
        "test",
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'emsp.sqlite3'}",
        CELERY_BROKER_URL=f"sqla+sqlite:///{tmp_path / 'celery-broker.sqlite3'}",
        MAIL_OUTBOX_DIR=str(tmp_path / "web-outbox"),
    )
    with app.app_context():
        upgrade()
        db.engine.dispose()
    yield app
    with app.app_context():
        db.engine.dispose()
    if previous is not None:
        init_celery(previous)  # later tests queue inline again, as their app says


class Jobs:
    """The worker and beat processes of `make run`, started by the test with the web app's database and broker."""

    def __init__(self, app: Flask, folder: Path) -> None:
        self.folder = folder
        self.env = {
            **os.environ,
            "APP_ENV": "development",
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "CELERY_BROKER_URL": app.config["CELERY_BROKER_URL"],
            "CELERY_BEAT_INTERVALS": "roaming-push-tokens=2",  # `make run` passes RUN_TOKEN_PUSH_SECONDS (5)
            "MAIL_OUTBOX_DIR": str(folder / "worker-outbox"),
            "MAIL_SERVER": "",
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: tuple[str, ...]) -> None:
        with (self.folder / f"{name}.log").open("wb") as log:
            command = [CELERY, *args, "--loglevel", "INFO"]
            self.processes.append(subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log))

    def wait_for(self, what: str, found: Callable[[], Any], seen: Callable[[], Any] = lambda: None) -> Any:
        """Poll ``found`` until it is truthy; on time-out, fail saying ``what`` and what ``seen`` shows."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            result = found()
            if result:
                return result
            for process in self.processes:
                assert process.poll() is None, f"{' '.join(process.args[1:5])} stopped early with {process.returncode}"
            time.sleep(0.2)
        pytest.fail(f"not seen within {DEADLINE_SECONDS} s: {what}; seen: {seen()}")

    def stop(self) -> list[int]:
        """SIGTERM, what `make run`'s trap sends them on Ctrl-C; their exit codes."""
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        return [process.wait(timeout=DEADLINE_SECONDS) for process in self.processes]

    def kill_leftovers(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        for log in sorted(self.folder.glob("*.log")):  # shown by pytest when the test failed
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def jobs(web_app: Flask, tmp_path: Path) -> Iterator[Jobs]:
    started = Jobs(web_app, tmp_path)
    try:
        yield started
    finally:
        started.kill_leftovers()


def _connect_partner(cpo: FakeCpo) -> None:
    """A CPO registered with us whose Tokens Receiver is the fake CPO."""
    partner = Partner(
        name="Demo CPO",
        country_code="NL",
        party_id="TCP",
        status=PartnerStatus.REGISTERED,
        outgoing_token="our-token-for-them",
        registered_at=utcnow() - dt.timedelta(minutes=5),
        version="2.2.1",
        endpoints=[{"identifier": "tokens", "role": "RECEIVER", "url": cpo.url(TOKENS_PATH)}],
    )
    db.session.add(partner)
    cpo.accepted_tokens.add("our-token-for-them")


def _broker_rows(app: Flask) -> dict[int, bool]:
    """The embedded broker's messages: id → still waiting for a worker (kombu's ``visible``)."""
    engine = sa.create_engine(app.config["CELERY_BROKER_URL"].removeprefix("sqla+"))
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT id, visible FROM kombu_message"))
            return {row.id: bool(row.visible) for row in rows}
    except sa.exc.OperationalError:
        return {}  # kombu creates its tables on first use: none yet means no message yet
    finally:
        engine.dispose()


def test_the_worker_runs_queued_jobs_and_beat_pushes_a_blocked_card(web_app, jobs, fake_cpo, tmp_path):  # noqa: F811
    assert celery.conf.task_always_eager is False  # the web process queues; it does not run jobs inline
    jobs.start("worker", WORKER_ARGS)
    with web_app.app_context():
        # Queued by the web process, run by the worker: the mail lands in the worker's outbox, not in ours.
        send_rendered_mail.delay("driver@example.com", "Queued", "Sent by the worker.")
        mails = jobs.wait_for("the mail sent by the worker", lambda: list((tmp_path / "worker-outbox").glob("*.eml")))
        assert "Sent by the worker." in mails[0].read_text()
        assert not (tmp_path / "web-outbox").exists()

        _connect_partner(fake_cpo)
        card = card_in(CardStatus.ACTIVE)  # shipped, then activated: two token updates
        db.session.commit()
        card_id, uid = card.id, card.uid

    def pushed_states() -> list[bool]:
        return [entry["body"]["valid"] for entry in fake_cpo.state.get("tokens", []) if entry["uid"] == uid]

    # Beat starts once the worker takes jobs (as in `make run`, where it starts beside it); nobody asks for a push.
    jobs.start("beat", (*BEAT_ARGS, str(tmp_path / "celerybeat-schedule")))
    jobs.wait_for("the active card pushed by beat's token push", lambda: pushed_states()[-1:] == [True], pushed_states)
    before_block = len(pushed_states())
    with web_app.app_context():  # the card is blocked, as the portal's "block" does
        card_services.block_card(db.session.get_one(Card, card_id), BlockReason.LOST, Actor.system("driver"))
        db.session.commit()
    jobs.wait_for(
        "the blocked card pushed by the next token push",
        lambda: len(pushed_states()) > before_block and pushed_states()[-1] is False,
        pushed_states,
    )
    assert jobs.stop() == [0, 0]


def test_delivered_messages_are_purged_from_the_embedded_broker_and_waiting_ones_kept(web_app, jobs):
    jobs.start("worker", WORKER_ARGS)
    with web_app.app_context():
        send_rendered_mail.delay("driver@example.com", "Queued", "Delivered, then purged.")
        waiting = celery.send_task("mail.send_rendered", args=["x@example.com", "s", "t"], queue="nobody-listens")
    jobs.wait_for("the worker taking the message", lambda: False in _broker_rows(web_app).values())
    assert jobs.stop() == [0]
    engine = sa.create_engine(web_app.config["CELERY_BROKER_URL"].removeprefix("sqla+"))
    with engine.begin() as connection:  # delivered two hours ago (kombu stamps the delivery in local time)
        connection.execute(
            sa.text("UPDATE kombu_message SET timestamp = :then WHERE visible = 0"),
            {"then": dt.datetime.now() - dt.timedelta(hours=2)},
        )
    engine.dispose()
    before = _broker_rows(web_app)
    with web_app.app_context():
        assert purge_delivered_messages() == list(before.values()).count(False) == 1
    after = _broker_rows(web_app)
    assert list(after.values()) == [True] and waiting.id  # the message no worker took yet is kept


def test_the_makefile_starts_worker_and_beat_as_this_test_does():
    run_target = (ROOT / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert f"$(BIN)/celery {' '.join(WORKER_ARGS)}" in run_target
    assert f"$(BIN)/celery {' '.join(BEAT_ARGS)} $(BEAT_SCHEDULE_FILE)" in run_target
    assert "roaming-push-tokens=$(RUN_TOKEN_PUSH_SECONDS)" in run_target


def test_an_unknown_beat_interval_is_refused(web_app):
    celery.conf.emsp_beat_intervals = {"roaming-push-token": 5.0}  # a typo: the entry is roaming-push-tokens
    with pytest.raises(ConfigError, match=r"roaming-push-token \(known: .*roaming-push-tokens"):
        check_beat_intervals()  # what app.worker runs at the start of the worker and of beat


def test_beat_intervals_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("CELERY_BEAT_INTERVALS", " roaming-push-tokens=5, roaming-expire-commands=0.5 ,")
    assert _env_intervals("CELERY_BEAT_INTERVALS") == {"roaming-push-tokens": 5.0, "roaming-expire-commands": 0.5}
    for wrong in ("roaming-push-tokens", "roaming-push-tokens=0", "=5", "roaming-push-tokens=soon", "x=nan"):
        monkeypatch.setenv("CELERY_BEAT_INTERVALS", wrong)
        with pytest.raises(ConfigError, match="entry=seconds"):
            _env_intervals("CELERY_BEAT_INTERVALS")


def test_links_follow_the_port_of_make_run():
    """`make run PORT=5001` hands FLASK_RUN_PORT to the web process and the worker: the links they build follow."""
    probe = "from app.config import DevelopmentConfig; print(DevelopmentConfig.PUBLIC_BASE_URL)"
    env = {key: value for key, value in os.environ.items() if key not in ("PUBLIC_BASE_URL", "PORTAL_BASE_URL")}
    env.pop("SERVER_NAME", None)
    for port, expected in (("5001", "http://127.0.0.1:5001"), ("", "http://127.0.0.1:5000")):
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, env={**env, "FLASK_RUN_PORT": port}, capture_output=True, text=True
        )
        assert done.stdout.strip() == expected, done.stderr
