"""Hypothesis strategies of hostile OCPI input: valid objects (the official examples) mutated field by field,
raw garbage bodies, URL ids and query parameters.

A body is a JSON tree that may hold :class:`Raw` leaves: JSON text sent as is, so that what a JSON encoder
cannot write (``NaN``, ``1e400``, ``-0``, 20-digit integers, nesting deeper than Python's recursion limit)
still reaches the server. :func:`dumps` writes such a tree.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

# ----------------------------------------------------------------------------------------------- the JSON text


@dataclass(frozen=True)
class Raw:
    """JSON text written verbatim into the body (valid JSON or not)."""

    text: str


@dataclass(frozen=True)
class Deep:
    """``value`` wrapped in ``depth`` levels of arrays or objects, written without recursion."""

    depth: int
    value: Any
    objects: bool = False


def dumps(value: Any, *, ascii_only: bool = True) -> str:
    """The tree as JSON text; :class:`Raw` leaves verbatim, :class:`Deep` nesting unrolled."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Deep):
        inner = dumps(value.value, ascii_only=ascii_only)
        if value.objects:
            return '{"d":' * value.depth + inner + "}" * value.depth
        return "[" * value.depth + inner + "]" * value.depth
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(
                f"{json.dumps(key, ensure_ascii=ascii_only)}:{dumps(item, ascii_only=ascii_only)}"
                for key, item in value.items()
            )
            + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(dumps(item, ascii_only=ascii_only) for item in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def encode(value: Any, *, ascii_only: bool = True) -> bytes:
    """The body's bytes. Without ``ascii_only`` a lone surrogate goes out as (invalid) UTF-8 bytes of its own."""
    return dumps(value, ascii_only=ascii_only).encode("utf-8", "surrogatepass")


def keys_of(value: Any) -> set[str]:
    """Every object key anywhere in the tree (the names a refusal may cite)."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Deep):
            stack.append(item.value)
        elif isinstance(item, dict):
            found.update(str(key) for key in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


# ----------------------------------------------------------------------------------------------- hostile values

# JSON number texts a float-based encoder cannot write, or that overflow a column, a driver or a Decimal context.
RAW_NUMBERS = [
    "NaN",
    "-NaN",
    "Infinity",
    "-Infinity",
    "1e30",
    "-1e30",
    "1e400",
    "-1e400",
    "1E+999999999",
    "1e-999999999",
    "-0",
    "-0.0",
    "0.0",
    "99999999999999999999",
    "-99999999999999999999",
    "2147483648",
    "-2147483649",
    "9223372036854775808",
    "18446744073709551616",
    "1" + "0" * 5000,
    "0." + "0" * 400 + "1",
    "1.0000000000000000000000000001",
    "9999.99995",
    "4.40",
    "1e-7",
    "123456789012345.678",
    "0x10",
    "+1",
    ".5",
    "1.",
    "01",
    "1e",
    "--1",
    "1_000",
]
CONTROL_CHARACTERS = ["\x00", "\x01", "\x08", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f"]
ODD_CHARACTERS = [
    "\ud800",
    "\udfff",
    "\u2028",
    "\u2029",
    "\u202e",
    "\ufeff",
    "\u00a0",
    "\u200b",
    "\ufffd",
    "\U0001f600",
    "\u0301",
    "\uff11",
    "\u0663",
    "İ",
    "ß",
    "ﬁ",
    "'",
    '"',
    "\\",
    "%",
    "/",
    "<",
    "&",
]
ODD_TIMESTAMPS = [
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "1970-01-01T00:00:00Z",
    "1999-12-31T23:59:59Z",
    "2100-01-01T00:00:00Z",
    "2015-06-29T20:39:09",
    "2015-06-29 20:39:09Z",
    " 2015-06-29T20:39:09Z",
    "2015-06-29T20:39:09Z ",
    "2015-06-29t20:39:09z",
    "2015-06-29T20:39:09.123456789Z",
    "2015-06-29T20:39:09.Z",
    "2015-06-29T20:39:09+14:00",
    "2015-06-29T20:39:09-12:00",
    "2015-06-29T20:39:09+24:00",
    "2015-06-29T20:39:09+99:99",
    "2015-06-29T20:39:09+0200",
    "2015-06-29T20:39:09+02",
    "2015-13-29T20:39:09Z",
    "2015-02-30T20:39:09Z",
    "2015-06-29T24:00:00Z",
    "2015-06-29T23:59:60Z",
    "+275760-09-13T00:00:00Z",
    "-0001-01-01T00:00:00Z",
    "20150629T203909Z",
    "2015-06-29",
    "20:39:09",
    "",
    " ",
    "now",
    "NaN",
    "2015-06-29T20:39:09Z\x00",
    "２０１５-06-29T20:39:09Z",
]


def raw_numbers() -> st.SearchStrategy[Raw]:
    return st.sampled_from(RAW_NUMBERS).map(Raw)


def numbers() -> st.SearchStrategy[Any]:
    def as_json(number: float) -> Any:
        if number != number:
            return Raw("NaN")
        if number in (float("inf"), float("-inf")):
            return Raw("Infinity" if number > 0 else "-Infinity")
        return number

    return st.one_of(
        raw_numbers(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.integers(min_value=-3, max_value=100_000),
        st.floats(allow_nan=True, allow_infinity=True).map(as_json),
        st.sampled_from(["12", "1e400", "NaN", "-0", " 12", "1,5", "١٢"]),  # numbers as text
    )


def hostile_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Text with control characters, lone surrogates, invisible and confusable characters, any unicode."""
    return st.text(st.one_of(st.characters(), st.sampled_from(CONTROL_CHARACTERS + ODD_CHARACTERS)), max_size=max_size)


def long_text() -> st.SearchStrategy[str]:
    """Strings just over the spec's lengths (2, 3, 36, 39, 48, 255, 512, 5000) and far over."""
    return st.builds(
        lambda char, length: char * length,
        st.sampled_from(["A", "é", "\U0001f600", " "]),
        st.sampled_from([0, 3, 4, 37, 40, 49, 256, 513, 5001, 70_000]),
    )


@st.composite
def generated_timestamps(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59)))
    minutes = draw(st.sampled_from([None, 0, 60, -60, 330, -570, 14 * 60, -14 * 60, 24 * 60 - 1]))
    separator = draw(st.sampled_from(["T", " ", "t"]))
    text = moment.isoformat(sep=separator)
    if minutes is None:
        return text + draw(st.sampled_from(["Z", "", "z"]))
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def timestamps() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(ODD_TIMESTAMPS), generated_timestamps(), st.integers(min_value=-(2**63), max_value=2**63)
    )


def hostile_values() -> st.SearchStrategy[Any]:
    """Any value a field might receive: wrong types, out-of-range numbers, odd text and timestamps."""
    return st.one_of(
        numbers(),
        hostile_text(),
        long_text(),
        timestamps(),
        st.sampled_from(
            [
                None,
                True,
                False,
                [],
                {},
                [None],
                ["x"],
                {"": None},
                {"text": "x"},
                "",
                "unknown",
                "RFID ",
                "rfid",
                "ACCEPTED\x00",
                "EUR ",
                "eur",
                "€",
            ]
        ),
    )


# ----------------------------------------------------------------------------------------------- mutations

Path = tuple[str | int, ...]


def paths_of(tree: Any, limit: int = 400) -> list[Path]:
    """Every node of the tree (root included), breadth first, at most ``limit``."""
    found: list[Path] = []
    queue: list[tuple[Path, Any]] = [((), tree)]
    while queue and len(found) < limit:
        path, node = queue.pop(0)
        found.append(path)
        if isinstance(node, dict):
            queue.extend(((*path, key), child) for key, child in node.items())
        elif isinstance(node, list):
            queue.extend(((*path, index), child) for index, child in enumerate(node))
    return found


def node_at(tree: Any, path: Path) -> Any:
    for step in path:
        tree = tree[step]
    return tree


def replaced(tree: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    node_at(tree, path[:-1])[path[-1]] = value
    return tree


def dropped(tree: Any, path: Path) -> Any:
    if not path:
        return tree
    parent = node_at(tree, path[:-1])
    if isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.pop(path[-1])
    return tree


def text_variants(text: str) -> st.SearchStrategy[str]:
    """The same text slightly wrong: case, blanks, an inserted control or odd character, made longer."""
    return st.one_of(
        st.sampled_from(
            [
                text.swapcase(),
                text.lower(),
                text.upper(),
                f" {text}",
                f"{text} ",
                text + text,
                text * 20,
                "",
                text[:-1],
                text + "\x00",
            ]
        ),
        st.builds(
            lambda at, char: text[:at] + char + text[at:],
            st.integers(0, len(text)),
            st.sampled_from(CONTROL_CHARACTERS + ODD_CHARACTERS),
        ),
    )


MUTATIONS = [
    "drop",
    "null",
    "value",
    "number",
    "text",
    "timestamp",
    "wrong type",
    "deep",
    "extra key",
    "grow list",
    "case",
]


@st.composite
def mutated(draw: st.DrawFn, base: Any, max_mutations: int = 3) -> tuple[Any, list[str]]:
    """``base`` with 1 to ``max_mutations`` mutations at random nodes; also what was done (for the report)."""
    tree = copy.deepcopy(base)
    done: list[str] = []
    for _ in range(draw(st.integers(1, max_mutations))):
        candidates = paths_of(tree)
        if len(candidates) > 1 and draw(st.integers(0, 9)):  # the root only now and then (garbage covers it)
            candidates = candidates[1:]
        path = draw(st.sampled_from(candidates))
        operation = draw(st.sampled_from(MUTATIONS))
        node = node_at(tree, path)
        where = ".".join(str(step) for step in path) or "<root>"
        if operation == "drop":
            tree = dropped(tree, path)
        elif operation == "null":
            tree = replaced(tree, path, None)
        elif operation == "value":
            tree = replaced(tree, path, draw(hostile_values()))
        elif operation == "number":
            tree = replaced(tree, path, draw(numbers()))
        elif operation == "text":
            new = draw(
                text_variants(node) if isinstance(node, str) and node else st.one_of(hostile_text(), long_text())
            )
            tree = replaced(tree, path, new)
        elif operation == "timestamp":
            tree = replaced(tree, path, draw(timestamps()))
        elif operation == "wrong type":
            tree = replaced(
                tree,
                path,
                draw(
                    st.sampled_from([True, 0, 1.5, "1", [], {}, [copy.deepcopy(node)], {"value": copy.deepcopy(node)}])
                ),
            )
        elif operation == "deep":
            # Around the reader's limit (32 levels, counted from the top) and far beyond it.
            depth = draw(st.sampled_from([2, 5, 10, 20, 26, 28, 30, 33, 1000, 5000]))
            tree = replaced(tree, path, Deep(depth, copy.deepcopy(node), objects=draw(st.booleans())))
        elif operation == "extra key" and isinstance(node, dict):
            key = draw(st.one_of(st.sampled_from(["", "id", "__proto__", "X" * 300, "a.b", "a[0]"]), hostile_text(12)))
            node[key] = draw(hostile_values())
        elif operation == "grow list" and isinstance(node, list) and node:
            node[:] = node * draw(st.sampled_from([2, 50, 2000]))
        elif operation == "case" and isinstance(node, str):
            tree = replaced(tree, path, draw(st.sampled_from([node.lower(), node.upper(), node.swapcase()])))
        else:
            continue
        done.append(f"{operation} at {where}")
    return tree, done


# ----------------------------------------------------------------------------------------------- whole bodies

CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    None,
]


@st.composite
def garbage_bodies(draw: st.DrawFn, base: Any, limit: int) -> tuple[bytes, str]:
    """A body that is no (acceptable) JSON at all: binary noise, truncated or re-encoded JSON, a lone value,
    duplicate keys, nesting beyond any limit, or more bytes than ``limit``. With a description."""
    text = dumps(base)
    kind = draw(
        st.sampled_from(
            [
                "noise",
                "truncated",
                "scalar",
                "bom",
                "utf-16",
                "latin-1",
                "invalid utf-8",
                "duplicate keys",
                "deep",
                "huge",
                "huge string",
                "trailing",
                "comment",
            ]
        )
    )
    if kind == "noise":
        return draw(st.binary(max_size=300)), kind
    if kind == "truncated":
        return text[: draw(st.integers(0, max(0, len(text) - 1)))].encode(), kind
    if kind == "scalar":
        return draw(
            st.sampled_from(
                [
                    b"",
                    b" ",
                    b"null",
                    b"true",
                    b"0",
                    b"[]",
                    b"{}",
                    b'""',
                    b'"x"',
                    b"NaN",
                    b"1e400",
                    b"[1,2,3]",
                    b"[{}]",
                    b"\x00",
                    b"{,}",
                    b'{"a"}',
                    b"{'a': 1}",
                ]
            )
        ), kind
    if kind == "bom":
        return b"\xef\xbb\xbf" + text.encode(), kind
    if kind == "utf-16":
        return text.encode("utf-16"), kind
    if kind == "latin-1":
        return text.replace("}", ', "name": "Caf\u00e9"}', 1).encode("latin-1", "replace"), kind
    if kind == "invalid utf-8":
        return text.encode()[:1] + b"\xff\xfe\xc0\x80" + text.encode()[1:], kind
    if kind == "duplicate keys":
        return ("{" + '"id": "A", "id": null, ' + text[1:]).encode() if text.startswith("{") else b"[1,1]", kind
    if kind == "deep":
        depth = draw(st.sampled_from([65, 1000, 100_000]))
        return (b"[" * depth + b"]" * depth) if draw(st.booleans()) else (b'{"a":' * depth + b"1" + b"}" * depth), kind
    if kind == "huge":
        return b" " * (limit + 1) + text.encode(), kind
    if kind == "huge string":
        return json.dumps({"name": "x" * (limit + 10)}).encode(), kind
    if kind == "trailing":
        return (text + draw(st.sampled_from([" x", "}", "{}", "\x00", ",", "\n\n{}"]))).encode(), kind
    return ("/* c */ " + text).encode(), kind


# ----------------------------------------------------------------------------------------------- URLs

URL_ODDITIES = [
    "%00",
    "%01",
    "%09",
    "%0A",
    "%7F",
    "%C2%85",
    "%ED%A0%80",
    "%FF",
    "%2F",
    "%5C",
    "%25",
    "%20",
    "+",
    "%3F",
    "%23",
    "..",
    ".",
    "%2E%2E",
    "%E2%80%AE",
    "%EF%BC%91",
    "%F0%9F%98%80",
]


def encoded(text: str) -> str:
    """A path segment or query value percent-encoded (lone surrogates as their 3 bytes)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def url_ids(valid: str) -> st.SearchStrategy[str]:
    """A URL id (already percent-encoded): the valid one changed, an odd one, or generated text."""
    good = encoded(valid)
    return st.one_of(
        st.sampled_from(
            [
                encoded(valid.swapcase()),
                encoded(valid.lower()),
                good + "%00",
                "%00" + good,
                good + "%20",
                "%20" + good,
                "A" * 37,
                "A" * 300,
                "9" * 20,
                "-1",
                "0",
                "2147483648",
                "1e3",
                "%D9%A3",
                "%EF%BC%91",
                good * 10,
            ]
        ),
        st.builds(
            lambda at, oddity: good[:at] + oddity + good[at:], st.integers(0, len(good)), st.sampled_from(URL_ODDITIES)
        ),
        st.sampled_from(URL_ODDITIES),
        hostile_text(50).filter(bool).map(encoded),
        long_text().filter(bool).map(encoded),
    )


def query_values() -> st.SearchStrategy[str]:
    """A query parameter value (percent-encoded): numbers in and out of range, odd DateTimes, junk."""
    return st.one_of(
        st.sampled_from(
            [
                "0",
                "1",
                "10",
                "1000",
                "1001",
                "-1",
                "2147483647",
                "2147483648",
                "99999999999999999999",
                "1e3",
                "1.5",
                "%201",
                "1_000",
                "%D9%A1%D9%A2",
                "%EF%BC%91",
                "",
                "%00",
                "NaN",
                "abc",
                "0x10",
                "+5",
            ]
        ),
        st.integers(min_value=-(10**25), max_value=10**25).map(str),
        timestamps().map(lambda value: encoded(str(value))),
        hostile_text(30).map(encoded),
    )


def header_values() -> st.SearchStrategy[str]:
    """Header values a WSGI server could pass on (latin-1, no line breaks)."""
    alphabet = st.characters(min_codepoint=0, max_codepoint=255, blacklist_characters="\r\n")
    return st.one_of(
        st.sampled_from(["", " ", "NL", "nl", "NLD", "N", "HBP", "hbp", "TCP", "ALL", "\x00", "é"]),
        st.text(alphabet, max_size=40),
    )
