"""One session's price breakdown for support: the tariff used and where it came from, each price component and
what was billed for it, our fees under the plan, VAT, the estimate, pricing notes, the authorization and what
finance decided about a hold. "Why did this session cost X?" answered on one page, in the agent's language."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from app.accounts.models import Role
from app.audit.services import Actor
from app.billing.models import SessionHold
from app.billing.runs import holds
from app.extensions import db
from app.plans import services as plan_services
from app.plans.models import Subscription
from tests.customer_care.charging import CUSTOMER_SINCE, charge_once, driver_with_card, publish_network
from tests.customer_care.pages import page_text
from tests.factories import login, make_user
from tests.roaming.conftest import ocpi, partner  # noqa: F401  (fixtures)

OCT_14 = dt.datetime(2026, 10, 14, 17, 0, tzinfo=dt.UTC)  # 19:00 in Brussels


def _section(html: str, marker: str) -> str:
    start = html.index(marker)
    return page_text(html[start : html.index("</section>", start)])


def _detail(client, account_id: int, cdr_id: int, **query: str) -> str:  # type: ignore[no-untyped-def]
    response = client.get(f"/backoffice/support/accounts/{account_id}/sessions/{cdr_id}", query_string=query)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_price_is_built_up_from_the_frozen_tariff_our_fees_and_vat(client, ocpi, partner):  # noqa: F811
    publish_network(ocpi, partner)
    user, card = driver_with_card()
    charged = charge_once(ocpi, card, "S-WHY", OCT_14, kwh=20)
    db.session.commit()
    login(client, make_user(Role.SUPPORT))

    page = _detail(client, user.account.id, charged.cdr.id)

    assert "Why did this session cost €11.37?" in page_text(page)
    operator = _section(page, "data-operator-price")
    assert "frozen with the session" in operator and "AC-SUPPORT" in operator
    assert "Energy (element 1) €0.39 per kWh always" in operator  # the tariff's components
    assert "Fixed fee (element 1) €0.25 once always" in operator
    assert "Energy (element 1) 20.0000 × €0.39 €7.80" in operator  # what was billed: quantity × price
    assert "Fixed fee (element 1) 1.0000 × €0.25 €0.25" in operator
    assert "Operator price excl. VAT €8.05" in operator
    assert "The operator's own total in the record €8.05" in operator
    fees = _section(page, "data-fees")
    assert "Pay as you go" in fees
    assert "€0.05 per kWh × 20.000 kWh €1.00" in fees and "Session fee €0.35" in fees
    assert "Our fees excl. VAT €1.35" in fees
    vat = _section(page, "data-vat")
    assert "VAT 21 % (charged in BE) €1.974" in vat
    assert "Total incl. VAT as rated €11.374" in vat
    assert "from the tariff at the charge point when charging started €11.374" in vat  # the estimate
    assert "Total incl. VAT as billed €11.374" in vat
    facts = _section(page, "data-session-facts")
    assert "14 Oct 2026, 19:00" in facts and "14 Oct 2026, 20:00" in facts and "Belgium Time" in facts
    assert "Allego Gent" in facts and "BE*TCP*E0007" in facts and card.visual_number in facts
    assert "Real-time authorization request" in _section(page, "data-authorization")


def test_the_authorization_that_let_the_session_start_is_shown_with_its_reason(client, ocpi, partner):  # noqa: F811
    publish_network(ocpi, partner)
    user, card = driver_with_card()
    # Charging now: the CPO asks us first, then reports the session and its CDR with our reference.
    charged = charge_once(ocpi, card, "S-AUTH", dt.datetime.now(dt.UTC) - dt.timedelta(minutes=50), kwh=11, hours=0.5)
    db.session.commit()
    login(client, make_user(Role.SUPPORT))

    authorization = _section(_detail(client, user.account.id, charged.cdr.id), "data-authorization")

    assert "Real-time authorization request" in authorization and charged.reference in authorization
    assert "Allowed" in authorization and "The card is active and the account in good standing." in authorization
    assert "asked by Test CPO" in authorization
    dutch = _section(_detail(client, user.account.id, charged.cdr.id, lang="nl"), "data-authorization")
    assert "card active, account in good standing" not in dutch  # the stored code never reaches the page


def test_a_session_fee_lowered_by_the_monthly_cap_says_so(client, ocpi, partner):  # noqa: F811
    publish_network(ocpi, partner)
    user, card = driver_with_card()
    capped = plan_services.create_plan(
        "capped",
        {"en": "Capped", "nl": "Begrensd", "fr": "Plafonné"},
        {
            "monthly_fee": Decimal("1"),
            "markup_percent": Decimal("10"),
            "markup_per_kwh": Decimal("0"),
            "session_fee": Decimal("0.35"),
            "session_fee_cap_per_month": Decimal("0.50"),
        },
        Actor.system("test"),
    )
    subscription = db.session.scalar(select(Subscription).where(Subscription.account_id == user.account.id))
    subscription.plan = capped
    db.session.flush()
    charge_once(ocpi, card, "S-CAP-1", OCT_14, kwh=10)
    second = charge_once(ocpi, card, "S-CAP-2", OCT_14 + dt.timedelta(days=1), kwh=10)
    db.session.commit()
    login(client, make_user(Role.SUPPORT))

    fees = _section(_detail(client, user.account.id, second.cdr.id), "data-fees")

    assert "Capped" in fees
    assert "Markup of 10 % on the operator price €0.415" in fees  # 10 % of 4.15
    assert "€0.35 in the plan, lowered: the monthly cap of €0.50 was reached €0.15" in fees
    assert second.charge.session_fee == Decimal("0.15")
    assert CUSTOMER_SINCE < OCT_14


def test_an_adjusted_hold_shows_the_decision_the_correction_and_the_billed_total(client, ocpi, partner):  # noqa: F811
    publish_network(ocpi, partner)
    user, card = driver_with_card()
    charged = charge_once(ocpi, card, "S-BIG", OCT_14, kwh=162, hours=3)
    hold = SessionHold(session_charge_id=charged.charge.id, reasons=["energy 162.0000 kWh over 150 kWh"])
    db.session.add(hold)
    db.session.flush()
    holds.adjust(hold, Actor.system("finance@voltaro.example"), "capacity of the car is 80 kWh", "100.00")
    db.session.commit()
    login(client, make_user(Role.SUPPORT))

    page = _detail(client, user.account.id, charged.cdr.id)

    assert "Why did this session cost €100.00?" in page_text(page)
    summary = _section(page, "data-summary")
    # Operator price and our fees as the CPO and the plan charged them; finance's change is its own line.
    assert f"Operator price excl. VAT €{charged.charge.cpo_cost_excl_vat.quantize(Decimal('0.01'))}" in summary
    # 100.00 incl. VAT is 82.64 excl.; rated at 63.43 + 8.45 = 71.88: finance raised it by 10.76.
    assert charged.charge.driver_excl_vat == Decimal("71.8800")
    assert "Correction Price corrected after review €10.76" in summary
    vat = _section(page, "data-vat")
    assert "Adjusted by finance" in vat and "energy 162.0000 kWh over 150 kWh" in vat
    assert "capacity of the car is 80 kWh" in vat and "finance@voltaro.example" in vat
    assert "Total incl. VAT as billed €100.00" in vat


def test_pricing_notes_and_a_whitelisted_start_are_explained(client, ocpi, partner):  # noqa: F811
    publish_network(ocpi, partner)
    user, card = driver_with_card()
    charged = charge_once(ocpi, card, "S-WL", OCT_14, kwh=8, authorize=False)
    # The CPO's metering period began a quarter of an hour before the session: rating counted it from the start.
    charged.cdr.data = {
        **charged.cdr.data,
        "charging_periods": [
            {**charged.cdr.data["charging_periods"][0], "start_date_time": "2026-10-14T16:45:00+00:00"}
        ],
    }
    from app.rating.services import rate_cdr

    db.session.delete(charged.charge)
    db.session.flush()
    charge = rate_cdr(charged.cdr)
    assert charge.pricing_notes
    db.session.commit()
    login(client, make_user(Role.SUPPORT))

    page = _detail(client, user.account.id, charged.cdr.id)

    notes = page_text(page[page.index("data-pricing-notes") :])
    assert "metering period from 14 Oct 2026, 18:45 began before your session (14 Oct 2026, 19:00)" in notes
    authorization = _section(page, "data-authorization")
    assert "Accepted from the token list (whitelist), without asking us" in authorization


def test_the_breakdown_speaks_the_agents_language(client, ocpi, partner):  # noqa: F811
    publish_network(ocpi, partner)
    user, card = driver_with_card()
    charged = charge_once(ocpi, card, "S-NL", OCT_14, kwh=20)
    db.session.commit()
    login(client, make_user(Role.SUPPORT))

    dutch = page_text(_detail(client, user.account.id, charged.cdr.id, lang="nl"))
    assert "Prijs uitbater" in dutch and "Onze vergoeding" in dutch and "Betalen per gebruik" in dutch
    assert "14 okt 2026, 19:00" in dutch and "tijd in België" in dutch
    french = page_text(_detail(client, user.account.id, charged.cdr.id, lang="fr"))
    assert "Prix de l'opérateur" in french and "Nos frais" in french and "Paiement à l'usage" in french
    assert "14 oct. 2026, 19:00" in french
    assert "11,374 €" in french  # every decimal of the rating, in French notation
