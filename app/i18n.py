"""Language choice and locale-aware formatting (Flask-Babel + Babel).

The language is, in order: an explicit ``?lang=`` choice remembered in the session, the logged-in user's
preferred language, the browser's ``Accept-Language``, English.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import cast

from babel.numbers import format_currency, format_decimal
from flask import Flask, current_app, request, session
from flask_babel import format_date, format_datetime, get_locale
from flask_login import current_user

from app.money import from_minor_units


def supported_languages() -> tuple[str, ...]:
    return tuple(current_app.config["LANGUAGES"])


def select_locale() -> str:
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


def format_money(amount: Decimal | int, currency: str = "EUR", *, minor_units: bool = False) -> str:
    """Format an amount for the current locale: 'EUR 12.34' in en, '€ 12,34' in nl, '12,34 €' in fr."""
    # In minor units the amount is an int (from_minor_units refuses anything else with a MoneyError).
    value = from_minor_units(cast(int, amount), currency) if minor_units else Decimal(amount)
    return format_currency(value, currency, locale=str(get_locale()))


def format_moment(moment: dt.datetime | None, style: str = "medium") -> str:
    """A UTC datetime shown in the user's time zone and locale."""
    return "" if moment is None else format_datetime(moment, style)


def format_quantity(value: Decimal | int | str | None, decimals: int = 2) -> str:
    """A measured quantity (kWh, kW) with a fixed number of decimals in the current locale: '12.50' in en,
    '12,50' in nl and fr. Exact: the value stays a Decimal."""
    if value is None:
        return ""
    pattern = "#,##0." + "0" * decimals if decimals else "#,##0"
    return format_decimal(Decimal(value), format=pattern, locale=str(get_locale()), decimal_quantization=True)


def format_day(day: dt.date | None, style: str = "medium") -> str:
    return "" if day is None else format_date(day, style)


def register_template_helpers(app: Flask) -> None:
    app.jinja_env.filters["money"] = format_money
    app.jinja_env.filters["moment"] = format_moment
    app.jinja_env.filters["day"] = format_day
    app.jinja_env.filters["quantity"] = format_quantity

    @app.context_processor
    def inject_locale() -> dict[str, object]:
        return {"current_locale": str(get_locale()), "languages": supported_languages()}
