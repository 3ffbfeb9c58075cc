"""eMAID format and ISO 15118 / eMI3 check digit: published vectors, parsing, minting, and the error-detection
properties the matrix algorithm guarantees. Pure functions: no app, no database."""

from __future__ import annotations

import random
import re
import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.cards.emaid import (
    ALPHABET,
    Emaid,
    InvalidEmaidError,
    compute_check_digit,
    mint_emaid,
    parse_emaid,
)

# Published test vectors (eMI3 "Check Digit Calculation for Contract-IDs", also used by
# ShellRechargeSolutionsEU/mobilityid's CheckDigitSpec): 14 normalised characters -> check character.
VECTORS = {
    "NN123ABCDEFGHI": "T",
    "FRXYZ123456789": "2",
    "ITA1B2C3E4F5G6": "4",
    "ESZU8WOX834H1D": "R",
    "PT73902837ABCZ": "Z",
    "DE83DUIEN83QGZ": "D",
    "DE83DUIEN83ZGQ": "M",
    "DE8AA001234567": "0",
    "NLTNMC00122045": "K",
    "NLTNM000122045": "U",
    "DE8AACA2B3C4D5": "L",
    "NL123C10028948": "M",
}

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)

alnum = st.sampled_from(ALPHABET)
country_codes = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=2, max_size=2)
provider_ids = st.text(alnum, min_size=3, max_size=3)
# Any 14 characters the algorithm accepts (not only valid eMAIDs: the check digit is defined on all of them).
bodies = st.text(alnum, min_size=14, max_size=14)


def _valid(fifteen: str) -> bool:
    return compute_check_digit(fifteen[:14]) == fifteen[14]


def _with_check_digit(body: str) -> str:
    return body + compute_check_digit(body)


# --- check digit --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "expected"), VECTORS.items())
def test_published_vectors(body: str, expected: str) -> None:
    assert compute_check_digit(body) == expected


@pytest.mark.parametrize(("body", "expected"), VECTORS.items())
def test_published_vectors_parse_in_every_form(body: str, expected: str) -> None:
    hyphenated = f"{body[:2]}-{body[2:5]}-{body[5:]}-{expected}"
    for text in (body + expected, hyphenated, hyphenated.lower(), (body + expected).lower()):
        emaid = parse_emaid(text)
        assert str(emaid) == hyphenated
        assert emaid.compact == body + expected


def test_check_digit_accepts_lower_case() -> None:
    assert compute_check_digit("nltnm000122045") == "U"


@pytest.mark.parametrize(
    "body", ["", "NLTNM00012204", "NLTNM0001220455", "NL-TNM-000122", "NLTNM00012204é", "DE٨٣DUIEN٨٣QGZ"]
)
def test_check_digit_rejects_bad_input(body: str) -> None:
    with pytest.raises(InvalidEmaidError):
        compute_check_digit(body)


# --- parsing ------------------------------------------------------------------------------------------------------


def test_parse_splits_and_normalises() -> None:
    emaid = parse_emaid("  nl-tnm-000122045-u\n")
    assert emaid == Emaid("NL", "TNM", "000122045", "U")
    assert str(emaid) == "NL-TNM-000122045-U"
    assert emaid.compact == "NLTNM000122045U"


def test_compact_and_hyphenated_are_the_same_id() -> None:
    assert parse_emaid("NLTNM000122045U") == parse_emaid("NL-TNM-000122045-U") == parse_emaid("nlTnm000122045u")


def test_missing_check_digit_is_rejected_by_default_and_names_the_full_id() -> None:
    with pytest.raises(InvalidEmaidError, match=r"no check digit.*NL-TNM-000122045-U"):
        parse_emaid("NL-TNM-000122045")
    with pytest.raises(InvalidEmaidError, match="no check digit"):
        parse_emaid("NLTNM000122045")


def test_missing_check_digit_is_computed_when_optional() -> None:
    expected = Emaid("NL", "TNM", "000122045", "U")
    assert parse_emaid("NL-TNM-000122045", require_check_digit=False) == expected
    assert parse_emaid("nltnm000122045", require_check_digit=False) == expected


@pytest.mark.parametrize("text", ["NL-TNM-000122045-X", "NLTNM000122045X", "nl-tnm-000122045-x"])
@pytest.mark.parametrize("required", [True, False])
def test_wrong_check_digit_is_rejected_saying_expected_and_given(text: str, required: bool) -> None:
    with pytest.raises(InvalidEmaidError, match="expected 'U', given 'X'"):
        parse_emaid(text, require_check_digit=required)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "required"),
        ("   ", "required"),
        ("NL-TNM-00012204-U", "shape"),  # instance too short
        ("NL-TNM-0001220455-U", "shape"),  # instance too long
        ("NLD-TN-000122045-U", "shape"),  # parts of the wrong length
        ("NL-TNM-000122045-UU", "shape"),  # two-character check digit
        ("NL-TNM-000122045-", "shape"),  # trailing separator
        ("NL-TNM-000122045-U-1", "shape"),  # too many parts
        ("NL-TNM000122045U", "shape"),  # separators used inconsistently
        ("NL--TNM-000122045-U", "shape"),
        ("NLTNM00012204", "15 characters"),  # compact, too short
        ("NLTNM000122045UX", "15 characters"),  # compact, too long
        ("NL TNM 000122045 U", "Invalid character ' '"),
        ("NL*TNM*000122045*U", "Invalid character '*'"),
        ("NL-T|M-000122045-U", "Invalid character '|'"),
        ("NL-TNM-00012204é-U", "Invalid character 'é'"),
        ("DE-8AA-٠01234567-0", "Invalid character"),  # non-ASCII digit
        ("1L-TNM-000122045-U", "country code must be two letters"),
        ("N1TNM000122045U", "country code must be two letters"),
    ],
)
def test_wrong_shapes_are_rejected(text: str, message: str) -> None:
    with pytest.raises(InvalidEmaidError, match=re.escape(message)):
        parse_emaid(text)


def test_invalid_emaid_error_is_a_value_error() -> None:
    assert issubclass(InvalidEmaidError, ValueError)


def test_general_instance_accepted_when_parsing() -> None:
    """We mint ``C`` + 8, but ids of other providers may use any 9 alphanumerics."""
    assert parse_emaid("DE8AA0012345670").instance == "001234567"
    assert parse_emaid("NN-123-ABCDEFGHI-T").provider == "123"


# --- the Emaid value ----------------------------------------------------------------------------------------------


def test_emaid_construction_validates() -> None:
    with pytest.raises(InvalidEmaidError, match="expected 'U', given 'X'"):
        Emaid("NL", "TNM", "000122045", "X")
    with pytest.raises(InvalidEmaidError, match="country code"):
        Emaid("nl", "TNM", "000122045", "U")
    with pytest.raises(InvalidEmaidError, match="eMA instance"):
        Emaid("NL", "TNM", "00012204", "U")


def test_emaid_is_immutable_and_hashable() -> None:
    emaid = parse_emaid("NL-TNM-000122045-U")
    with pytest.raises(AttributeError):
        emaid.check_digit = "X"  # type: ignore[misc]
    assert len({emaid, parse_emaid("NLTNM000122045U")}) == 1


# --- minting ------------------------------------------------------------------------------------------------------


def test_mint_shape_and_round_trip() -> None:
    emaid = mint_emaid("nl", "vol")
    assert (emaid.country, emaid.provider) == ("NL", "VOL")
    assert emaid.instance[0] == "C"
    assert len(emaid.instance) == 9
    assert set(emaid.instance[1:]) <= set(ALPHABET)
    assert parse_emaid(str(emaid)) == emaid
    assert parse_emaid(emaid.compact) == emaid


def test_mint_is_reproducible_with_a_seeded_rng() -> None:
    first = mint_emaid("NL", "VOL", random.Random(42))
    second = mint_emaid("NL", "VOL", random.Random(42))
    assert first == second


def test_mint_accepts_the_secrets_module_explicitly() -> None:
    assert parse_emaid(str(mint_emaid("BE", "V01", secrets))).country == "BE"


def test_mint_draws_from_the_whole_alphabet() -> None:
    rng = random.Random(7)
    seen = set()
    for _ in range(200):
        seen |= set(mint_emaid("NL", "VOL", rng).instance[1:])
    assert seen == set(ALPHABET)


@pytest.mark.parametrize(
    ("country", "provider"),
    [("N", "VOL"), ("NLD", "VOL"), ("N1", "VOL"), ("NL", "VO"), ("NL", "V-L"), ("ß", "VOL"), ("NL", "VÖL")],
)
def test_mint_rejects_bad_country_or_provider(country: str, provider: str) -> None:
    with pytest.raises(InvalidEmaidError):
        mint_emaid(country, provider)


# --- properties ---------------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(country=country_codes, provider=provider_ids, seed=st.integers(0, 2**32 - 1))
def test_any_minted_emaid_parses_back_in_every_form(country: str, provider: str, seed: int) -> None:
    emaid = mint_emaid(country.lower(), provider.lower(), random.Random(seed))
    assert parse_emaid(str(emaid)) == emaid
    assert parse_emaid(emaid.compact) == emaid
    assert parse_emaid(str(emaid).lower()) == emaid
    assert parse_emaid(str(emaid)[:-2], require_check_digit=False) == emaid


@PROPERTY_SETTINGS
@given(body=bodies, position=st.integers(0, 14), replacement=alnum)
def test_any_single_character_substitution_is_detected(body: str, position: int, replacement: str) -> None:
    """Changing one of the 14 characters always changes the check digit (and a changed check digit is wrong)."""
    original = _with_check_digit(body)
    if original[position] == replacement:
        return
    changed = original[:position] + replacement + original[position + 1 :]
    assert not _valid(changed)
    if position < 14:
        assert compute_check_digit(changed[:14]) != original[14]


@PROPERTY_SETTINGS
@given(body=bodies, position=st.integers(0, 13))
def test_any_adjacent_transposition_is_detected(body: str, position: int) -> None:
    original = _with_check_digit(body)
    a, b = original[position], original[position + 1]
    swapped = original[:position] + b + a + original[position + 2 :]
    assert _valid(swapped) == (a == b)


@PROPERTY_SETTINGS
@given(body=bodies, position=st.integers(0, 12))
def test_any_jump_transposition_is_detected(body: str, position: int) -> None:
    original = _with_check_digit(body)
    a, mid, c = original[position : position + 3]
    swapped = original[:position] + c + mid + a + original[position + 3 :]
    assert _valid(swapped) == (a == c)


@PROPERTY_SETTINGS
@given(body=bodies, position=st.integers(0, 12), twin=alnum, replacement=alnum, jump=st.booleans())
def test_any_twin_or_jump_twin_error_is_detected(
    body: str, position: int, twin: str, replacement: str, jump: bool
) -> None:
    """aa -> bb and aca -> bcb are detected (the other two frequent copying errors)."""
    gap = 2 if jump else 1
    position = min(position, 13 - gap)
    chars = list(body)
    chars[position] = chars[position + gap] = twin
    original = _with_check_digit("".join(chars))
    changed = list(original)
    changed[position] = changed[position + gap] = replacement
    assert _valid("".join(changed)) == (twin == replacement)


def test_check_digit_is_not_a_permutation_invariant_sum() -> None:
    """Guards against a regression to a plain (unweighted) sum: reordering the instance changes the digit."""
    assert compute_check_digit("DE83DUIEN83QGZ") != compute_check_digit("DE83DUIEN83ZGQ")
