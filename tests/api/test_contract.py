"""Contract tests: schemathesis reads the app's own OpenAPI document and calls every operation in-process, signed in
as a test driver who has cards, sessions, invoices and a payment method: never a 5xx, and every answer (status,
content type, headers, body) is one the document promises.

Each operation gets ``API_CONTRACT_EXAMPLES`` generated requests (a few in the suite; ``make fuzz`` may raise it),
and, when its path (or, for the estimate, its query) names an object, the same again with the driver's own objects,
so the answers that carry data are checked too and not only the 404s of random ids. Derandomized: the suite is the
same on every run.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from schemathesis import transport
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.accounts import api_tokens
from app.extensions import limiter
from app.finder.route import encode_polyline
from tests.api.data import build_history
from tests.api.helpers import SignedIn
from tests.payments.emulator import LocalStripe
from tests.roaming.remote_fixtures import live_session_and_stop

EXAMPLES = int(os.environ.get("API_CONTRACT_EXAMPLES", os.environ.get("FUZZ_EXAMPLES", "4")))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CONTRACT_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _own_ids(driver: SignedIn, history: Any) -> dict[str, int | str]:
    return {
        # The published location of the history, by its OCPI ids (GET /api/v1/locations/{country_code}/...).
        "country_code": "NL",
        "party_id": "TCP",
        "id": history.location.ocpi_id,
        "card_id": history.active_card.id,
        "session_id": history.sessions[0].cdr_id,
        "invoice_id": history.invoice.id,
        "device_id": driver.device.id,
        "command_id": live_session_and_stop(driver.account.id, history.active_card.id)[1].id,
    }


def test_every_operation_keeps_the_contract(
    app: Flask, client: FlaskClient, driver: SignedIn, localstripe: LocalStripe, stripe_app: Flask
) -> None:
    history = build_history(app, driver, localstripe=localstripe)
    schema = schemathesis.openapi.from_dict(client.get("/api/v1/openapi.json").get_json())
    own_ids = _own_ids(driver, history)
    own_queries = {
        "GET /api/v1/estimate": {"location": history.location.id, "evse_uid": "E1", "connector_id": "1"},
        "GET /api/v1/sessions": {"card": history.active_card.id, "month": "2026-10"},
        # The finder around the history's location (Utrecht), so that its answers carry a priced location.
        "GET /api/v1/locations/nearby": {"lat": 52.09, "lon": 5.11},
        "GET /api/v1/locations/along-route": {"polyline": encode_polyline([(52.08, 5.11), (52.10, 5.11)])},
        "GET /api/v1/geocode": {"q": "Utrecht"},
    }
    calls: dict[str, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25, [operation.label for operation in operations]

    def send(case: Any) -> None:
        # Every request is signed in on a fresh device (an earlier case may have signed its device out), and the
        # rate limits start afresh (each operation is tried many times in a row).
        with app.app_context():
            limiter.reset()
        token = api_tokens.sign_in_device(driver.user, "contract").access_token
        headers = {"Authorization": f"Bearer {token}"}
        # The request as schemathesis' in-process (WSGI) transport builds it, sent through the test client so it
        # runs in the test's transaction.
        response = client.open(**transport.get(app).serialize_case(case, headers=headers))
        calls[case.operation.label] = calls.get(case.operation.label, 0) + 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    for operation in operations:

        @CONTRACT_SETTINGS
        @given(case=operation.as_strategy())
        def generated(case: Any) -> None:
            send(case)

        generated()
        names = [parameter.name for parameter in operation.path_parameters]
        own_query = own_queries.get(operation.label)
        if names or own_query:
            strategy = operation.as_strategy(
                path_parameters={name: own_ids[name] for name in names} or None, query=own_query
            )

            @CONTRACT_SETTINGS
            @given(case=strategy)
            def with_own_objects(case: Any) -> None:
                send(case)

            with_own_objects()

    assert set(calls) == {operation.label for operation in operations}
