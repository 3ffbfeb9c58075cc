"""A CDR with hour-aligned charging periods is rated, and how its periods were counted is kept with the charge;
the stored quantities mean what OCPI says (total_time: the session's duration)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from app.extensions import db
from app.rating import services
from app.rating.models import ReconciliationFinding
from app.rating.notes import pricing_notes_of
from tests.rating.test_rating import START, TARIFF, _cdr, _frozen_session

HOUR = dt.timedelta(hours=1)


def _hour_aligned(cdr):  # type: ignore[no-untyped-def]
    """The CDR made like the real Dutch one: session 18:20-20:05 UTC, periods at 18:00, 19:00 and 20:00, ENERGY only
    (20 kWh in all)."""
    start, end = START + dt.timedelta(minutes=20), START + dt.timedelta(hours=2, minutes=5)
    cdr.start_date_time, cdr.end_date_time = start, end
    cdr.data = {
        **cdr.data,
        "start_date_time": start.isoformat(),
        "end_date_time": end.isoformat(),
        "charging_periods": [
            {"start_date_time": (START + n * HOUR).isoformat(), "dimensions": [{"type": "ENERGY", "volume": kwh}]}
            for n, kwh in enumerate((8, 11, 1))
        ],
        "total_time": 1.75,
    }
    db.session.flush()
    return cdr


def test_an_hour_aligned_cdr_is_rated_with_its_note(driver):
    account, card = driver
    cdr = _hour_aligned(_cdr(account.id, card.id, ocpi_id="NL-1", tariffs=[TARIFF]))
    charge = services.rate_cdr(cdr)
    # 20 kWh × 0.30 + 0.50 = 6.50, as the CPO says: every kWh it metered is counted.
    assert charge.tariff_source == "cdr_tariffs" and charge.cpo_cost_excl_vat == Decimal("6.5000")
    assert db.session.query(ReconciliationFinding).count() == 0
    # The location is unknown: the note is in the country's zone (Belgium, CEST in October before the 25th).
    text = "charging period 0 started 20:00 CEST, before the session start 20:20 CEST: counted from 20:20 CEST"
    assert charge.pricing_notes == [
        {
            "period": 0,
            "kind": "before_start",
            "started": "2026-10-14T18:00:00Z",
            "counted_from": "2026-10-14T18:20:00Z",
            "reference": "2026-10-14T18:20:00Z",
            "text": text,
        }
    ]
    assert charge.breakdown["cpo"]["notes"] == [text]
    [note] = pricing_notes_of(charge)
    assert note.started == START and note.counted_from == START + dt.timedelta(minutes=20) and note.text == text
    # Stored quantities: the session lasted 1 h 45 min, though the periods carry only ENERGY.
    assert charge.breakdown["cpo"]["total_time"] == "1.7500"
    assert charge.breakdown["cpo"]["total_parking_time"] == "0.0000"


def test_the_note_is_kept_with_the_frozen_tariff_too_and_a_fitting_cdr_has_none(driver):
    account, card = driver
    _frozen_session(account.id, card.id, TARIFF)
    hourly = services.rate_cdr(_hour_aligned(_cdr(account.id, card.id, ocpi_id="NL-2", session_id="S1")))
    assert hourly.tariff_source == "frozen_tariff" and [n["kind"] for n in hourly.pricing_notes] == ["before_start"]
    fitting = services.rate_cdr(
        _cdr(account.id, card.id, ocpi_id="NL-3", tariffs=[TARIFF], start=START + dt.timedelta(days=1))
    )
    assert fitting.pricing_notes is None and pricing_notes_of(fitting) == ()
    assert fitting.breakdown["cpo"]["total_time"] == "1.0000"


def test_a_cdr_priced_from_its_total_cost_has_no_notes(driver):
    account, card = driver
    charge = services.rate_cdr(_hour_aligned(_cdr(account.id, card.id, ocpi_id="NL-4", cpo_total="7.00")))
    assert charge.tariff_source == "cdr_total_cost" and charge.cpo_cost_excl_vat == Decimal("7.0000")
    assert charge.pricing_notes is None  # no period was counted by us: the CPO's own total is billed
