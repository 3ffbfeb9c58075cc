"""Translations and locale formatting for invoice documents, without a request or an app context.

Labels are looked up first in the invoice catalog next to this module (``translations/<lang>/LC_MESSAGES/
invoice.po``), then in the app's catalogs (``app/translations``, the directory of ``BABEL_TRANSLATION_DIRECTORIES``),
then fall back to the English msgid. Both are read from the ``.po`` sources (``.mo`` files are build output and
git-ignored), once per process. The templates mark every label with ``_()``, so ``pybabel extract`` (babel.cfg
covers ``templates/**.html``) picks them up when the invoice catalog is merged into the app's one.

Rendering is explicit about its locale instead of relying on ``flask_babel.get_locale()``: the document
must be in the snapshot's language whoever triggers the render (a Celery worker, a staff re-render in another
language's session, a CLI run), and it must not need an app context.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import gettext
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent

from app.billing.documents.common import DEFAULT_TIMEZONE
from app.config import PROJECT_ROOT
from app.i18n import date_locale
from app.money import from_minor_units

DOCUMENT_LANGUAGES = ("nl", "fr", "en")
DEFAULT_LANGUAGE = "en"

INVOICE_CATALOG_DIR = Path(__file__).resolve().parent / "translations"
APP_CATALOG_DIR = PROJECT_ROOT / "app" / "translations"


def document_language(snapshot: dict[str, Any]) -> str:
    language = (snapshot.get("language") or DEFAULT_LANGUAGE).lower().split("-")[0].split("_")[0]
    return language if language in DOCUMENT_LANGUAGES else DEFAULT_LANGUAGE


def _load_po(path: Path) -> gettext.NullTranslations:
    if not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source)
    buffer = BytesIO()
    # Same policy as `make translations` (pybabel compile --use-fuzzy).
    write_mo(buffer, catalog, use_fuzzy=True)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@functools.cache
def translations_for(language: str) -> gettext.NullTranslations:
    """The invoice catalog, falling back to the app's catalog, falling back to the msgid."""
    invoice = _load_po(INVOICE_CATALOG_DIR / language / "LC_MESSAGES" / "invoice.po")
    invoice.add_fallback(_load_po(APP_CATALOG_DIR / language / "LC_MESSAGES" / "messages.po"))
    return invoice


class Gettext(Protocol):
    """What :func:`make_gettext` returns: ``_(message, **variables)``."""

    def __call__(self, message: str, **variables: object) -> str: ...


def make_gettext(language: str) -> Gettext:
    """``_('Due on %(date)s', date=...)``: translate, then interpolate the keyword arguments."""
    catalog = translations_for(language)

    def _(message: str, **variables: object) -> str:
        text = catalog.gettext(message)
        return text % variables if variables else text

    return _


class Formatter:
    """Money, numbers, dates and times for one document language."""

    def __init__(self, language: str, currency: str, timezone: str = DEFAULT_TIMEZONE) -> None:
        self.locale = language
        self.currency = currency
        self.zone = ZoneInfo(timezone)

    def money(self, minor: int | None) -> str:
        if minor is None:
            return ""
        return format_currency(from_minor_units(minor, self.currency), self.currency, locale=self.locale)

    def unit_price(self, value: Decimal) -> str:
        """A price per unit with four decimals in the locale's currency format: "€ 0,3450", "0,3450 €"."""
        locale = Locale.parse(self.locale)
        pattern = copy.copy(locale.currency_formats["standard"])
        pattern.frac_prec = (4, 4)
        text: str = pattern.apply(value, locale, currency=self.currency, currency_digits=False)
        return text

    def decimal(self, value: str | Decimal | None, pattern: str = "#,##0.00#") -> str:
        if value in (None, ""):
            return ""
        return format_decimal(Decimal(value), pattern, locale=self.locale)

    def rate(self, value: str | Decimal) -> str:
        """A VAT rate given in percent ("21", "5.5") as "21 %", "21%", "5,5 %" per locale."""
        return format_percent(Decimal(value) / 100, "#,##0.##%", locale=self.locale)

    def date(self, value: str | dt.date | None, style: str = "medium") -> str:
        if not value:
            return ""
        day = dt.date.fromisoformat(value) if isinstance(value, str) else value
        return format_date(day, style, locale=date_locale(self.locale))  # day first, in English too

    def local(self, value: str | dt.datetime) -> dt.datetime:
        moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(self.zone)

    def short_date(self, value: str | dt.datetime) -> str:
        return format_date(self.local(value).date(), "short", locale=date_locale(self.locale))

    def time(self, value: str | dt.datetime) -> str:
        return format_datetime(self.local(value), "HH:mm", locale=self.locale)

    def country(self, code: str | None) -> str:
        if not code:
            return ""
        # Babel's locale data is a mapping of Any: the territory names are strings.
        name: str = Locale.parse(self.locale).territories.get(code.upper(), code)
        return name

    @staticmethod
    def iban(value: str | None) -> str:
        """Grouped by four, as printed on paper: BE71 0961 2345 6769."""
        compact = "".join((value or "").split()).upper()
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))

    @staticmethod
    def duration(minutes: int | None) -> str:
        if minutes is None:
            return ""
        hours, rest = divmod(int(minutes), 60)
        return f"{hours}:{rest:02d}"
