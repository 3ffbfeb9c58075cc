"""eMAID (e-Mobility Account Identifier, the ISO 15118 / eMI3 "Contract ID"): format, parsing and check digit.

An eMAID is what a charge card or app token carries as its contract id (OCPI ``Token.contract_id``). Its shape
(ISO 15118-2 Annex H)::

    CC - PPP - IIIIIIIII - D
    │    │     │           └ check digit: 1 alphanumeric, optional in the standard
    │    │     └ eMA instance: 9 alphanumerics (we always mint ``C`` + 8)
    │    └ provider id: 3 alphanumerics (our eMSP party id)
    └ country code: 2 letters (ISO 3166-1 alpha-2)

The hyphens are optional ("compact" form: 14 characters, 15 with the check digit) and the id is
case-insensitive; we normalise to upper case with hyphens, which is what ``str(Emaid)`` gives.

Pure Python on purpose (no Flask, no database): the portal, the back office, the OCPI module and the tests
all need the same answer to "is this a valid contract id?".
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Emaid", "InvalidEmaidError", "compute_check_digit", "mint_emaid", "parse_emaid"]

# Position i (0-based) of a character in this alphabet is its value in the check digit algorithm.
ALPHABET = string.digits + string.ascii_uppercase
_ALPHANUMERIC = frozenset(ALPHABET)
_LETTERS = frozenset(string.ascii_uppercase)
# Accepted in raw input before normalisation; anything else (including non-ASCII letters and digits such as
# "é" or "٣", which ``str.isalnum`` would let through and ``str.upper`` may even lengthen) is rejected.
_INPUT_CHARACTERS = frozenset(ALPHABET + string.ascii_lowercase + "-")

COMPACT_LENGTH = 14  # country (2) + provider (3) + instance (9), without the check digit
MINTED_INSTANCE_PREFIX = "C"
MINTED_RANDOM_LENGTH = 8

# ---------------------------------------------------------------------------------------------------------------
# Check digit (ISO 15118-2 Annex H, as published by the eMI3 group / Hubject: "Check Digit Calculation for
# Contract-IDs"; reference implementation used for cross-checking: ShellRechargeSolutionsEU/mobilityid,
# core/src/main/scala/com/thenewmotion/mobilityid/checkDigit.scala, whose test vectors the tests reproduce).
# ---------------------------------------------------------------------------------------------------------------

_Row = tuple[int, int]
_Matrix = tuple[_Row, _Row]


def _mat_mul(a: _Matrix, b: _Matrix, modulus: int) -> _Matrix:
    (a11, a12), (a21, a22) = a
    (b11, b12), (b21, b22) = b
    return (
        ((a11 * b11 + a12 * b21) % modulus, (a11 * b12 + a12 * b22) % modulus),
        ((a21 * b11 + a22 * b21) % modulus, (a21 * b12 + a22 * b22) % modulus),
    )


def _row_times(row: _Row, m: _Matrix, modulus: int) -> _Row:
    (m11, m12), (m21, m22) = m
    return ((row[0] * m11 + row[1] * m21) % modulus, (row[0] * m12 + row[1] * m22) % modulus)


def _powers(p: _Matrix, modulus: int, count: int) -> tuple[_Matrix, ...]:
    """``(p¹, p², …, p^count)`` reduced modulo ``modulus``."""
    result = [p]
    while len(result) < count:
        result.append(_mat_mul(result[-1], p, modulus))
    return tuple(result)


# P1 generates a cyclic group of order 3 in GL(2, F2), P2 one of order 8 in GL(2, F3) (it is the companion matrix
# of a primitive polynomial, so it acts like a generator of F9*).
_P1: _Matrix = ((0, 1), (1, 1))
_P2: _Matrix = ((0, 1), (1, 2))
_P1_POWERS = _powers(_P1, 2, COMPACT_LENGTH)
_P2_POWERS = _powers(_P2, 3, COMPACT_LENGTH)
# The 15th (check) character q15 must satisfy  Σ_{i=1..14} q_i·P^i + q15·P^15 = 0,  so  q15 = -(Σ)·P^-15.
# Over F2: P1^3 = I, so P1^15 = I and -1 = 1: the F2 row of q15 is the sum itself.
# Over F3: P2^8 = I, so P2^-15 = P2, and -P2 = ((0, 2), (2, 1)) mod 3.
_MINUS_P2_INVERSE_15: _Matrix = ((0, 2), (2, 1))


def _char_to_rows(char: str) -> tuple[_Row, _Row]:
    """Split a character's value v (0–35) into a row over F2 and a row over F3.

    36 = 4 × 9, so v = 9·(2a + b) + 3c + d with a, b ∈ {0, 1} and c, d ∈ {0, 1, 2}: the standard's lookup
    table of 2×2 matrices is exactly ``((a, b), (c, d))`` (e.g. "0" → ((0,0),(0,0)), "9" → ((0,1),(0,0)),
    "I" → ((1,0),(0,0)), "Z" → ((1,1),(2,2))).
    """
    high, low = divmod(ALPHABET.index(char), 9)
    return (high >> 1, high & 1), divmod(low, 3)


def _rows_to_char(binary: _Row, ternary: _Row) -> str:
    return ALPHABET[9 * (2 * binary[0] + binary[1]) + 3 * ternary[0] + ternary[1]]


def compute_check_digit(compact14: str) -> str:
    """Return the ISO 15118 / eMI3 check character for the 14 characters ``CCPPPIIIIIIIII`` (no hyphens).

    The algorithm (ISO 15118-2 Annex H, published by the eMI3 group and Hubject) is not Luhn or ISO 7064:

    1. Each of the 36 characters 0-9A-Z (value v, 0–35) is mapped to a 2×2 matrix whose top row is over
       F2 (the two bits of v // 9) and whose bottom row is over F3 (the two trits of v % 9); see
       ``_char_to_rows``.
    2. Character i (1-based) is weighted by the i-th power of a fixed matrix, separately per row:
       the F2 rows by P1 = [[0,1],[1,1]], the F3 rows by P2 = [[0,1],[1,2]], and the weighted rows are summed
       (mod 2 and mod 3 respectively).
    3. The check character is the one whose matrix q15 makes the total of all 15 weighted characters zero:
       q15 = -(Σ)·P^-15 per row. It is mapped back to a character with the same table.

    Why matrices rather than a simple weighted sum: the check is linear, so an error goes unnoticed only if
    (difference of the characters) × (difference of the weights) vanishes. The weights P^i, and I - P,
    I + P, I - P², I + P² are all invertible over F2 and F3, and two different characters differ in at least
    one row, so every one of the five frequent copying errors is detected: a single wrong character, two
    adjacent characters swapped (ab → ba), a twin error (aa → bb), a jump transposition (abc → cba) and a
    jump twin error (aca → bcb). The tests check these properties.

    Raises ``InvalidEmaidError`` for input that is not 14 ASCII letters or digits; lower case is accepted
    and treated as upper case.
    """
    if len(compact14) != COMPACT_LENGTH:
        raise InvalidEmaidError(
            f"The check digit is computed over {COMPACT_LENGTH} characters (without hyphens), got "
            f"{len(compact14)}: {compact14!r}."
        )
    _reject_bad_characters(compact14, allowed=_INPUT_CHARACTERS - {"-"})
    binary_sum: _Row = (0, 0)
    ternary_sum: _Row = (0, 0)
    for char, p1, p2 in zip(compact14.upper(), _P1_POWERS, _P2_POWERS, strict=True):
        binary, ternary = _char_to_rows(char)
        b = _row_times(binary, p1, 2)
        t = _row_times(ternary, p2, 3)
        binary_sum = ((binary_sum[0] + b[0]) % 2, (binary_sum[1] + b[1]) % 2)
        ternary_sum = ((ternary_sum[0] + t[0]) % 3, (ternary_sum[1] + t[1]) % 3)
    return _rows_to_char(binary_sum, _row_times(ternary_sum, _MINUS_P2_INVERSE_15, 3))


# ---------------------------------------------------------------------------------------------------------------
# The identifier
# ---------------------------------------------------------------------------------------------------------------


class InvalidEmaidError(ValueError):
    """Text that is not a valid eMAID; the message says what is wrong so it can be shown to a back-office user."""


@dataclass(frozen=True)
class Emaid:
    """A valid, normalised eMAID: upper case parts and a correct check digit.

    Construction validates (via ``__post_init__``), so holding an ``Emaid`` means holding a valid contract
    id; build one from user input with ``parse_emaid`` and a new one with ``mint_emaid``.
    """

    country: str
    provider: str
    instance: str
    check_digit: str

    def __post_init__(self) -> None:
        _check_parts(self.country, self.provider, self.instance)
        expected = compute_check_digit(self.country + self.provider + self.instance)
        if self.check_digit != expected:
            raise InvalidEmaidError(
                f"Wrong check digit for {self.country}-{self.provider}-{self.instance}: expected {expected!r}, "
                f"given {self.check_digit!r}."
            )

    def __str__(self) -> str:
        """The separated form ``CC-PPP-IIIIIIIII-D``, which is how we store and display contract ids."""
        return f"{self.country}-{self.provider}-{self.instance}-{self.check_digit}"

    @property
    def compact(self) -> str:
        """The 15-character form without hyphens, as carried in ISO 15118-2 messages (at most 15 characters)."""
        return f"{self.country}{self.provider}{self.instance}{self.check_digit}"


def _reject_bad_characters(text: str, *, allowed: frozenset[str]) -> None:
    for position, char in enumerate(text, start=1):
        if char not in allowed:
            raise InvalidEmaidError(
                f"Invalid character {char!r} at position {position} in {text!r}: only letters A-Z and digits 0-9"
                + (" (and hyphens as separators)" if "-" in allowed else "")
                + " are allowed."
            )


def _check_parts(country: str, provider: str, instance: str) -> None:
    """Validate already upper-cased parts; shared by ``Emaid`` construction, parsing and minting."""
    if len(country) != 2 or not set(country) <= _LETTERS:
        raise InvalidEmaidError(f"The country code must be two letters A-Z, got {country!r}.")
    if len(provider) != 3 or not set(provider) <= _ALPHANUMERIC:
        raise InvalidEmaidError(f"The provider id must be three letters or digits, got {provider!r}.")
    if len(instance) != 9 or not set(instance) <= _ALPHANUMERIC:
        raise InvalidEmaidError(f"The eMA instance must be nine letters or digits, got {instance!r}.")


def parse_emaid(text: str, *, require_check_digit: bool = True) -> Emaid:
    """Parse a contract id typed by a person or received from a roaming partner, and normalise it.

    Accepts ``CC-PPP-IIIIIIIII-D`` and the compact ``CCPPPIIIIIIIIID`` (and, with ``require_check_digit=False``,
    the same without ``D``, in which case the check digit is computed), in any case, with surrounding whitespace.
    A check digit that is present must be right: a wrong one almost always means a typo, and accepting it would
    register a card under an id nobody else would recognise. Raises ``InvalidEmaidError`` saying what is wrong.
    """
    raw = text.strip()
    if not raw:
        raise InvalidEmaidError("An eMAID is required (e.g. NL-VOL-C12345678-X).")
    _reject_bad_characters(raw, allowed=_INPUT_CHARACTERS)
    normalised = raw.upper()

    given: str | None
    if "-" in normalised:
        parts = normalised.split("-")
        if (
            len(parts) not in (3, 4)
            or [len(p) for p in parts[:3]] != [2, 3, 9]
            or (len(parts) == 4 and len(parts[3]) != 1)
        ):
            raise InvalidEmaidError(
                f"{text.strip()!r} does not have the shape CC-PPP-IIIIIIIII-D (country code, provider id, "
                f"9-character eMA instance, check digit)."
            )
        country, provider, instance = parts[:3]
        given = parts[3] if len(parts) == 4 else None
    else:
        if len(normalised) not in (COMPACT_LENGTH, COMPACT_LENGTH + 1):
            raise InvalidEmaidError(
                f"A compact eMAID has {COMPACT_LENGTH + 1} characters ({COMPACT_LENGTH} without the check "
                f"digit), got {len(normalised)}: {text.strip()!r}."
            )
        country, provider, instance = normalised[:2], normalised[2:5], normalised[5:14]
        given = normalised[14:] or None

    _check_parts(country, provider, instance)
    expected = compute_check_digit(country + provider + instance)
    if given is None:
        if require_check_digit:
            raise InvalidEmaidError(
                f"{text.strip()!r} has no check digit; the full eMAID is {country}-{provider}-{instance}-{expected}."
            )
        given = expected
    elif given != expected:
        raise InvalidEmaidError(f"Wrong check digit in {text.strip()!r}: expected {expected!r}, given {given!r}.")
    return Emaid(country, provider, instance, given)


class _Chooser(Protocol):
    """Anything with ``choice``: the ``secrets`` module (default) or a seeded ``random.Random`` in tests."""

    def choice(self, seq: Sequence[str], /) -> str: ...


def mint_emaid(country: str, provider: str, rng: _Chooser | None = None) -> Emaid:
    """Make a new eMAID ``CC-PPP-C########-D`` with 8 random characters from 0-9A-Z.

    36⁸ ≈ 2.8·10¹² instances per provider, drawn with ``secrets`` so that contract ids cannot be guessed from
    one another. Uniqueness is not checked here: the database's unique constraint enforces it and the caller
    retries on a collision. Pass ``rng`` (e.g. ``random.Random(seed)``) for reproducible ids in tests and demos.
    """
    chooser: _Chooser = secrets if rng is None else rng
    # ASCII first: "ß".upper() is "SS", which would otherwise pass as a country code.
    _reject_bad_characters(country.strip() + provider.strip(), allowed=_INPUT_CHARACTERS - {"-"})
    country, provider = country.strip().upper(), provider.strip().upper()
    _check_parts(country, provider, MINTED_INSTANCE_PREFIX + "0" * MINTED_RANDOM_LENGTH)
    instance = MINTED_INSTANCE_PREFIX + "".join(chooser.choice(ALPHABET) for _ in range(MINTED_RANDOM_LENGTH))
    return Emaid(country, provider, instance, compute_check_digit(country + provider + instance))
