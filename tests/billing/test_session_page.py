"""A session has its own page in the portal: the operator's price part by part and the tariff that priced it, our
fees, VAT, total, the card and the invoice it is on; linked from the sessions list; another driver's is a 404."""

from __future__ import annotations

import datetime as dt

from app.audit.services import Actor
from app.cards import services as card_services
from app.extensions import db
from tests.billing.sessions import rated_session
from tests.billing.test_portal_billing import _driver, _own_invoice, _run
from tests.factories import login

OCT = dt.datetime(2026, 10, 10, 12, tzinfo=dt.UTC)


def _text(html: str) -> str:
    import re

    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_session_page_builds_up_the_price(app, client):
    me, card = _driver()
    card.label = "Family car"
    charge = rated_session(me.account.id, card.id, OCT, kwh="20")
    login(client, me)
    listing = client.get("/sessions").get_data(as_text=True)
    assert f'href="/sessions/{charge.cdr_id}"' in listing

    response = client.get(f"/sessions/{charge.cdr_id}?lang=en")
    assert response.status_code == 200
    page = _text(response.get_data(as_text=True))
    # CPO 20 kWh × 0.30 + 0.50 start = 6.50; our fees 20 × 0.05 + 0.35 = 1.35; 7.85 + 21 % VAT = 9.4985 → 9.50.
    assert "Why did this session cost €9.50?" in page
    assert "Energy 20.000 kWh €6.00" in page and "Start or session fee of the operator €0.50" in page
    assert "Operator price excl. VAT €6.50" in page
    assert "€0.05 per kWh × 20.000 kWh €1.00" in page and "Session fee €0.35" in page
    assert "Our fees excl. VAT €1.35" in page
    assert "Price excl. VAT €7.85" in page and "VAT 21 % (charged in BE)" in page
    assert "Total incl. VAT €9.50" in page
    assert "T1" in page and "Pay as you go" in page and "Family car" in page
    assert "On your next invoice" in page
    assert "Gent Zuid" in page and "BE*BEC*E041503003" in page


def test_an_invoiced_session_links_its_invoice(app, client):
    me, card = _driver()
    september = rated_session(me.account.id, card.id, dt.datetime(2026, 9, 20, 8, tzinfo=dt.UTC), kwh="10")
    _run(app, "2026-09")
    login(client, me)
    invoice = _own_invoice(me)
    html = client.get(f"/sessions/{september.cdr_id}").get_data(as_text=True)
    assert f'href="/invoices/{invoice.number}"' in html


def test_another_drivers_session_is_not_found(client):
    me, _card = _driver()
    other, other_card = _driver()
    theirs = rated_session(other.account.id, other_card.id, OCT)
    login(client, me)
    assert client.get(f"/sessions/{theirs.cdr_id}").status_code == 404
    assert client.get("/sessions/999999").status_code == 404


def test_the_session_page_is_for_signed_in_drivers(client):
    me, card = _driver()
    charge = rated_session(me.account.id, card.id, OCT)
    assert client.get(f"/sessions/{charge.cdr_id}").status_code == 302  # to the login


def test_the_session_page_follows_the_language(client):
    me, card = _driver()
    charge = rated_session(me.account.id, card.id, OCT, kwh="20")
    login(client, me)
    page = _text(client.get(f"/sessions/{charge.cdr_id}?lang=nl").get_data(as_text=True))
    assert "€ 9,50" in page.replace("\xa0", " ")


def test_a_card_of_an_app_token_is_named(client):
    me, _card = _driver()
    token = card_services.issue_app_token(me.account, Actor.of(me))
    db.session.flush()
    charge = rated_session(me.account.id, token.id, OCT)
    login(client, me)
    assert client.get(f"/sessions/{charge.cdr_id}").status_code == 200
