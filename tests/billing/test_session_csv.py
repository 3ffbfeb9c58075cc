"""The sessions CSV speaks the driver's language: its headers and states, its times in the billing time zone (the
zone named in the header), and in Dutch and French the ";" separator and decimal comma that Dutch and French Excel
read as columns and numbers; a byte-order mark so Excel reads UTF-8. Formula cells stay neutralised."""

from __future__ import annotations

import csv
import datetime as dt
import io

from app.charging.models import Cdr
from app.extensions import db
from tests.billing.sessions import rated_session
from tests.billing.test_portal_billing import _driver
from tests.factories import login

OCT = dt.datetime(2026, 10, 10, 12, tzinfo=dt.UTC)  # 14:00 in Brussels (summer time)
NOV = dt.datetime(2026, 11, 15, 12, tzinfo=dt.UTC)  # 13:00 in Brussels (winter time)


def _export(client, language: str) -> tuple[str, list[list[str]]]:  # type: ignore[no-untyped-def]
    response = client.get(f"/sessions.csv?lang={language}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")  # UTF-8 for Excel
    delimiter = ";" if language in ("nl", "fr") else ","
    return text, list(csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=delimiter))


def test_dutch_export_uses_semicolons_decimal_commas_and_dutch_headers(client):
    driver, card = _driver(language="nl")
    rated_session(driver.account.id, card.id, OCT, kwh="20.5")
    login(client, driver)
    _text, rows = _export(client, "nl")
    header, row = rows
    assert len(header) == len(row) == 16  # every column split: one cell per field
    assert header[0] != "Start (%(zone)s)" and "Europe/Brussels" in header[0]
    values = dict(zip(header, row, strict=True))
    assert row[0] == "2026-10-10 14:00:00" and row[1] == "2026-10-10 15:00:00"
    assert "20,5" in row and "21" in row
    # 20.5 × 0.30 + 0.50 = 6.65 operator price; fees 20.5 × 0.05 + 0.35 = 1.375 → 1.38.
    assert "6,65" in row and "1,38" in row
    assert "." not in "".join(row[6:13]), values  # no decimal point anywhere among the numbers


def test_french_export_is_french_and_semicolon_separated(client):
    driver, card = _driver(language="fr")
    rated_session(driver.account.id, card.id, NOV, kwh="10")
    login(client, driver)
    _text, rows = _export(client, "fr")
    header, row = rows
    assert len(header) == len(row) == 16
    assert row[0] == "2026-11-15 13:00:00"  # winter time: UTC+1
    assert "3,50" in row  # 10 × 0.30 + 0.50


def test_english_export_keeps_commas_and_points(client):
    driver, card = _driver(language="en")
    rated_session(driver.account.id, card.id, OCT, kwh="20")
    login(client, driver)
    _text, rows = _export(client, "en")
    header, row = rows
    values = dict(zip(header, row, strict=True))
    assert header[0] == "Start (Europe/Brussels)" and values["Location"] == "Gent Zuid"
    assert values["Operator price excl. VAT"] == "6.50" and values["State"] == "On your next invoice"


def test_the_page_language_chosen_in_the_browser_wins(client):
    driver, card = _driver(language="en")
    rated_session(driver.account.id, card.id, OCT)
    login(client, driver)
    client.get("/sessions?lang=nl")  # chosen in this browser
    text = client.get("/sessions.csv").get_data(as_text=True)
    assert text.splitlines()[0].count(";") == 15


def test_formulas_stay_neutralised_with_semicolons(client):
    driver, card = _driver(language="nl")
    charge = rated_session(driver.account.id, card.id, OCT)
    cdr = db.session.get(Cdr, charge.cdr_id)
    cdr.data = {**cdr.data, "cdr_location": {**cdr.data["cdr_location"], "name": "=1+2;=cmd|' /C calc'!A0"}}
    db.session.flush()
    login(client, driver)
    _text, rows = _export(client, "nl")
    assert rows[1][2] == "'=1+2;=cmd|' /C calc'!A0"  # quoted: the ";" inside stays in its cell
    assert len(rows[1]) == 16
