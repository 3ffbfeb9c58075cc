"""Building rated charging sessions for billing tests, through the real rating service."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from app.charging.models import Cdr
from app.extensions import db
from app.rating.models import SessionCharge
from app.rating.services import rate_cdr

_ids = itertools.count(1)

TARIFF = {
    "country_code": "NL",
    "party_id": "TCP",
    "id": "T1",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.30, "vat": 21.0, "step_size": 1},
                {"type": "FLAT", "price": 0.50, "vat": 21.0, "step_size": 1},
            ]
        }
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}


def rated_session(
    account_id: int,
    card_id: int,
    start: dt.datetime,
    kwh: str = "20",
    hours: float = 1,
    country: str = "BEL",
    tariff: dict | None = None,
) -> SessionCharge:
    """A CDR of ``kwh`` over ``hours`` at a 0.30/kWh + 0.50 start tariff, stored and rated."""
    ocpi_id = f"CDR{next(_ids)}"
    cpo_total = Decimal(kwh) * Decimal("0.30") + Decimal("0.50")  # what the CPO computes with TARIFF
    end = start + dt.timedelta(hours=hours)
    data = {
        "country_code": "NL",
        "party_id": "TCP",
        "id": ocpi_id,
        "start_date_time": start.isoformat(),
        "end_date_time": end.isoformat(),
        "currency": "EUR",
        "charging_periods": [
            {
                "start_date_time": start.isoformat(),
                "dimensions": [{"type": "ENERGY", "volume": float(kwh)}, {"type": "TIME", "volume": hours}],
            }
        ],
        "total_cost": {"excl_vat": float(cpo_total)},
        "total_energy": float(kwh),
        "total_time": hours,
        "cdr_location": {
            "id": "LOC1",
            "name": "Gent Zuid",
            "city": "Gent",
            "country": country,
            "evse_id": "BE*BEC*E041503003",
        },
        "tariffs": [tariff or TARIFF],
    }
    cdr = Cdr(
        country_code="NL",
        party_id="TCP",
        ocpi_id=ocpi_id,
        card_id=card_id,
        account_id=account_id,
        token_uid="X",
        start_date_time=start,
        end_date_time=end,
        location_ocpi_id="LOC1",
        evse_uid="E1",
        country=country,
        currency="EUR",
        total_energy=Decimal(kwh),
        total_time=Decimal(str(hours)),
        total_cost_excl_vat=cpo_total,
        data=data,
        last_updated=end,
    )
    db.session.add(cdr)
    db.session.flush()
    return rate_cdr(cdr)
