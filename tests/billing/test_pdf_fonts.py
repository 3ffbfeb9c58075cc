"""The trimmed invoice fonts in static/fonts/ (see the README there): what they must still cover and contain.

The files are cut to European scripts and carry their kerning in the legacy ``kern`` table instead of ``GPOS``
so that embedding them costs less. These tests keep a later font update from silently dropping a character an
invoice prints, or from bringing the slow ``GPOS`` table back.
"""

from __future__ import annotations

import copy
import re
from io import BytesIO

import pytest
from babel import Locale
from babel.messages.pofile import read_po
from fontTools.ttLib import TTFont
from pypdf import PdfReader

from app.billing.documents import render_invoice_pdf
from app.billing.documents.fetcher import STATIC_ROOT
from app.billing.documents.i18n import DOCUMENT_LANGUAGES, INVOICE_CATALOG_DIR
from app.billing.documents.pdf import STYLESHEET, TEMPLATE_DIR
from app.billing.invoicing.snapshot import SAMPLE_SNAPSHOT

# Names and places in every EU alphabet, plus the neighbours' Latin letters (Turkish, Romanian comma-below,
# Vietnamese stacked accents, Icelandic) and the typography the formatter and translators use.
EU_ALPHABETS = (
    "AÁÀÂÄÃÅĀĄĂÆBCĆČÇDĎĐÐEÉÈÊËĒĖĘĚFGĞĢHIÍÌÎÏĪĮİIJKĶLĹĻĽŁMNŃŅŇÑOÓÒÔÖÕŐØŒPQRŔŘSŚŠŞȘTŤŢȚÞUÚÙÛÜŪŮŰŲVWXYÝŸZŹŻŽ"
    "aáàâäãåāąăæbcćčçdďđðeéèêëēėęěfgğģhiíìîïīįıijkķlĺļľłmnńņňñoóòôöõőøœpqrŕřsśšşșßtťţțþuúùûüūůűųvwxyýÿzźżž"
    "ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩαβγδεζηθικλμνξοπρσςτυφχψωάέήίόύώϊϋΐΰΆΈΉΊΌΎΏ"
    "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдеёжзийклмнопрстуфхцчшщъыьэюяЄєІіЇїҐґЎў"
    "ẠảẤầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹƠơƯư"
    "0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ «»‘’‚“”„–—…·•€£$¥%‰°±×÷½¼¾²³№™®©§¶†"
    "\u00a0\u202f\u2009"
)


def font_files() -> list[str]:
    """The files invoice.css loads with @font-face (relative to static/)."""
    files = re.findall(r'src:\s*url\("([^"]+)"\)', STYLESHEET.read_text(encoding="utf-8"))
    assert files
    return files


def printed_characters() -> set[str]:
    """Every character the templates, the catalogs and Babel's dates for the document languages can print."""
    text = [(TEMPLATE_DIR / "invoice.html").read_text(encoding="utf-8"), EU_ALPHABETS]
    for language in DOCUMENT_LANGUAGES:
        path = INVOICE_CATALOG_DIR / language / "LC_MESSAGES" / "invoice.po"
        if path.is_file():
            with path.open("rb") as source:
                text += [f"{message.id}{message.string}" for message in read_po(source) if message.id]
        locale = Locale.parse(language)
        for width in ("abbreviated", "wide"):
            text += [*locale.months["format"][width].values(), *locale.days["format"][width].values()]
        text.append(locale.number_symbols["latn"]["group"] + locale.number_symbols["latn"]["decimal"])
        text += list(locale.territories.values())  # fmt.country, for any buyer country
    return {char for char in "".join(text) if char.isprintable() or char in "\u00a0\u202f\u2009"} - {"\n", "\t"}


@pytest.mark.parametrize("path", font_files())
def test_invoice_font_covers_what_an_invoice_prints(path: str) -> None:
    font = TTFont(STATIC_ROOT / path)
    cmap = font.getBestCmap()
    missing = sorted(char for char in printed_characters() if ord(char) not in cmap)
    assert not missing, f"{path} lacks {''.join(missing)!r}"


@pytest.mark.parametrize("path", font_files())
def test_invoice_font_kerns_without_gpos(path: str) -> None:
    font = TTFont(STATIC_ROOT / path)
    assert "GPOS" not in font, "GPOS makes every render parse it (static/fonts/README.md); kern from 'kern'"
    pairs = font["kern"].kernTables[0].kernTable
    cmap = font.getBestCmap()
    assert pairs[(cmap[ord("V")], cmap[ord("o")])] < 0  # kerning is still there
    assert "GSUB" in font  # ligatures and localised forms stay


def test_european_names_render_with_the_invoice_fonts_only() -> None:
    snapshot = copy.deepcopy(SAMPLE_SNAPSHOT)
    snapshot["language"] = "fr"
    snapshot["buyer"]["name"] = "Žofia Dvořáková-Öztürk, Ștefan Țîrcă, Nguyễn Thị Ảnh, Αθηνά Παπαδοπούλου"
    snapshot["buyer"]["street"] = "Дмитрий Иванов, Łódź Świętokrzyska 12"
    reader = PdfReader(BytesIO(render_invoice_pdf(snapshot)))
    fonts = {
        str(font.get_object()["/BaseFont"]) for page in reader.pages for font in page["/Resources"]["/Font"].values()
    }
    # A character missing from the invoice fonts would come from a system font (Fontconfig fallback).
    assert all(name.split("+", 1)[1].startswith(("Invoice-Sans", "Invoice-Condensed")) for name in fonts), fonts
    text = "".join(page.extract_text() for page in reader.pages)
    for name in ("Dvořáková-Öztürk", "Nguyễn Thị Ảnh", "Παπαδοπούλου", "Дмитрий Иванов", "Łódź"):
        assert name in text, name
