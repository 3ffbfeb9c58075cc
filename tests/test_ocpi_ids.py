"""The folded key of OCPI CiStrings: ASCII letters upper-cased, nothing else touched."""

from __future__ import annotations

from app.ocpi_ids import ci_equal, ci_key, ci_key_or_none


def test_ascii_letters_are_upper_cased_and_nothing_else_changes():
    assert ci_key("04de0001") == "04DE0001"
    assert ci_key("nl-tnm-c00122045-k") == "NL-TNM-C00122045-K"
    assert ci_key("Loc_1*a b") == "LOC_1*A B"
    # Not ASCII, so not a CiString: left as it is ("ß".upper() would be "SS", longer than the column allows).
    assert ci_key("straße") == "STRAßE"
    assert ci_key_or_none(None) is None and ci_key_or_none("x") == "X"


def test_equality_ignores_case_only():
    assert ci_equal("replay1", "REPLAY1") and ci_equal(None, None)
    assert not ci_equal("replay1", "replay2") and not ci_equal(None, "") and not ci_equal("a", None)
