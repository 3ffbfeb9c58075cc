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
    """A driver who never chose a language in this browser gets their account's language."""
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
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None, "N_": None}
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


def test_language_chosen_before_login_survives_the_login(client):
    """The choice made on the login page wins over the account's language: the driver asked for it in this
    browser; the account's language applies only when they never chose (see app.i18n)."""
    user = make_user(language="nl")
    client.get("/login?lang=fr")
    login(client, user)
    page = client.get("/dashboard", headers={"Accept-Language": "en"})
    assert '<html lang="fr">' in page.get_data(as_text=True)


def test_english_dates_are_day_month_year(app):
    from app.i18n import format_day, format_moment

    day = dt.date(2026, 12, 7)
    moment = dt.datetime(2026, 12, 7, 13, 30, tzinfo=dt.UTC)
    with app.test_request_context(), force_locale("en"):
        assert format_day(day) == "7 Dec 2026"
        assert format_day(day, "long") == "7 December 2026"
        assert format_day(day, "short") == "07/12/2026"
        assert format_moment(moment, "short") == "07/12/2026, 14:30"
        assert format_moment(moment, "short", zone=True) == "07/12/2026, 14:30 CET"
    with app.test_request_context(), force_locale("nl"):
        assert format_day(day, "short") == "07-12-2026"


def test_signed_percentages(app):
    from app.i18n import format_signed_percent

    with app.test_request_context(), force_locale("nl"):
        assert format_signed_percent(Decimal("12.34")) == "+12,3\xa0%"
        assert format_signed_percent(Decimal("-3")) == "\u22123,0\xa0%"
        assert format_signed_percent(Decimal("0")) == "0,0\xa0%"
        assert format_signed_percent(None) == ""


def _app_sources():  # type: ignore[no-untyped-def]
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    return [(path, path.read_text(encoding="utf-8")) for path in sorted((root / "app").rglob("*.py"))]


def test_no_message_is_translated_after_formatting():
    """``_(str(error))`` looks up the already formatted English text: a message with a parameter is never found
    and reaches a Dutch page in English. Errors carry a lazy message (``_l`` with its parameters) that
    ``str(error)`` renders in the page's language."""
    import re

    pattern = re.compile(r"\b(?:_|gettext|lazy_gettext|_l)\(\s*(?:str\(|f[\"'])")
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path, text in _app_sources()
        for number, line in enumerate(text.splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


# Where an email subject is handed over, by callee: the position of ``subject`` among the positional arguments.
SUBJECT_POSITION = {
    "send_template": 3,
    "queue_template": 3,
    "PendingEmail": 3,
    "render_template_mail": 2,
    "billing_emails": 2,
}
MARKERS = {"N_", "gettext_noop", "_l", "lazy_gettext"}


def _marked(node) -> bool:  # type: ignore[no-untyped-def]
    """A subject is a marked msgid (``N_("...")``), a choice between marked msgids, or a value passed through
    (a parameter, an attribute: checked where it was made)."""
    import ast

    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        return name in MARKERS and len(node.args) == 1 and isinstance(node.args[0], ast.Constant)
    if isinstance(node, ast.IfExp):
        return _marked(node.body) and _marked(node.orelse)
    return isinstance(node, ast.Name | ast.Attribute)


def test_email_subjects_are_marked_msgids():
    """A subject is translated in the recipient's language when the mail is sent (``app.mail``): it must be a
    msgid the catalogues know, so a plain string would go out in English to a Dutch driver."""
    import ast

    offenders = []
    for path, text in _app_sources():
        for node in ast.walk(ast.parse(text)):
            subjects = []
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name in SUBJECT_POSITION:
                    subjects += [keyword.value for keyword in node.keywords if keyword.arg == "subject"]
                    if len(node.args) > SUBJECT_POSITION[name]:
                        subjects.append(node.args[SUBJECT_POSITION[name]])
            elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(target, ast.Name) and target.id.lower() == "subject" for target in targets):
                    subjects.append(node.value)
            offenders += [f"{path.name}:{subject.lineno}" for subject in subjects if not _marked(subject)]
    assert offenders == []


def test_email_subject_is_sent_in_the_recipients_language(client):
    from app.accounts.services import confirmation_email
    from app.mail import render_template_mail

    user = make_user(language="fr", confirmed=False)
    email = confirmation_email(user)
    app = client.application
    with app.test_request_context("/?lang=nl"):
        subject, _text = render_template_mail(email.template, email.language, email.subject, **email.context)
    with app.test_request_context(), force_locale("fr"):
        from flask_babel import gettext

        assert subject == gettext("Confirm your email address")
    assert email.language == "fr"


def test_a_dutch_page_shows_a_service_error_with_parameters_in_dutch(client, monkeypatch):
    """The error of a service (a month that has not ended) is formatted in the page's language, parameters
    included. The Dutch entry is the one the translator adds to the catalogue."""
    from flask_babel import force_locale as forced
    from flask_babel import get_translations

    from app.accounts.models import Role
    from app.db import utcnow
    from tests.helpers import submit_form

    msgid = "%(period)s has not ended yet: a run may cover only a month that has ended (from %(day)s on)."
    with client.application.test_request_context(), forced("nl"):
        catalog = get_translations()._catalog  # type: ignore[attr-defined]
    monkeypatch.setitem(
        catalog, msgid, "%(period)s is nog niet voorbij: factureer alleen een afgelopen maand (vanaf %(day)s)."
    )
    login(client, make_user(Role.FINANCE))
    month = utcnow().strftime("%Y-%m")
    page = submit_form(
        client, "/backoffice/finance/runs?lang=nl", {"period": month}, form_url="/backoffice/finance/runs?lang=nl"
    )
    text = page.get_data(as_text=True)
    assert page.status_code == 400
    assert f"{month} is nog niet voorbij" in text and "has not ended" not in text
    year, number = (int(part) for part in month.split("-"))
    assert (dt.date(year + number // 12, number % 12 + 1, 1)).isoformat() in text
