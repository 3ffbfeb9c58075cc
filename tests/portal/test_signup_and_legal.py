"""Sign-up compares the plans from the catalogue, and links the terms, privacy notice and contact pages, whose
seller identity comes from the configuration."""

from __future__ import annotations

import re
from decimal import Decimal

from markupsafe import escape

from app.audit.services import Actor
from app.plans import services as plans


def _plan_card(html: str, name: str) -> str:
    """The sign-up page's card of the plan called ``name`` (its label, up to the next one)."""
    match = re.search(
        r'<label class="plan plan-choice"[^>]*>(?:(?!</label>).)*?<strong>'
        + re.escape(str(escape(name)))
        + r"</strong>.*?</label>",
        html,
        re.S,
    )
    assert match, f"no plan card for {name}"
    return match.group(0)


def test_signup_compares_each_plans_prices_from_the_catalogue(client, db_session):
    html = client.get("/signup?lang=en").get_data(as_text=True)
    payg, comfort, business = (_plan_card(html, name) for name in ("Pay as you go", "Comfort", "Business"))
    assert "Monthly fee" in payg and "None" in payg
    assert "€0.05" in payg and "€0.35" in payg  # per kWh and per session
    assert "€4.99" in comfort and "€0.02" in comfort
    assert "at most €10.00 a month" in business and "5 % of the operator price" in business
    assert "Business accounts" in business and "Business accounts" not in comfort
    # A price changed in the catalogue is what the page shows: nothing is written into the template.
    plans.revise_plan(plans.current_version("comfort"), {"monthly_fee": Decimal("6.5")}, Actor.system("test"))
    html = client.get("/signup?lang=en").get_data(as_text=True)
    assert "€6.50" in _plan_card(html, "Comfort")


def test_signup_comparison_follows_the_page_language(client, db_session):
    html = client.get("/signup?lang=nl").get_data(as_text=True)
    card = _plan_card(html, "Betalen per gebruik")
    assert "Geen maandbedrag" in card  # the plan's own description in Dutch
    assert "€\xa00,35" in card
    french = client.get("/signup?lang=fr").get_data(as_text=True)
    assert "0,35\xa0€" in _plan_card(french, "Paiement à l'usage")


def test_signup_links_terms_privacy_and_contact(client, db_session):
    html = client.get("/signup?lang=en").get_data(as_text=True)
    for path in ("/terms", "/privacy", "/contact"):
        assert f'href="{path}"' in html


def test_legal_pages_name_the_configured_seller(app, client, db_session):
    seller = app.config["SELLER"]
    for path, must in (
        ("/terms", ("Payment", "lost or stolen", "Liability", "Ending the contract", "days after its date")),
        ("/privacy", ("GDPR", "How long we keep it", "Your rights", "data protection authority", "10 years")),
        ("/contact", ("Complaints", "Lost or stolen card")),
    ):
        response = client.get(f"{path}?lang=en")
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        assert seller["name"] in html and seller["vat_number"] in html and seller["email"] in html, path
        for text in must:
            assert text in html, (path, text)


def test_legal_pages_are_translated_pages(client, db_session):
    for language in ("nl", "fr"):
        response = client.get(f"/terms?lang={language}")
        assert response.status_code == 200
        assert f'<html lang="{language}">' in response.get_data(as_text=True)
