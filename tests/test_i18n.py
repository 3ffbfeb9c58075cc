"""Language choice and locale formatting of money and dates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask_babel import force_locale

from app.i18n import format_money
from app.money import MoneyError, from_minor_units, to_minor_units
from tests.factories import login, make_user


def test_browser_language_is_used_for_anonymous_visitors(client):
    page = client.get("/login", headers={"Accept-Language": "fr-BE,fr;q=0.9,en;q=0.5"})
    assert '<html lang="fr">' in page.get_data(as_text=True)
    assert "Se connecter" in page.get_data(as_text=True)


def test_explicit_choice_wins_and_sticks(client):
    client.get("/login?lang=nl", headers={"Accept-Language": "fr"})
    page = client.get("/login", headers={"Accept-Language": "fr"})
    assert '<html lang="nl">' in page.get_data(as_text=True)


def test_driver_language_is_used_after_login(client):
    user = make_user(language="nl")
    login(client, user)
    page = client.get("/dashboard", headers={"Accept-Language": "en"})
    assert '<html lang="nl">' in page.get_data(as_text=True)


def test_money_formatting_per_locale(app):
    with app.test_request_context():
        with force_locale("nl"):
            assert format_money(123456, "EUR", minor_units=True) == "€\xa01.234,56"
        with force_locale("fr"):
            assert format_money(Decimal("1234.56"), "EUR").replace("\u202f", " ") == "1 234,56\xa0€"
        with force_locale("en"):
            assert format_money(Decimal("0.5"), "EUR") == "€0.50"


def test_dates_are_shown_in_brussels_time(app):
    from app.i18n import format_moment

    moment = dt.datetime(2026, 7, 1, 22, 30, tzinfo=dt.UTC)
    with app.test_request_context(), force_locale("nl"):
        assert "2 jul 2026" in format_moment(moment) and "00:30" in format_moment(moment)


def test_minor_units_round_half_up_and_refuse_floats():
    assert to_minor_units(Decimal("0.005"), "EUR") == 1
    assert to_minor_units(Decimal("-0.005"), "EUR") == -1
    assert to_minor_units("12.344", "EUR") == 1234
    assert from_minor_units(1234, "EUR") == Decimal("12.34")
    for bad in (0.1, "abc", Decimal("NaN")):
        try:
            to_minor_units(bad, "EUR")  # type: ignore[arg-type]
        except MoneyError:
            continue
        raise AssertionError(f"{bad!r} accepted")


def test_every_message_in_code_and_templates_is_translated_in_dutch_and_french():
    """Extracted the way `make messages` does (templates/_macros included): nothing a driver, support or finance
    reads may fall back to English in nl or fr."""
    from pathlib import Path

    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parents[1]
    method_map = [("app/**.py", "python"), ("templates/**.html", "jinja2"), ("templates/**.txt", "jinja2")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}
    visible = lambda path: not Path(path).name.startswith(".")  # noqa: E731 - Babel's default also skips "_*"
    extracted = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(root), method_map, keywords=keywords, directory_filter=visible
    ):
        extracted.add(message if isinstance(message, str) else message[0])
    assert len(extracted) > 500
    for language in ("nl", "fr"):
        with open(root / f"app/translations/{language}/LC_MESSAGES/messages.po", "rb") as po:
            catalog = read_po(po, locale=language)
        translated = {
            (m.id if isinstance(m.id, str) else m.id[0])
            for m in catalog
            if m.id and (all(m.string) if isinstance(m.string, tuple) else m.string)
        }
        assert sorted(extracted - translated) == [], language


def test_quantities_are_exact_and_in_the_locale_notation(app):
    from app.i18n import format_quantity

    with app.test_request_context(), force_locale("nl"):
        assert format_quantity(Decimal("1234.5")) == "1.234,50"
        assert format_quantity(Decimal("7.255"), 1) == "7,3"
    with app.test_request_context(), force_locale("en"):
        assert format_quantity("0.1") == "0.10" and format_quantity(None) == ""
