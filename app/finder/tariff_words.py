"""A CPO tariff in words, as a driver reads it: "€0.35/kWh, €1.00 per hour after 2 h (excl. VAT)".

Built from the parsed tariff (:mod:`app.pricing`), element by element in the CPO's order: each price component
with the restrictions that limit it (time of day, days, duration, energy, power, current, dates). Restrictions
that restrict nothing, as real feeds send them (00:00 to 23:59 every day, a minimum duration of 0), are left
out. A component that can never apply because an earlier one of the same kind has no restriction is left out;
one that follows restricted ones of its kind reads "otherwise". Reservation elements are left out: drivers do not
reserve through us. Prices are the CPO's, excl. VAT, as OCPI publishes them (exact: €0.388 stays €0.388); the
driver's all-in price is :mod:`app.finder.prices`.

Words go through Flask-Babel in the request's locale (English outside a request).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from babel.dates import get_day_names
from babel.numbers import format_currency, format_decimal
from flask import has_request_context
from flask_babel import get_locale, gettext

from app.pricing import Restrictions, Tariff, TariffElement
from app.pricing.model import ENERGY, PARKING_TIME, TIME

_WHOLE_DAY = (0, 24 * 60)
_LAST_MINUTE = 24 * 60 - 1  # "23:59" as feeds write the end of the day
_WEEKDAYS = frozenset(range(5))
_WEEKEND = frozenset({5, 6})


@dataclass(frozen=True, slots=True)
class TariffWords:
    text: str  # our wording, in the current locale
    alt_text: str | None  # the CPO's own ``tariff_alt_text`` in the current language (else the first), if any


def _(text: str, **values: object) -> str:
    """Flask-Babel's gettext in a request (the babel extractor finds the ``_(...)`` calls as usual); English
    outside one (a command, a job: the locale is chosen per request)."""
    if has_request_context():
        return str(gettext(text, **values))
    return text % values if values else text


def _locale() -> str:
    return str(get_locale() or "en") if has_request_context() else "en"


def _money(amount: Decimal, currency: str) -> str:
    return format_currency(amount, currency, locale=_locale(), currency_digits=False, decimal_quantization=False)


def _number(value: Decimal) -> str:
    return format_decimal(value.normalize(), locale=_locale())


def _clock(minutes: int) -> str:
    minutes = min(minutes, 24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours and minutes:
        return _("%(hours)s h %(minutes)s min", hours=hours, minutes=minutes)
    if hours:
        return _("%(hours)s h", hours=hours)
    return _("%(minutes)s min", minutes=max(minutes, 1))  # under a minute reads "1 min", never "0 min"


def _days(days: frozenset[int]) -> str | None:
    if len(days) == 7:
        return None
    if days == _WEEKDAYS:
        return _("on weekdays")
    if days == _WEEKEND:
        return _("at weekends")
    names = get_day_names("abbreviated", locale=_locale())
    return _("on %(days)s", days=", ".join(names[day] for day in sorted(days)))


def _conditions(r: Restrictions, cutoff: str) -> list[str]:
    words = []
    start = r.start_time if r.start_time is not None else 0
    end = r.end_time if r.end_time is not None else 24 * 60
    if end == _LAST_MINUTE:
        end = 24 * 60
    if (r.start_time is not None or r.end_time is not None) and (start, end) != _WHOLE_DAY:
        words.append(_("from %(start)s to %(end)s", start=_clock(start), end=_clock(end)))
    if r.day_of_week is not None and (days := _days(r.day_of_week)):
        words.append(days)
    if r.min_duration:
        words.append(_("after %(duration)s", duration=_duration(r.min_duration)))
    if r.max_duration is not None:
        words.append(_("for the first %(duration)s", duration=_duration(r.max_duration)))
    if r.min_kwh:
        words.append(_("after %(kwh)s kWh", kwh=_number(r.min_kwh)))
    if r.max_kwh is not None:
        words.append(_("up to %(kwh)s kWh", kwh=_number(r.max_kwh)))
    if r.min_power:
        words.append(_("from %(kw)s kW", kw=_number(r.min_power)))
    if r.max_power is not None:
        words.append(_("below %(kw)s kW", kw=_number(r.max_power)))
    if r.min_current:
        words.append(_("from %(amperes)s A", amperes=_number(r.min_current)))
    if r.max_current is not None:
        words.append(_("below %(amperes)s A", amperes=_number(r.max_current)))
    if r.start_date is not None and r.start_date > cutoff:  # a start already past restricts nothing any more
        words.append(_("from %(date)s", date=r.start_date))
    if r.end_date is not None:
        words.append(_("until %(date)s", date=r.end_date))
    return words


def _component(dimension: str, price: Decimal, currency: str) -> str:
    amount = _money(price, currency)
    if dimension == ENERGY:
        return _("%(price)s/kWh", price=amount)
    if dimension == TIME:
        return _("%(price)s per hour", price=amount)
    if dimension == PARKING_TIME:
        return _("%(price)s per hour parked", price=amount)
    return _("%(price)s per session", price=amount)


def _element_words(element: TariffElement, currency: str, seen: dict[str, bool], cutoff: str) -> list[str]:
    """The components of one element still able to apply, each with the element's conditions. ``seen``: per
    dimension, whether an earlier element priced it (True: without restriction, so this one never applies)."""
    conditions = _conditions(element.restrictions, cutoff)
    parts = []
    for component in element.price_components:
        dimension = component.type
        if seen.get(dimension) is True:
            continue  # an earlier unrestricted component of this kind always wins
        phrase = _component(dimension, component.price, currency)
        if conditions:
            phrase = f"{phrase} {' '.join(conditions)}"
        elif dimension in seen:
            phrase = _("%(price)s otherwise", price=phrase)
        parts.append(phrase)
        seen[dimension] = seen.get(dimension, False) or not conditions
    return parts


def tariff_in_words(tariff: Tariff, alt_texts: object = None, *, today: dt.date | None = None) -> TariffWords:
    """The tariff in words (see the module); ``alt_texts`` is the tariff's ``tariff_alt_text`` as sent. A
    ``start_date`` before ``today`` (UTC; a day's margin for every zone) is left out: it restricts nothing now."""
    cutoff = ((today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=1)).isoformat()
    return TariffWords(text=_text(tariff, _locale(), has_request_context(), cutoff), alt_text=_alt_text(alt_texts))


@lru_cache(maxsize=4096)
def _text(tariff: Tariff, locale: str, translated: bool, cutoff: str) -> str:
    """The words of a parsed tariff in a locale: a pure function of them (a parsed tariff is immutable and
    hashable), kept per process because formatting amounts is slow (~0.1 ms each with babel)."""
    seen: dict[str, bool] = {}
    parts: list[str] = []
    for element in tariff.elements:
        if element.restrictions.reservation is not None:
            continue
        parts.extend(_element_words(element, tariff.currency, seen, cutoff))
    if tariff.min_price is not None and tariff.min_price.excl_vat > 0:
        parts.append(_("at least %(price)s", price=_money(tariff.min_price.excl_vat, tariff.currency)))
    if tariff.max_price is not None:
        parts.append(_("at most %(price)s", price=_money(tariff.max_price.excl_vat, tariff.currency)))
    return _("%(prices)s (excl. VAT)", prices=", ".join(parts)) if parts else _("free of charge")


def _alt_text(alt_texts: object) -> str | None:
    if not isinstance(alt_texts, list):
        return None
    texts = [item for item in alt_texts if isinstance(item, dict) and isinstance(item.get("text"), str)]
    if not texts:
        return None
    language = _locale().split("_")[0]
    chosen = next((item for item in texts if str(item.get("language", "")).lower() == language), texts[0])
    return str(chosen["text"])
