"""Language choice and locale-aware formatting (Flask-Babel + Babel).

The language is, in order: an explicit ``?lang=`` choice remembered in the session (made before or after login:
a driver who chose French on the login page keeps French after logging in; their profile's language applies
when they never chose in this browser), the logged-in user's preferred language, the browser's
``Accept-Language``, English. Outside a request (CLI, workers) it is the default locale; emails choose the
recipient's language themselves (``app.mail``).

Dates are day-month-year in every language: English uses the British forms ("7 Dec 2026", "07/12/2026"),
never the American month-first order.

Messages translated later, in another language than the request's, are marked with :func:`N_` (Babel extracts
it by default): an email subject is a msgid translated in the recipient's language when it is sent. A service
error that reaches people carries a lazy message (``lazy_gettext`` with its parameters), so ``str(error)``
renders it in the language of the page that shows it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import cast

from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.numbers import format_currency, format_decimal
from flask import Flask, current_app, has_request_context, request, session
from flask_babel import LazyString, get_locale, get_timezone
from flask_login import current_user

from app.money import from_minor_units

# Where a language's own Babel locale writes dates month-first, the locale whose date forms we use instead.
DATE_LOCALES = {"en": "en_GB"}


def gettext_noop(message: str) -> str:
    """Mark ``message`` as a msgid without translating it now (it is translated later, in the right language)."""
    return message


N_ = gettext_noop  # the name Babel's extractor knows (its default keywords include N_)


def message_of(error: BaseException) -> str | LazyString:
    """The message ``error`` carries, still lazy when it is one: rendered where it is read, in that language (a
    page's, an API caller's). Translating ``str(error)`` instead would look up formatted text, which is no msgid."""
    message = error.args[0] if error.args else ""
    return message if isinstance(message, LazyString | str) else str(message)


def supported_languages() -> tuple[str, ...]:
    return tuple(current_app.config["LANGUAGES"])


def select_locale() -> str:
    if not has_request_context():
        return str(current_app.config["BABEL_DEFAULT_LOCALE"])
    languages = supported_languages()
    chosen = request.args.get("lang")
    if chosen in languages:
        session["lang"] = chosen
        return chosen
    remembered = session.get("lang")
    if isinstance(remembered, str) and remembered in languages:
        return remembered
    if getattr(current_user, "is_authenticated", False):
        preferred = current_user.preferred_language
        if isinstance(preferred, str) and preferred in languages:
            return preferred
    return request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]


def date_locale(language: str | None = None) -> str:
    """The Babel locale that writes dates for ``language`` (the current one by default): day-month-year."""
    language = language or str(get_locale() or "en")
    return DATE_LOCALES.get(language, language)


def format_money(amount: Decimal | int, currency: str = "EUR", *, minor_units: bool = False) -> str:
    """Format an amount for the current locale: 'EUR 12.34' in en, '€ 12,34' in nl, '12,34 €' in fr."""
    # In minor units the amount is an int (from_minor_units refuses anything else with a MoneyError).
    value = from_minor_units(cast(int, amount), currency) if minor_units else Decimal(amount)
    return format_currency(value, currency, locale=str(get_locale()))


def format_moment(moment: dt.datetime | str | None, style: str = "medium", *, zone: bool = False) -> str:
    """A UTC datetime (or its ISO 8601 text, as a frozen invoice keeps it) shown in the pages' time zone
    (``BABEL_DEFAULT_TIMEZONE``, the seller's) and locale, day first; with ``zone`` the time zone's abbreviation
    follows ("7 Dec 2026, 14:30:00 CET"), for pages read by people elsewhere."""
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
        moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
    tzinfo = get_timezone()
    text = str(babel_format_datetime(moment, style, tzinfo=tzinfo, locale=date_locale()))
    if zone:
        # The time zone database's abbreviation ("CET", "CEST"): Babel's short names are missing in some
        # languages (French gets "+0100").
        text += " " + str(moment.astimezone(tzinfo).tzname() or tzinfo)
    return text


def format_quantity(value: Decimal | int | str | None, decimals: int = 2) -> str:
    """A measured quantity (kWh, kW) with a fixed number of decimals in the current locale: '12.50' in en,
    '12,50' in nl and fr. Exact: the value stays a Decimal."""
    if value is None:
        return ""
    pattern = "#,##0." + "0" * decimals if decimals else "#,##0"
    return format_decimal(Decimal(value), format=pattern, locale=str(get_locale()), decimal_quantization=True)


def format_day(day: dt.date | None, style: str = "medium") -> str:
    """A calendar day, day first in every language: "7 Dec 2026", "7 déc. 2026", "7 dec 2026". A moment (UTC
    datetime) is the day it is in the pages' time zone: Babel would take its UTC date, and midnight of the 1st in
    Brussels is still the 31st in UTC."""
    if isinstance(day, dt.datetime) and day.tzinfo is not None:
        day = day.astimezone(get_timezone()).date()
    return "" if day is None else str(babel_format_date(day, style, locale=date_locale()))


def format_signed_percent(value: Decimal | int | str | None, decimals: int = 1) -> str:
    """A change or share in percent with its sign: "+12.5 %" / "−3,0 %"; zero has none. ``value`` is already in
    percent (12.5 means 12.5 %)."""
    if value is None:
        return ""
    number = Decimal(value)
    text = format_quantity(abs(number), decimals)
    sign = "+" if number > 0 else "−" if number < 0 else ""
    return f"{sign}{text}\u00a0%"


def register_template_helpers(app: Flask) -> None:
    app.jinja_env.filters["money"] = format_money
    app.jinja_env.filters["moment"] = format_moment
    app.jinja_env.filters["day"] = format_day
    app.jinja_env.filters["quantity"] = format_quantity
    app.jinja_env.filters["signed_percent"] = format_signed_percent

    @app.context_processor
    def inject_locale() -> dict[str, object]:
        return {"current_locale": str(get_locale()), "languages": supported_languages()}
