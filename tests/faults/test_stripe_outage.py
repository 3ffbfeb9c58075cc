"""Fault: Stripe unreachable, then slow, during collection (issue 17, "Faults, as tests in the suite").

The Stripe emulator (localstripe, ``app/payments/emulator.py``) sits behind a small HTTP proxy of the test's own that
is switched between three states:

- ``down``: every connection is reset (RST) once the request is read: nothing reaches Stripe;
- ``slow``: the request goes through to Stripe, which executes it (the card is charged), but the answer is held
  back longer than the client waits (``STRIPE_READ_TIMEOUT_SECONDS``): the worst case, where we do not know that
  Stripe charged;
- ``up``: requests and answers pass.

The proxy records every request that creates a PaymentIntent with its ``Idempotency-Key``, and whether Stripe
answered it as a replay of an earlier request with that key (``Idempotent-Replayed``).

Collection runs through its two batches: the run's delivery (``runs.driver.deliver``: documents, email, first
attempt) for two invoices, and the hourly dunning batch (``run_dunning``) for an invoice whose first attempt was
declined. While Stripe is down and while it is slow, the batches finish, report each failure and leave every
invoice finalized and unpaid; once it is up, running them again collects each invoice exactly once: the retried
charge carries the same key as every try before it, so the PaymentIntent Stripe made while we timed out is the
one we record, and Stripe holds one PaymentIntent per invoice and attempt.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import logging
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import stripe
from flask import Flask
from sqlalchemy import select

from app.audit.services import Actor
from app.billing.collection import services as collection
from app.billing.collection.dunning_runner import run_dunning
from app.billing.documents.delivery import undelivered_count
from app.billing.models import Dunning, Invoice, InvoiceRun, InvoiceStatus, Payment, PaymentState, RunStatus
from app.billing.runs import driver
from app.extensions import db
from app.payments.stripe_client import reset_stripe_client
from tests.billing.conftest import DECLINED_ON_CHARGE, finalized_invoice, intents_for, save_method
from tests.billing.sessions import rated_session
from tests.billing.test_runs import OCT, _driver
from tests.payments import stripe_js
from tests.payments.emulator import RUNNER, START_TIMEOUT_SECONDS, LocalStripe, point_app_at, restore_app

READ_TIMEOUT = 0.3  # seconds the client waits for Stripe's answer while the proxy is slow
SLOW_BY = 1.5  # seconds the slow proxy holds an answer back: well beyond the client's patience
DUNNING_DAY = dt.datetime(2026, 11, 20, 7, tzinfo=dt.UTC)  # the declined invoice's first retry is due by then


@dataclass
class Create:
    """A request to create a PaymentIntent, as the proxy saw it."""

    state: str  # the proxy's state when it came
    key: str | None  # its Idempotency-Key
    invoice: str | None  # metadata[invoice_number]
    attempt: str | None  # metadata[attempt]
    replayed: bool = False  # Stripe answered with the result of an earlier request with the same key


class StripeProxy:
    """An HTTP proxy in front of the emulator that the test switches between ``up``, ``down`` and ``slow``."""

    def __init__(self, upstream: str) -> None:
        self.state = "up"
        self.creates: list[Create] = []
        self._lock = threading.Lock()
        self._forwarding = threading.Condition()
        self._pending = 0  # requests passed on to Stripe whose answer has not come back yet
        target = urlparse(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the Stripe client's connection pool expects

            def do_GET(self) -> None:
                self._relay()

            def do_POST(self) -> None:
                self._relay()

            def do_DELETE(self) -> None:
                self._relay()

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                state = proxy.state
                create = None
                if self.command == "POST" and self.path.split("?")[0] == "/v1/payment_intents":
                    form = parse_qs(body.decode())
                    create = Create(
                        state,
                        self.headers.get("Idempotency-Key"),
                        (form.get("metadata[invoice_number]") or [None])[0],
                        (form.get("metadata[attempt]") or [None])[0],
                    )
                    with proxy._lock:
                        proxy.creates.append(create)
                if state == "down":
                    # Reset the connection: the client sees ECONNRESET, Stripe sees nothing.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                with proxy._forwarding:  # Stripe's answer is awaited even when the client has given up
                    proxy._pending += 1
                try:
                    upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                    headers = {name: value for name, value in self.headers.items() if name.lower() != "host"}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    payload = answer.read()
                    upstream.close()
                    if create is not None:
                        create.replayed = answer.getheader("Idempotent-Replayed") == "true"
                finally:
                    with proxy._forwarding:
                        proxy._pending -= 1
                        proxy._forwarding.notify_all()
                if state == "slow":
                    time.sleep(SLOW_BY)  # Stripe did it; the client has given up by now
                try:
                    self.send_response(answer.status)
                    for name, value in answer.getheaders():
                        if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    self.close_connection = True  # the client has gone

            def finish(self) -> None:
                with contextlib.suppress(OSError, ValueError):  # reset on purpose, or the client went away
                    super().finish()

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a reset or abandoned connection is what this proxy is for

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def settle(self) -> None:
        """Wait until Stripe has answered every request passed on (a client that timed out does not wait)."""
        with self._forwarding:
            assert self._forwarding.wait_for(lambda: self._pending == 0, timeout=30), "Stripe never answered"

    def creates_for(self, invoice: str) -> list[Create]:
        with self._lock:
            return [create for create in self.creates if create.invoice == invoice]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    """An emulator of this module's own that keeps Stripe's idempotent requests (``--idempotent``): the suite's
    shared one does not, since its store outlives every test's rolled-back database (app/payments/emulator.py)."""
    port = _free_port()
    emulator = LocalStripe(f"http://127.0.0.1:{port}")
    log_path = tmp_path_factory.mktemp("idempotent-stripe") / "localstripe.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(RUNNER), str(port), "--idempotent"], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
                time.sleep(0.1)
        yield emulator
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def proxy(app: Flask, localstripe: LocalStripe, monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeProxy]:
    """The session app's Stripe settings pointed at the proxy in front of the emulator, for one test."""
    # The Stripe client backs off at least 0.5 s before each of its retries (1.25 s per failed call): the same
    # retries, paced faster, keep the test short.
    monkeypatch.setattr(stripe._http_client.HTTPClient, "INITIAL_DELAY", 0.05)
    started = StripeProxy(localstripe.url)
    previous = point_app_at(app, localstripe)
    previous_timeout = app.config.get("STRIPE_READ_TIMEOUT_SECONDS")
    app.config["STRIPE_API_BASE"] = started.url
    reset_stripe_client(app)
    try:
        yield started
    finally:
        app.config["STRIPE_READ_TIMEOUT_SECONDS"] = previous_timeout
        restore_app(app, previous)
        reset_stripe_client(app)
        started.close()


def _switch(app: Flask, proxy: StripeProxy, state: str) -> None:
    proxy.state = state
    # The client waits briefly while Stripe is slow (the suite stays fast), as long as in production otherwise.
    app.config["STRIPE_READ_TIMEOUT_SECONDS"] = READ_TIMEOUT if state == "slow" else None


def _collect(proxy: StripeProxy, run_id: int) -> tuple[driver.Delivery, dict[str, int]]:
    """The two batches of collection: the run's delivery (first attempts) and the dunning batch (retries)."""
    run = db.session.get_one(InvoiceRun, run_id)
    delivery = driver.deliver(run, Actor.system("finance-test"))
    dunning = run_dunning(DUNNING_DAY, commit=True)
    db.session.expire_all()
    proxy.settle()
    return delivery, dunning.as_dict()


def _unpaid(*invoices: Invoice) -> bool:
    db.session.expire_all()
    return all(
        invoice.status == InvoiceStatus.FINALIZED
        and invoice.payment_state in (PaymentState.OPEN, PaymentState.FAILED)
        and invoice.paid_at is None
        for invoice in invoices
    )


def test_collection_survives_stripe_down_and_slow_and_charges_each_invoice_once(
    app, db_session, mailbox, localstripe, proxy, caplog
):
    caplog.set_level(logging.WARNING, logger="app.billing.collection")
    # Two drivers with a good card and a session in October: the run's invoices. A third whose card was declined
    # in November: dunning retries it, now that a good card replaced it.
    payers = []
    for _ in range(2):
        account, token = _driver()
        save_method(account, localstripe, stripe_js.card())
        rated_session(account.id, token.id, OCT)
        payers.append(account)
    late, _token = _driver()
    save_method(late, localstripe, stripe_js.card(DECLINED_ON_CHARGE))
    retried = finalized_invoice(late.id, 1850)
    first = collection.collect_invoice(retried, attempt=1, now=dt.datetime(2026, 11, 1, 7, tzinfo=dt.UTC))
    assert first.outcome == collection.Outcome.FAILED
    db.session.commit()
    save_method(late, localstripe, stripe_js.card())
    actor = Actor.system("finance-test")
    run = driver.approve(driver.preview("2026-10", actor), actor)
    run = driver.finalize(run, actor, then_deliver=False)
    assert run.status == RunStatus.FINALIZED
    invoices = list(db.session.scalars(select(Invoice).where(Invoice.run_id == run.id).order_by(Invoice.id)))
    assert sorted(invoice.account_id for invoice in invoices) == sorted(account.id for account in payers)
    every = [*invoices, retried]

    # Stripe down: both batches finish, count the failures, and change nothing.
    _switch(app, proxy, "down")
    delivery, dunning = _collect(proxy, run.id)
    assert delivery.payments == {"error": 2}
    assert dunning["errors"] == 1 and dunning["paid"] == dunning["failed"] == 0
    assert _unpaid(*every)
    assert undelivered_count(run.id) == 2  # the run page: "2 invoices are not sent yet"
    assert db.session.get_one(Dunning, retried.id).next_attempt_at <= DUNNING_DAY  # still due, not moved on
    assert db.session.get_one(Dunning, retried.id).stage == 0
    assert db.session.scalars(select(Payment.attempt).where(Payment.invoice_id == retried.id)).all() == [1]
    assert not any(db.session.scalars(select(Payment.id).where(Payment.invoice_id.in_([i.id for i in invoices]))))
    unavailable = [record.getMessage() for record in caplog.records if "Stripe unavailable" in record.getMessage()]
    assert len(unavailable) == 3 and all(any(i.number in line for line in unavailable) for i in every)
    for invoice in every:
        assert len([c for c in proxy.creates_for(invoice.number) if c.state == "down"]) == 3  # the client retried
        reached = [i["metadata"]["attempt"] for i in intents_for(localstripe, invoice.number)]
        assert reached == (["1"] if invoice is retried else [])  # nothing reached Stripe

    # Stripe slow: each charge reaches Stripe and succeeds there, but its answer comes too late, three times.
    _switch(app, proxy, "slow")
    delivery, dunning = _collect(proxy, run.id)
    assert delivery.payments == {"error": 2}
    assert dunning["errors"] == 1 and dunning["paid"] == 0
    assert _unpaid(*every)  # we do not know yet that Stripe charged them
    assert undelivered_count(run.id) == 2
    assert db.session.get_one(Dunning, retried.id).stage == 0
    for invoice in every:
        slow = [c for c in proxy.creates_for(invoice.number) if c.state == "slow"]
        assert len(slow) == 3 and [c.replayed for c in slow] == [False, True, True]
        succeeded = [i for i in intents_for(localstripe, invoice.number) if i["status"] == "succeeded"]
        assert len(succeeded) == 1  # three requests, one charge: the idempotency key

    # Stripe up: the same batches collect every invoice, once.
    _switch(app, proxy, "up")
    delivery, dunning = _collect(proxy, run.id)
    assert delivery.payments == {"paid": 2}
    assert dunning["paid"] == 1 and dunning["errors"] == 0
    assert undelivered_count(run.id) == 0
    for invoice in every:
        db.session.refresh(invoice)
        assert invoice.status == InvoiceStatus.FINALIZED and invoice.payment_state == PaymentState.PAID
        attempt = 2 if invoice is retried else 1
        key = f"emsp-invoice-{invoice.number}-attempt-{attempt}"
        tries = [c for c in proxy.creates_for(invoice.number) if c.attempt == str(attempt)]
        assert [c.state for c in tries] == ["down"] * 3 + ["slow"] * 3 + ["up"]
        assert {c.key for c in tries} == {key}  # every try of the charge, over the outage, with one key
        assert tries[-1].replayed  # Stripe answered with the PaymentIntent it made while we timed out
        charges = [i for i in intents_for(localstripe, invoice.number) if i["metadata"]["attempt"] == str(attempt)]
        assert len(charges) == 1 and charges[0]["status"] == "succeeded"  # one PaymentIntent for the charge
        assert charges[0]["amount"] == invoice.total_minor
        payments = db.session.scalars(
            select(Payment).where(Payment.invoice_id == invoice.id, Payment.status == "succeeded")
        ).all()
        assert [(p.attempt, p.stripe_id, p.amount_received_minor) for p in payments] == [
            (attempt, charges[0]["id"], invoice.total_minor)
        ]
    assert len(intents_for(localstripe, retried.number)) == 2  # the declined first attempt and the paid retry

    # Collecting again finds nothing to do and asks Stripe nothing.
    before = len(proxy.creates)
    delivery, dunning = _collect(proxy, run.id)
    assert delivery.invoices == 0 and dunning["retried"] == 0 and len(proxy.creates) == before
