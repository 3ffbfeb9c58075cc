"""The same CDR delivered twice (the CPO directly, then a hub relaying its backlog) is one CDR, rated once, and the
driver pays it once on the month's invoice."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from app.audit.services import Actor
from app.billing.models import Invoice, LineKind
from app.cards import services as card_services
from app.charging.models import Cdr
from app.db import utcnow
from app.extensions import db
from app.plans import services as plan_services
from app.rating.models import SessionCharge
from app.roaming.models import Partner, PartnerStatus
from app.roaming.ocpi.auth import hash_token
from tests.billing.sessions import TARIFF
from tests.factories import make_user
from tests.roaming.conftest import OcpiTestClient
from tests.roaming.token_fixtures import example, our_cdr_token

FINANCE = Actor.system("test-finance")
START = dt.datetime(2026, 10, 10, 12, tzinfo=dt.UTC)


def _partners(client) -> tuple[OcpiTestClient, OcpiTestClient, Partner]:  # type: ignore[no-untyped-def]
    direct = Partner(
        name="Direct CPO",
        country_code="NL",
        party_id="TCP",
        status=PartnerStatus.REGISTERED,
        incoming_token_hash=hash_token("direct-token"),
        registered_at=utcnow(),
        version="2.2.1",
        endpoints=[],
    )
    hub = Partner(
        name="Hub",
        is_hub=True,
        country_code="DE",
        party_id="HUB",
        status=PartnerStatus.REGISTERED,
        incoming_token_hash=hash_token("hub-token"),
        registered_at=utcnow(),
        version="2.2.1",
        endpoints=[],
    )
    db.session.add_all([direct, hub])
    db.session.flush()
    return OcpiTestClient(client, token="direct-token"), OcpiTestClient(client, token="hub-token"), direct


def _driver():  # type: ignore[no-untyped-def]
    user = make_user(full_name="Dora Double")
    for stretch in plan_services.history(user.account.id):
        db.session.delete(stretch)
    db.session.flush()
    plan_services.subscribe(
        user.account, plan_services.current_version("payg"), FINANCE, at=dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    )
    return user.account, card_services.issue_app_token(user.account, Actor.of(user))


def _cdr(cdr_id: str, card) -> dict:  # type: ignore[no-untyped-def, type-arg]
    """20 kWh over an hour at TARIFF (0.30/kWh + 0.50): the CPO's 6.50, as in tests/billing/sessions.py."""
    end = START + dt.timedelta(hours=1)
    data = example("cdr_example.json")
    data.update(
        country_code="NL",
        party_id="TCP",
        id=cdr_id,
        start_date_time=START.isoformat(),
        end_date_time=end.isoformat(),
        cdr_token=our_cdr_token(card),
        tariffs=[TARIFF],
        charging_periods=[
            {
                "start_date_time": START.isoformat(),
                "dimensions": [{"type": "ENERGY", "volume": 20}, {"type": "TIME", "volume": 1}],
            }
        ],
        total_cost={"excl_vat": 6.50},
        total_energy=20,
        total_time=1,
        last_updated=end.isoformat(),
    )
    data.pop("total_time_cost", None)
    data["cdr_location"].update(country="NLD")
    return data


def test_a_cdr_relayed_again_by_a_hub_is_rated_and_invoiced_once(app, client):
    direct, hub, direct_partner = _partners(client)
    account, card = _driver()

    first = direct.call(
        "POST", "/ocpi/2.2.1/cdrs", data=json.dumps(_cdr("OCT-1", card)), content_type="application/json"
    )
    assert first.status_code in (200, 201), first.get_json()
    # The CPO moves to the hub: the direct connection is suspended, the hub relays the backlog.
    direct_partner.status = PartnerStatus.SUSPENDED
    db.session.flush()
    relayed = hub.call(
        "POST",
        "/ocpi/2.2.1/cdrs",
        data=json.dumps(_cdr("OCT-1", card)),
        content_type="application/json",
        headers={"OCPI-from-country-code": "NL", "OCPI-from-party-id": "TCP"},
    )
    assert relayed.status_code == 200 and relayed.get_json()["status_code"] == 1000, relayed.get_json()
    assert relayed.headers["Location"] == first.headers["Location"]

    db.session.expire_all()
    [cdr] = db.session.scalars(select(Cdr)).all()
    assert cdr.account_id == account.id
    [charge] = db.session.scalars(select(SessionCharge)).all()  # rated once, when the CPO sent it
    assert charge.cdr_id == cdr.id
    db.session.commit()

    cli = app.test_cli_runner()
    for args in (
        ["billing", "run", "--period", "2026-10", "--dry-run"],
        ["billing", "approve", "--period", "2026-10"],
        ["billing", "run", "--period", "2026-10", "--no-deliver"],
    ):
        result = cli.invoke(args=args)
        assert result.exit_code == 0, result.output
    db.session.expire_all()
    [invoice] = db.session.scalars(select(Invoice).where(Invoice.account_id == account.id)).all()
    sessions = [line for line in invoice.lines if line.kind == LineKind.SESSION]
    # CPO 20 × 0.30 + 0.50 = 6.50; ours 20 × 0.05 + 0.35 = 1.35 → 7.85, once.
    assert [line.amount_minor for line in sessions] == [785]
