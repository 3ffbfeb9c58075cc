"""Fault: Stripe slow, then unreachable, during collection (issue 17, "Faults, as tests in the suite").

The Stripe emulator (localstripe, ``app/payments/emulator.py``) sits behind a small HTTP proxy of the test's own that
is switched between three states:

- ``slow``: the request goes through to Stripe, which executes it (the card is charged), but the answer is held
  back longer than the client waits (``STRIPE_READ_TIMEOUT_SECONDS``): the worst case, where we do not know that
  Stripe charged;
- ``down``: every connection is reset (RST) once the request is read: nothing reaches Stripe;
- ``up``: requests and answers pass.

The proxy records every request (state, method, path) and, for each that creates a PaymentIntent, its
``Idempotency-Key`` and whether Stripe answered it as a replay of an earlier request with that key
(``Idempotent-Replayed``).

Collection runs through its batches: the run's delivery (``runs.driver.deliver``: documents, email, first attempt)
for two invoices, the hourly dunning batch (``run_dunning``) for an invoice whose first attempt was declined, and
the resume job (``resume_collection``, every minute) that takes up attempts that met an outage. While Stripe is
slow and while it is down, the batches finish, report each failure, record it (when, why, the next try) and leave
every invoice finalized and unpaid. A try of an attempt that met an outage first looks for the PaymentIntent the
lost try made (the customer's PaymentIntents, by metadata), so once Stripe is up each invoice is recorded paid
with the PaymentIntent Stripe made while we timed out: one per invoice and attempt, never a second create.
The same outage with an amount changed meanwhile, keys Stripe forgot, and the resume job doing it all without
finance: ``test_stripe_outage_resume.py``.
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
import requests
import stripe
from flask import Flask
from sqlalchemy import select

from app.accounts.models import Role
from app.audit.services import Actor
from app.billing.collection import services as collection
from app.billing.collection.dunning_runner import run_dunning
from app.billing.collection.resume import ResumeReport, resume_collection
from app.billing.documents.delivery import undelivered_count
from app.billing.models import (
    CollectionOutage,
    Dunning,
    Invoice,
    InvoiceRun,
    InvoiceStatus,
    Payment,
    PaymentState,
    RunStatus,
)
from app.billing.runs import driver
from app.db import utcnow
from app.extensions import db
from app.payments.stripe_client import reset_stripe_client
from tests.billing.conftest import DECLINED_ON_CHARGE, finalized_invoice, intents_for, save_method
from tests.billing.sessions import rated_session
from tests.billing.test_runs import OCT, _driver
from tests.factories import login, make_user
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
        self.requests: list[tuple[str, str, str]] = []  # (state, method, path without the query)
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
                with proxy._lock:
                    proxy.requests.append((state, self.command, self.path.split("?")[0]))
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

    def seen(self, state: str, method: str | None = None, path: str | None = None) -> int:
        """How many requests came while the proxy was in ``state`` (of that method, to that path)."""
        with self._lock:
            return sum(
                1
                for seen_state, seen_method, seen_path in self.requests
                if seen_state == state and method in (None, seen_method) and path in (None, seen_path)
            )

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
    # Each test starts with a Stripe that knows no idempotency key yet (the emulator serves the whole module).
    requests.delete(f"{localstripe.url}/_config/idempotency_keys", timeout=10).raise_for_status()
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


def _collect(
    proxy: StripeProxy, run_id: int, resume_in: dt.timedelta | None = None
) -> tuple[driver.Delivery, dict[str, int], dict[str, int]]:
    """The batches of collection: the run's delivery (first attempts), the dunning batch (retries) and, when
    ``resume_in`` says when, the resume job (attempts that met an outage, once their next try is due)."""
    run = db.session.get_one(InvoiceRun, run_id)
    delivery = driver.deliver(run, Actor.system("finance-test"))
    dunning = run_dunning(DUNNING_DAY, commit=True)
    resumed = resume_collection(utcnow() + resume_in) if resume_in is not None else ResumeReport()
    db.session.expire_all()
    proxy.settle()
    return delivery, dunning.as_dict(), resumed.as_dict()


def _unpaid(*invoices: Invoice) -> bool:
    db.session.expire_all()
    return all(
        invoice.status == InvoiceStatus.FINALIZED
        and invoice.payment_state in (PaymentState.OPEN, PaymentState.FAILED)
        and invoice.paid_at is None
        for invoice in invoices
    )


def _outage(invoice: Invoice, attempt: int) -> CollectionOutage:
    outage = db.session.get(CollectionOutage, (invoice.id, attempt))
    assert outage is not None, (invoice.number, attempt)
    db.session.refresh(outage)
    return outage


def test_collection_survives_stripe_slow_and_down_and_charges_each_invoice_once(
    app, db_session, client, mailbox, localstripe, proxy, caplog
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
    attempt_of = {invoice.number: 2 if invoice is retried else 1 for invoice in every}
    login(client, make_user(Role.FINANCE))

    # Stripe slow: each charge reaches Stripe and succeeds there, but its answer comes too late, three times. Both
    # batches finish, count the failures, record them, and change nothing else.
    _switch(app, proxy, "slow")
    delivery, dunning, _ = _collect(proxy, run.id)
    assert delivery.payments == {"error": 2}
    assert dunning["errors"] == 1 and dunning["paid"] == dunning["failed"] == 0
    assert _unpaid(*every)  # we do not know yet that Stripe charged them
    assert undelivered_count(run.id) == 2  # the run page: "2 invoices are not sent yet"
    # The dunning retry was made (counted, in flight): the resume job ends it, the dunning batch does not retry.
    assert (db.session.get_one(Dunning, retried.id).stage, db.session.get_one(Dunning, retried.id).next_attempt_at) == (
        1,
        None,
    )
    assert db.session.scalars(select(Payment.attempt).where(Payment.invoice_id == retried.id)).all() == [1]
    assert not any(db.session.scalars(select(Payment.id).where(Payment.invoice_id.in_([i.id for i in invoices]))))
    unavailable = [record.getMessage() for record in caplog.records if "Stripe unavailable" in record.getMessage()]
    assert len(unavailable) == 3 and all(any(i.number in line for line in unavailable) for i in every)
    for invoice in every:
        slow = [c for c in proxy.creates_for(invoice.number) if c.state == "slow"]
        assert len(slow) == 3 and [c.replayed for c in slow] == [False, True, True]  # the client retried
        succeeded = [i for i in intents_for(localstripe, invoice.number) if i["status"] == "succeeded"]
        assert len(succeeded) == 1  # three requests, one charge: the idempotency key
        outage = _outage(invoice, attempt_of[invoice.number])
        assert outage.tries == 1 and outage.resolved_at is None and "did not answer in time" in outage.reason

    # Stripe down: finance presses "deliver" again, the resume job comes by; each try of those attempts first looks
    # for the PaymentIntent the lost try made, which fails too: nothing is created, nothing changes.
    _switch(app, proxy, "down")
    delivery, dunning, resumed = _collect(proxy, run.id, dt.timedelta(hours=2))
    assert delivery.payments == {"error": 2}
    assert dunning["retried"] == dunning["errors"] == 0
    assert resumed["waiting"] == 3 and resumed["paid"] == 0
    assert _unpaid(*every)
    assert proxy.seen("down", "POST", "/v1/payment_intents") == 0  # no charge tried while we cannot see Stripe
    assert proxy.seen("down", "GET", "/v1/payment_intents") == 5 * 3  # five look-ups, each tried three times
    for invoice in every:
        outage = _outage(invoice, attempt_of[invoice.number])
        assert outage.tries == (2 if invoice is retried else 3) and "Connection aborted" in outage.reason
    page = client.get(f"/backoffice/finance/runs/{run.id}").get_data(as_text=True)
    assert "2 invoices are waiting for the payment provider since" in page
    assert all(invoice.number in page for invoice in invoices) and "Connection aborted" in page

    # Stripe up: the same batches find the PaymentIntent each lost try made and record it, once; nothing new is
    # created at Stripe.
    created_before = proxy.seen("up", "POST", "/v1/payment_intents")  # the declined first attempt, before all this
    _switch(app, proxy, "up")
    delivery, dunning, resumed = _collect(proxy, run.id, dt.timedelta(hours=4))  # the next tries are due
    assert delivery.payments == {"paid": 2}
    assert dunning["retried"] == 0
    assert resumed["paid"] == 1 and resumed["finished"] == 3 and resumed["waiting"] == 0
    assert undelivered_count(run.id) == 0
    assert proxy.seen("up", "POST", "/v1/payment_intents") == created_before
    for invoice in every:
        db.session.refresh(invoice)
        assert invoice.status == InvoiceStatus.FINALIZED and invoice.payment_state == PaymentState.PAID
        attempt = attempt_of[invoice.number]
        key = f"emsp-invoice-{invoice.number}-attempt-{attempt}"
        tries = [c for c in proxy.creates_for(invoice.number) if c.attempt == str(attempt)]
        assert [c.state for c in tries] == ["slow"] * 3
        assert {c.key for c in tries} == {key}  # every try of the charge, over the outage, with one key
        charges = [i for i in intents_for(localstripe, invoice.number) if i["metadata"]["attempt"] == str(attempt)]
        assert len(charges) == 1 and charges[0]["status"] == "succeeded"  # one PaymentIntent for the charge
        assert charges[0]["amount"] == invoice.total_minor
        payments = db.session.scalars(
            select(Payment).where(Payment.invoice_id == invoice.id, Payment.status == "succeeded")
        ).all()
        assert [(p.attempt, p.stripe_id, p.amount_received_minor) for p in payments] == [
            (attempt, charges[0]["id"], invoice.total_minor)
        ]
        outage = _outage(invoice, attempt)
        assert outage.resolved_at is not None and outage.next_try_at is None
    assert len(intents_for(localstripe, retried.number)) == 2  # the declined first attempt and the paid retry
    assert "waiting for the payment provider" not in client.get(f"/backoffice/finance/runs/{run.id}").get_data(
        as_text=True
    )

    # Collecting again finds nothing to do and asks Stripe nothing.
    before = len(proxy.requests)
    delivery, dunning, resumed = _collect(proxy, run.id, dt.timedelta(days=2))
    assert delivery.invoices == 0 and dunning["retried"] == 0 and not any(resumed.values())
    assert len(proxy.requests) == before
