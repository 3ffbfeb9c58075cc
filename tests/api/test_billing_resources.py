"""Sessions, invoices, balance and the estimate through the API: the same figures as billing and rating give the
portal, in minor units."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask import Flask
from flask.testing import FlaskClient

from app.billing import session_history
from app.extensions import db
from app.money import to_minor_units
from app.rating.estimates import estimate_for_connector
from tests.api.data import build_history
from tests.api.helpers import SignedIn, call, problem
from tests.billing.conftest import save_method
from tests.billing.sessions import rated_session
from tests.payments import stripe_js
from tests.payments.emulator import LocalStripe


def test_sessions_match_the_portals_history_and_filter_by_month_and_card(
    app: Flask, client: FlaskClient, driver: SignedIn
) -> None:
    history = build_history(app, driver)
    items = call(client, "GET", "/api/v1/sessions", driver).get_json()["items"]
    portal = session_history.session_page(driver.account.id, session_history.SessionFilters(), 1).sessions
    assert [item["started_at"] for item in items] == [line.start.isoformat() for line in portal]
    for item, line in zip(items, portal, strict=True):
        assert item["total"] == {"amount_minor": to_minor_units(line.total, "EUR"), "currency": "EUR"}
        assert item["operator_price"]["amount_minor"] == to_minor_units(line.cpo_price, "EUR")
        assert item["state"] == line.state and item["invoice_number"] == line.invoice
        assert Decimal(item["kwh"]) == line.kwh
    assert {item["state"] for item in items} == {"invoiced", "to_invoice"}  # October was invoiced, November not

    october = call(client, "GET", "/api/v1/sessions?month=2026-10", driver).get_json()["items"]
    assert len(october) == 3 and all(item["started_at"].startswith("2026-10") for item in october)
    by_app = call(client, "GET", f"/api/v1/sessions?card={history.app_token.id}", driver).get_json()["items"]
    assert [item["card_id"] for item in by_app] == [history.app_token.id]
    problem(call(client, "GET", "/api/v1/sessions?month=2026-13", driver), 422, "validation_failed")
    problem(call(client, "GET", "/api/v1/sessions?month=0000-01", driver), 422, "validation_failed")


def test_one_session_with_its_price_breakdown(app: Flask, client: FlaskClient, driver: SignedIn) -> None:
    history = build_history(app, driver, with_location=False)
    charge = history.sessions[0]
    detail = call(client, "GET", f"/api/v1/sessions/{charge.cdr_id}", driver).get_json()
    breakdown = detail["breakdown"]
    assert breakdown["tariff_source"] == "cdr_tariffs" and breakdown["plan_code"] == "payg"
    operator = breakdown["operator"]
    assert operator["energy_kwh"] == "13.0000"  # the 3rd: 10 + 3 kWh at 0.30 and a 0.50 start
    assert operator["energy"]["amount_minor"] == 390 and operator["fixed"]["amount_minor"] == 50
    assert breakdown["operator_total"]["amount_minor"] == 440
    assert breakdown["markup_per_kwh"]["amount_minor"] == 65 and breakdown["session_fee"]["amount_minor"] == 35
    assert breakdown["total_excl_vat"]["amount_minor"] == 540 and breakdown["vat_rate"] == "21.000"
    assert breakdown["total_incl_vat"]["amount_minor"] == to_minor_units(charge.driver_incl_vat, "EUR") == 653
    assert detail["total"] == breakdown["total_incl_vat"] and detail["state"] == "invoiced"


def test_the_session_cursor_pages_without_doubles_when_a_session_arrives(client: FlaskClient, driver: SignedIn) -> None:
    from app.audit.services import Actor
    from app.cards import services as card_services
    from app.plans import services as plan_services

    for stretch in plan_services.history(driver.account.id):
        stretch.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    card = card_services.issue_app_token(driver.account, Actor.of(driver.user))
    start = dt.datetime(2026, 10, 1, 8, tzinfo=dt.UTC)
    for day in range(5):
        rated_session(driver.account.id, card.id, start + dt.timedelta(days=day))
    first = call(client, "GET", "/api/v1/sessions?limit=2", driver).get_json()
    rated_session(driver.account.id, card.id, start + dt.timedelta(days=20))  # newer than everything shown
    seen = [item["started_at"] for item in first["items"]]
    cursor = first["next"]
    while cursor:
        page = call(client, "GET", "/api/v1/sessions", driver, query_string={"limit": 2, "cursor": cursor}).get_json()
        seen += [item["started_at"] for item in page["items"]]
        cursor = page["next"]
    expected = [(start + dt.timedelta(days=day)).isoformat() for day in reversed(range(5))]
    assert seen == expected  # every session once, newest first; the new one waits for the next refresh
    tampered = first["next"][:-2] + ("AA" if not first["next"].endswith("AA") else "BB")
    problem(call(client, "GET", "/api/v1/sessions", driver, query_string={"cursor": tampered}), 400, "invalid_cursor")
    cards_cursor = call(client, "GET", "/api/v1/sessions?limit=1", driver).get_json()["next"]
    problem(
        call(client, "GET", "/api/v1/cards", driver, query_string={"cursor": cards_cursor}), 400, "invalid_cursor"
    )  # a cursor is bound to its list


def test_invoices_their_pdf_and_the_ubl_of_a_belgian_business(
    app: Flask, client: FlaskClient, driver: SignedIn
) -> None:
    driver.account.company_name = "Peeters Logistiek BV"
    driver.account.vat_number = "BE0403170701"
    history = build_history(app, driver, with_location=False)
    listed = call(client, "GET", "/api/v1/invoices", driver).get_json()
    assert [item["number"] for item in listed["items"]] == [history.invoice.number] and listed["next"] is None
    invoice = listed["items"][0]
    assert invoice["total"] == {"amount_minor": history.invoice.total_minor, "currency": "EUR"}
    assert invoice["amount_due"] == invoice["total"] and invoice["payment_state"] == "open"
    assert invoice["has_ubl"] is True and invoice["period"] == "2026-10"
    assert call(client, "GET", f"/api/v1/invoices/{invoice['id']}", driver).get_json() == invoice
    pdf = call(client, "GET", f"/api/v1/invoices/{invoice['id']}/pdf", driver)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert f'filename="{invoice["number"]}.pdf"' in pdf.headers["Content-Disposition"]
    assert pdf.headers["Cache-Control"] == "no-store"
    ubl = call(client, "GET", f"/api/v1/invoices/{invoice['id']}/ubl", driver)
    assert ubl.status_code == 200 and ubl.mimetype == "application/xml" and invoice["number"].encode() in ubl.data


def test_a_consumer_invoice_has_no_ubl(app: Flask, client: FlaskClient, driver: SignedIn) -> None:
    history = build_history(app, driver, with_location=False)
    problem(call(client, "GET", f"/api/v1/invoices/{history.invoice.id}/ubl", driver), 404, "ubl_not_offered")


def test_the_balance_and_pay_now(
    app: Flask, client: FlaskClient, driver: SignedIn, localstripe: LocalStripe, stripe_app: Flask
) -> None:
    history = build_history(app, driver, localstripe=localstripe, with_location=False)
    balance = call(client, "GET", "/api/v1/balance", driver).get_json()
    due = history.invoice.total_minor
    assert balance["to_pay"] == [{"amount_minor": due, "currency": "EUR"}]
    assert [row["number"] for row in balance["invoices"]] == [history.invoice.number]
    assert balance["payment_method_usable"] is True and balance["cards_blocked_for_payment"] is False
    paid = call(client, "POST", "/api/v1/balance/pay", driver, json={})
    assert paid.status_code == 200, paid.get_json()
    body = paid.get_json()
    assert body["status"] == "paid" and body["paid"] == [history.invoice.number] and body["message"]
    assert body["balance"]["to_pay"] == [] and body["balance"]["invoices"] == []
    again = call(client, "POST", "/api/v1/balance/pay", driver, json={}).get_json()
    assert again["status"] == "nothing_due"  # nothing doubled
    problem(
        call(client, "POST", "/api/v1/balance/pay", driver, json={"payment_intent": "pi_unknown"}),
        404,
        "payment_not_found",
    )


def test_pay_now_hands_3d_secure_to_the_app(
    app: Flask, client: FlaskClient, driver: SignedIn, localstripe: LocalStripe, stripe_app: Flask
) -> None:
    build_history(app, driver, with_location=False)
    save_method(driver.account, localstripe, stripe_js.card(stripe_js.VISA_3DS))
    answer = call(client, "POST", "/api/v1/balance/pay", driver, json={}).get_json()
    assert answer["status"] == "requires_action"
    assert answer["client_secret"] and answer["payment_intent"].startswith("pi_")


def test_the_estimate_is_ratings_for_the_drivers_plan(app: Flask, client: FlaskClient, driver: SignedIn) -> None:
    history = build_history(app, driver)
    query = {"location": history.location.id, "evse_uid": "E1", "connector_id": "1"}
    answer = call(client, "GET", "/api/v1/estimate", driver, query_string=query)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    expected = estimate_for_connector(history.location, "E1", "1", account=driver.account)
    assert body["example"]["total"] == {
        "amount_minor": to_minor_units(expected.example_driver.incl_vat, "EUR"),
        "currency": "EUR",
    }
    assert body["example"]["kwh"] == "20" and body["example"]["duration_minutes"] == 60
    assert {(item["dimension"], item["price"]["amount"], item["unit"]) for item in body["operator_components"]} == {
        ("ENERGY", "0.4", "kWh"),
        ("FLAT", "0.25", "session"),
    }
    assert body["our_fees"]["markup_per_kwh"] == {"amount": "0.0500", "currency": "EUR"}
    short = call(client, "GET", "/api/v1/estimate", driver, query_string={**query, "kwh": 5, "minutes": 30}).get_json()
    assert short["example"]["kwh"] == "5" and short["example"]["duration_minutes"] == 30
    problem(
        call(client, "GET", "/api/v1/estimate", driver, query_string={**query, "connector_id": "9"}),
        404,
        "connector_not_found",
    )
    problem(
        call(client, "GET", "/api/v1/estimate", driver, query_string={**query, "location": 999999}),
        404,
        "location_not_found",
    )
    history.location.publish = False
    db.session.flush()
    problem(call(client, "GET", "/api/v1/estimate", driver, query_string=query), 404, "location_not_found")
