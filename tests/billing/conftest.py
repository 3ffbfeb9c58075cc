"""Billing test fixtures (also used by tests/webhooks). Payment tests run against a real localstripe emulator
(started once per session, see ``tests/payments/emulator.py``); they opt in with
``pytest.mark.usefixtures("stripe_app")``."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from flask import Flask

from app.billing.collection import collect
from app.billing.invoicing.snapshot import SAMPLE_SNAPSHOT
from app.billing.models import Invoice, InvoiceKind, InvoiceStatus, PaymentState
from app.extensions import db
from app.payments import services as payment_services
from tests.payments import stripe_js
from tests.payments.emulator import API_KEY, PUBLISHABLE_KEY, LocalStripe, localstripe, point_app_at, restore_app

__all__ = ["localstripe"]

WEBHOOK_SECRET = "whsec_test_billing"
DECLINED_ON_CHARGE = "4000000000000341"  # attaches fine, every charge is declined (Stripe and localstripe)
_numbers = itertools.count(900001)


@pytest.fixture
def stripe_app(app: Flask, localstripe: LocalStripe) -> Iterator[Flask]:
    """The session app pointed at the emulator, with a webhook secret, for one test."""
    previous = point_app_at(app, localstripe)
    previous_secret = app.config.get("STRIPE_WEBHOOK_SECRET")
    app.config["STRIPE_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    yield app
    app.config["STRIPE_WEBHOOK_SECRET"] = previous_secret
    restore_app(app, previous)


def finalized_invoice(
    account_id: int,
    total_minor: int = 1244,
    *,
    currency: str = "EUR",
    issue_date: dt.date = dt.date(2026, 11, 1),
    due_days: int = 14,
    kind: InvoiceKind = InvoiceKind.INVOICE,
    credits: Invoice | None = None,
    period: str | None = None,
) -> Invoice:
    """A finalized, numbered invoice as the monthly run stores it (made directly: the run is tested apart)."""
    sequence = next(_numbers)
    prefix = "CRN" if kind == InvoiceKind.CREDIT_NOTE else "INV"
    number = f"{prefix}-2026-{sequence:06d}"
    snapshot = copy.deepcopy(SAMPLE_SNAPSHOT)
    snapshot.update(
        number=number,
        kind=kind.value,
        currency=currency,
        issue_date=issue_date.isoformat(),
        due_date=(issue_date + dt.timedelta(days=due_days)).isoformat(),
    )
    snapshot["totals"] = {"subtotal": total_minor, "vat": 0, "total": total_minor}
    snapshot["payment"] = {**snapshot["payment"], "reference": number}
    if period is None:  # the month before the issue date, as the monthly run does
        supplied = issue_date.replace(day=1) - dt.timedelta(days=1)
        period = f"{supplied.year}-{supplied.month:02d}"
    invoice = Invoice(
        kind=kind,
        status=InvoiceStatus.FINALIZED,
        account_id=account_id,
        period=period,
        currency=currency,
        series=f"{prefix}-2026",
        number=number,
        sequence=sequence,
        issue_date=issue_date,
        due_date=issue_date + dt.timedelta(days=due_days),
        subtotal_minor=total_minor,
        vat_minor=0,
        total_minor=total_minor,
        snapshot=snapshot,
        credits_invoice_id=credits.id if credits else None,
        payment_state=PaymentState.OPEN if kind == InvoiceKind.INVOICE and total_minor > 0 else PaymentState.NOT_DUE,
        finalized_at=dt.datetime.combine(issue_date, dt.time(6), dt.UTC),
    )
    db.session.add(invoice)
    db.session.flush()
    return invoice


class WebhookCatcher:
    """A tiny HTTP server that localstripe delivers its signed webhooks to; tests replay them into the app
    byte for byte (body and ``Stripe-Signature`` exactly as localstripe sent them)."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []
        self._lock = threading.Lock()
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with catcher._lock:
                    catcher.received.append((body, self.headers.get("Stripe-Signature", "")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, event_type: str, intent_id: str) -> list[tuple[bytes, str]]:
        with self._lock:
            found = list(self.received)
        return [
            (body, signature)
            for body, signature in found
            if (event := json.loads(body))["type"] == event_type and event["data"]["object"].get("id") == intent_id
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def webhook_catcher(localstripe: LocalStripe) -> Iterator[WebhookCatcher]:
    catcher = WebhookCatcher()
    response = requests.post(
        f"{localstripe.url}/_config/webhooks/billing_tests",
        json={
            "url": catcher.url,
            "secret": WEBHOOK_SECRET,
            "events": ["payment_intent.succeeded", "payment_intent.payment_failed"],
        },
        timeout=10,
    )
    response.raise_for_status()
    yield catcher
    catcher.close()


def save_method(account, localstripe, data):  # type: ignore[no-untyped-def]
    """The driver's browser flow: SetupIntent confirmed with the card/IBAN at the emulator, then recorded."""
    info = payment_services.create_setup_intent(account, data["type"])
    confirmed = stripe_js.confirm_setup_intent(localstripe, info.client_secret, data)
    assert confirmed.status_code == 200
    if confirmed.json()["status"] == "requires_action":  # 3-D Secure card: the driver completes it
        requests.post(
            f"{localstripe.url}/v1/setup_intents/{info.id}/confirm",
            timeout=10,
            json={"key": PUBLISHABLE_KEY, "use_stripe_sdk": True, "client_secret": info.client_secret},
        ).raise_for_status()
    method = payment_services.record_setup_intent_result(account, info.id)
    db.session.commit()
    return method


def stripe_get(localstripe, path: str, **params: object) -> dict:  # type: ignore[no-untyped-def]
    response = requests.get(f"{localstripe.url}/v1/{path}", params=params, auth=(API_KEY, ""), timeout=10)
    response.raise_for_status()
    return response.json()


def intents_for(localstripe, number: str) -> list[dict]:  # type: ignore[no-untyped-def]
    found, after = [], None
    while True:
        page = stripe_get(localstripe, "payment_intents", limit=100, **({"starting_after": after} if after else {}))
        found += [intent for intent in page["data"] if intent["metadata"].get("invoice_number") == number]
        if not page.get("has_more") or not page["data"]:
            return found
        after = page["data"][-1]["id"]


def wait_for_intent(localstripe, intent_id: str, status: str, timeout: float = 10) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        intent = stripe_get(localstripe, f"payment_intents/{intent_id}")
        if intent["status"] == status or time.monotonic() > deadline:
            return intent
        time.sleep(0.1)


class _ProcessingIntents:
    """Real Stripe answers a confirmed SEPA PaymentIntent with ``processing`` (the bank settles days later);
    localstripe answers ``succeeded`` at once for a good IBAN (and sends payment_intent.succeeded a moment
    later). This passes every call through to the emulator and only shows a fresh SEPA intent as Stripe would."""

    def __init__(self, real):  # type: ignore[no-untyped-def]
        self._real = real

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self._real, name)

    def create(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        intent = self._real.create(*args, **kwargs)
        if kwargs["params"]["payment_method_types"] == ["sepa_debit"] and intent["status"] == "succeeded":
            intent["status"] = "processing"
        return intent


def sepa_answers_processing(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    real_client = collect.stripe_client

    class Client:
        def __init__(self) -> None:
            self._real = real_client()
            self.v1 = type("V1", (), {"__getattr__": lambda _, name: getattr(self._real.v1, name)})()
            self.v1.payment_intents = _ProcessingIntents(self._real.v1.payment_intents)

    monkeypatch.setattr(collect, "stripe_client", Client)  # where the PaymentIntent is created
