"""How the number a driver types to activate a card is matched with the number printed on it.

Printed numbers are read off a small card and typed on a phone: in lower case, with spaces where the print
groups digits, with or without its dashes, sometimes pasted with a non-breaking space. Only the letters and
digits identify the number, so both sides are compared on those, upper-cased.
"""

from __future__ import annotations

import unicodedata


def printed_number_key(typed: str) -> str:
    """The letters and digits of ``typed``, upper case: "vlt 000 001" and "VLT-000001" give "VLT000001"."""
    # NFKC turns full-width digits and letters (a phone keyboard in another script mode) into plain ones.
    text = unicodedata.normalize("NFKC", typed)
    return "".join(char for char in text if char.isascii() and char.isalnum()).upper()
