"""The one country table: alpha-3 (OCPI locations) → alpha-2 (VAT tables, accounts), used by pricing and rating."""

from __future__ import annotations

from decimal import Decimal

from app.countries import ALPHA3_TO_ALPHA2, alpha2
from app.pricing import vat_rate

EU = {
    "AUT": "AT",
    "BEL": "BE",
    "BGR": "BG",
    "CYP": "CY",
    "CZE": "CZ",
    "DEU": "DE",
    "DNK": "DK",
    "ESP": "ES",
    "EST": "EE",
    "FIN": "FI",
    "FRA": "FR",
    "GRC": "GR",
    "HRV": "HR",
    "HUN": "HU",
    "IRL": "IE",
    "ITA": "IT",
    "LTU": "LT",
    "LUX": "LU",
    "LVA": "LV",
    "MLT": "MT",
    "NLD": "NL",
    "POL": "PL",
    "PRT": "PT",
    "ROU": "RO",
    "SVK": "SK",
    "SVN": "SI",
    "SWE": "SE",
}
EEA = {**EU, "ISL": "IS", "LIE": "LI", "NOR": "NO"}


def test_the_table_covers_the_eea():
    assert len(EU) == 27 and len(EEA) == 30
    missing = {code: two for code, two in EEA.items() if ALPHA3_TO_ALPHA2.get(code) != two}
    assert not missing


def test_alpha2_accepts_both_forms_in_any_case():
    assert alpha2(" nld ") == "NL"
    assert alpha2("be") == "BE"
    assert alpha2("CYP") == "CY"
    assert alpha2("XYZ") == "XYZ"  # unknown: handed on, the VAT table then refuses it


def test_vat_lookup_reads_the_same_table():
    assert vat_rate("MLT", {"MT": Decimal("18")}) == Decimal("18")
    assert vat_rate("ISL", {"IS": Decimal("24")}) == Decimal("24")
