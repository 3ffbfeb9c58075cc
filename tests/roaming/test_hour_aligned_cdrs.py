"""End to end: a real Dutch CPO's CDR whose charging periods are aligned to the hour (the session runs 12:20-14:05,
its periods start at 12:00, 13:00 and 14:00) is POSTed by the CPO to our CDRs endpoint for one of our cards,
stored, rated at once with a note saying how period 0 was counted, shown with that note in the driver's session
history, and invoiced exactly once by the month's run — priced with a real Dutch tariff (0.388 EUR/kWh)."""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import json
from decimal import Decimal

from sqlalchemy import func, select

from app.audit.services import Actor
from app.billing.models import Invoice, InvoiceLine, LineKind
from app.cards.models import CardStatus
from app.charging.models import Cdr
from app.extensions import db
from app.plans import services as plan_services
from app.rating.models import RatingProblem, SessionCharge
from tests.factories import login, make_user
from tests.roaming.token_fixtures import card_in, our_cdr_token
from tests.shared_data import NL_DATA

FINANCE = Actor.system("test-finance")
REAL_TARIFF_ID = "4473587a5b74614ccc3a0ccec240ea51"  # NL*TNM: 0.388 EUR/kWh, 21 % VAT, every day all day
SESSION_START = dt.datetime(2026, 10, 14, 12, 20, tzinfo=dt.UTC)
SESSION_END = dt.datetime(2026, 10, 14, 14, 5, tzinfo=dt.UTC)
HOURS = [dt.datetime(2026, 10, 14, hour, tzinfo=dt.UTC) for hour in (12, 13, 14)]
KWH = (7.25, 10.875, 0.906)  # 19.031 kWh in all


def _real_tariff() -> dict:
    """The real NDW tariff, as the CPO (our test partner NL/TCP) puts it in its CDR."""
    with gzip.open(NL_DATA / "tariffs.json.gz", "rt") as handle:
        [tariff] = [raw for raw in json.load(handle) if raw["id"] == REAL_TARIFF_ID]
    return {**copy.deepcopy(tariff), "party_id": "TCP"}


def _hour_aligned_cdr(card) -> dict:  # type: ignore[no-untyped-def]
    total_cost = round(sum(KWH) * 0.388, 2)
    return {
        "country_code": "NL",
        "party_id": "TCP",
        "id": "NL-TCP-HOURLY-1",
        "start_date_time": SESSION_START.isoformat(),
        "end_date_time": SESSION_END.isoformat(),
        "cdr_token": our_cdr_token(card),
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": "LOC-BREDA-1",
            "name": "Grote Markt",
            "address": "Grote Markt 1",
            "city": "Breda",
            "postal_code": "4811 XP",
            "country": "NLD",
            "coordinates": {"latitude": "51.588800", "longitude": "4.775600"},
            "evse_uid": "EVSE-1",
            "evse_id": "NL*TCP*E0001",
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": "EUR",
        "tariffs": [_real_tariff()],
        "charging_periods": [
            {
                "start_date_time": hour.isoformat(),
                "tariff_id": REAL_TARIFF_ID,
                "dimensions": [{"type": "ENERGY", "volume": kwh}],
            }
            for hour, kwh in zip(HOURS, KWH, strict=True)
        ],
        "total_cost": {"excl_vat": total_cost, "incl_vat": round(total_cost * 1.21, 2)},
        "total_energy": round(sum(KWH), 3),
        "total_time": 1.75,
        "last_updated": SESSION_END.isoformat(),
    }


def _driver_with_card():  # type: ignore[no-untyped-def]
    user = make_user(full_name="Henk Uurtarief")
    for stretch in plan_services.history(user.account.id):
        db.session.delete(stretch)
    db.session.flush()
    plan_services.subscribe(
        user.account, plan_services.current_version("payg"), FINANCE, at=dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    )
    return user, card_in(CardStatus.ACTIVE, user=user)


def _billing(app, *args: str) -> None:  # type: ignore[no-untyped-def]
    result = app.test_cli_runner().invoke(args=["billing", *args])
    assert result.exit_code == 0, result.output


def test_an_hour_aligned_cdr_is_rated_with_its_note_and_invoiced_once(app, client, ocpi):
    user, card = _driver_with_card()
    data = _hour_aligned_cdr(card)

    posted = ocpi.call("POST", "/ocpi/2.2.1/cdrs", data=json.dumps(data), content_type="application/json")
    assert posted.status_code == 201, posted.get_json()
    again = ocpi.call("POST", "/ocpi/2.2.1/cdrs", data=json.dumps(data), content_type="application/json")
    assert again.status_code == 200 and again.headers["Location"] == posted.headers["Location"]

    # Stored for our driver and rated at once (no broker: the rating runs right after the CDR's commit).
    db.session.expire_all()
    [cdr] = db.session.scalars(select(Cdr)).all()
    assert cdr.account_id == user.account.id and cdr.card_id == card.id
    [charge] = db.session.scalars(select(SessionCharge)).all()
    assert charge.cdr_id == cdr.id and db.session.scalar(select(func.count(RatingProblem.id))) == 0
    # Every kWh the CPO metered, at the real tariff: 19.031 × 0.388 = 7.3840 (the CPO said 7.38).
    assert charge.tariff_source == "cdr_tariffs" and charge.cpo_cost_excl_vat == Decimal("7.3840")
    # Ours, pay as you go: 19.031 × 0.05 = 0.9516 and the 0.35 session fee.
    assert charge.driver_excl_vat == Decimal("8.6856")
    [note] = charge.pricing_notes
    # No Location row known for it: the note is in the Dutch time zone (CEST in October before the 25th).
    assert note["kind"] == "before_start" and note["period"] == 0
    assert note["started"] == "2026-10-14T12:00:00Z" and note["counted_from"] == "2026-10-14T12:20:00Z"
    assert note["text"] == (
        "charging period 0 started 14:00 CEST, before the session start 14:20 CEST: counted from 14:20 CEST"
    )
    assert charge.breakdown["cpo"]["total_time"] == "1.7500"

    # The driver sees why: the note under the session in their history (times in the portal's zone, Brussels).
    login(client, user)
    page = client.get("/sessions?month=2026-10").get_data(as_text=True)
    page = page.replace("\u202f", " ").replace("\xa0", " ")  # CLDR's (narrow) no-break spaces, where used
    assert (  # English dates day first, 24-hour times, as the driver in Belgium and the Netherlands reads them
        "The operator's metering period from 14/10/2026, 14:00 began before your session (14/10/2026, 14:20): "
        "it was counted from 14/10/2026, 14:20." in page
    )

    # The month's run invoices it once; a second run of the month adds nothing.
    db.session.commit()
    _billing(app, "run", "--period", "2026-10", "--dry-run")
    _billing(app, "approve", "--period", "2026-10")
    _billing(app, "run", "--period", "2026-10", "--no-deliver")
    _billing(app, "run", "--period", "2026-10", "--no-deliver")
    _billing(app, "uninvoiced", "--period", "2026-10")  # exit 0: nothing left unrated or uninvoiced
    db.session.expire_all()
    [line] = db.session.scalars(select(InvoiceLine).where(InvoiceLine.session_charge_id == charge.id)).all()
    assert line.kind == LineKind.SESSION and line.amount_minor == 869  # 8.6856 → 8.69
    [invoice] = db.session.scalars(select(Invoice).where(Invoice.account_id == user.account.id)).all()
    [printed] = [printed for printed in invoice.snapshot["lines"] if printed["kind"] == "session"]
    assert printed["session"]["duration_minutes"] == 105  # the session's duration, 12:20 → 14:05
    assert printed["amount"] == 869
