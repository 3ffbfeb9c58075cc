"""CSV files we hand to people (drivers' session exports, finance exports, partners' whitelist files), written
so that a spreadsheet never runs a cell as a formula.

A CPO names its location ``=HYPERLINK("https://evil.example", "Gent")``; the driver opens ``sessions.csv`` in
Excel and the cell is a live link (or worse, with DDE). Every text cell that starts with ``= + - @``, a tab or a
carriage return is written with a leading apostrophe, the neutralisation OWASP recommends and spreadsheets hide
on display. Plain numbers (``-12.50``, ``+3``) are left as they are, so finance's negative amounts stay
numbers. Use :func:`csv_writer` instead of ``csv.writer`` everywhere.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?(?:[eE][+-]?\d+)?")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def safe_cell(value: object) -> object:
    """The cell as written: text that a spreadsheet would read as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) and not PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeCsvWriter:
    """``csv.writer`` whose every row goes through :func:`safe_cell`."""

    def __init__(self, file: _Writable, **options: Any) -> None:
        self._writer = csv.writer(file, **options)

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(file: _Writable, **options: Any) -> SafeCsvWriter:
    return SafeCsvWriter(file, **options)
