"""The fuzzer's machinery: a receiver's description, one generated request (:class:`Case`), the strategy that
builds cases from valid objects, the per-case oracle, and the counts printed at the end of the run.

Oracle per case (DESIGN "Bad input"): the answer is below 500; a refusal (HTTP 4xx or OCPI status >= 2000) is an
OCPI envelope with a status message, naming a field, URL or query parameter when it is a 2001; after a refusal
the tables the receivers write are exactly as before; what was accepted can be read back (no 5xx on the GET).
Every case runs inside a SAVEPOINT rolled back afterwards, so each starts from the same stored objects.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Table, select

from app.charging.models import Authorization, Cdr, ChargingSession
from app.extensions import db
from app.ocpi_values import load_json
from app.roaming.models import Command, Connector, Evse, Location, Partner, PartnerParty, TariffVersion
from tests.fuzz.strategies import (
    CONTENT_TYPES,
    encode,
    encoded,
    garbage_bodies,
    header_values,
    keys_of,
    mutated,
    query_values,
    url_ids,
)
from tests.shared_data import EXAMPLES

# Examples per receiver: small in `make test`, FUZZ_EXAMPLES=1000 in `make fuzz`.
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))

FUZZ_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,  # the same cases on every run: CI stays deterministic
    database=None,  # nothing written into the working tree (.hypothesis/)
    deadline=None,  # a request may take a while on a loaded machine; timing is not what we test
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
    print_blob=False,
)

# What every receiver writes; nothing of it may change when a request is refused.
WRITTEN_TABLES: tuple[Table, ...] = tuple(
    model.__table__
    for model in (  # type: ignore[misc]
        Location,
        Evse,
        Connector,
        TariffVersion,
        ChargingSession,
        Cdr,
        Authorization,
        Command,
        Partner,
        PartnerParty,
    )
)

# Every field name of the official examples: what a 2001 may name besides the case's own keys and parameters.
OCPI_FIELDS = frozenset().union(*(keys_of(json.loads(path.read_text())) for path in EXAMPLES.glob("*.json")))

# ------------------------------------------------------------------------------------------------ counting


@dataclass
class Tally:
    cases: int = 0
    accepted: int = 0
    refused: int = 0
    server_errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)


STATS: dict[str, Tally] = defaultdict(Tally)

# ------------------------------------------------------------------------------------------------ descriptions


@dataclass(frozen=True)
class Base:
    """A valid request to start from: the URL ids and the body (None: no body)."""

    ids: Mapping[str, str]
    body: Any = None


@dataclass(frozen=True)
class Receiver:
    name: str
    method: str
    template: str  # "/ocpi/2.2.1/sessions/{country_code}/{party_id}/{session_id}"
    bases: Callable[[Any], list[Base]]  # from the fuzz environment (stored objects, card uid, command uid)
    caller: str = "partner"  # "partner" (registered CPO), "pending" (token A), "hub"
    body: str = "required"  # "required", "optional" or "none"
    query: Mapping[str, str] = field(default_factory=dict)  # parameter → a valid value
    headers: Mapping[str, str] = field(default_factory=dict)  # sent with every case, fuzzed by "headers" cases
    # Tables a refusal with this OCPI status may write (an unknown token's authorization is logged).
    may_write: Mapping[int, frozenset[str]] = field(default_factory=dict)
    read_back: bool = False  # after a success, GET the same URL (PUT/PATCH) or the Location header (POST)


@dataclass(frozen=True)
class Case:
    method: str
    url: str  # percent-encoded path and query
    body: bytes | None
    content_type: str | None
    headers: Mapping[str, str]
    names: frozenset[str]  # what a 2001 may name: OCPI field names, URL and query parameters, "body"
    note: str  # what was done to the valid request (shown when the oracle fails)

    def __repr__(self) -> str:
        shown = self.body if self.body is None or len(self.body) <= 600 else self.body[:600] + b"..."
        return (
            f"Case({self.method} {self.url[:300]} [{self.note}] content_type={self.content_type!r} "
            f"headers={dict(self.headers)!r} body={shown!r})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how hypothesis shows a failing case
        printer.text(repr(self))


CASE_KINDS = {  # kind → weight
    "valid": 1,
    "body": 8,
    "garbage": 3,
    "url": 3,
    "query": 3,
    "headers": 2,
    "method": 1,
}


def cases(receiver: Receiver, bases: list[Base], body_limit: int) -> st.SearchStrategy[Case]:
    """Requests to ``receiver``: a valid one, or one changed in its body, URL ids, query, headers or method."""
    kinds = [
        kind
        for kind, weight in CASE_KINDS.items()
        for _ in range(weight)
        if not (kind == "query" and not receiver.query)
        and not (kind == "headers" and not receiver.headers)
        and not (kind == "url" and not any(base.ids for base in bases))
        and not (kind == "body" and receiver.body == "none")
    ]

    fields = set().union(OCPI_FIELDS, *(keys_of(base.body) for base in bases))

    @st.composite
    def build(draw: st.DrawFn) -> Case:
        base = draw(st.sampled_from(bases))
        kind = draw(st.sampled_from(kinds))
        ids = {name: encoded(value) for name, value in base.ids.items()}
        query = {name: encoded(value) for name, value in receiver.query.items() if draw(st.booleans())}
        headers = dict(receiver.headers)
        method = receiver.method
        names = set(base.ids) | set(receiver.query) | fields | {"body"}
        body = None if base.body is None else encode(base.body)
        content_type: str | None = "application/json"
        note = kind
        if kind == "body":
            tree, done = draw(mutated(base.body if base.body is not None else {}))
            names |= keys_of(tree)
            body = encode(tree, ascii_only=draw(st.booleans()))
            note = "; ".join(done) or "unchanged"
        elif kind == "garbage":
            body, what = draw(garbage_bodies(base.body if base.body is not None else {}, body_limit))
            content_type = draw(st.sampled_from(CONTENT_TYPES))
            note = f"garbage: {what}"
        elif kind == "url" and ids:
            slot = draw(st.sampled_from(sorted(ids)))
            ids[slot] = draw(url_ids(base.ids[slot]))
            note = f"url id {slot}"
        elif kind == "query":
            for name in draw(st.lists(st.sampled_from(sorted(receiver.query)), min_size=1, max_size=4)):
                query[name] = draw(query_values())
            if draw(st.booleans()):
                junk = draw(st.sampled_from(["%00", "offset%00", "x" * 300, "limit[]", "", "type"]))
                query[junk] = draw(query_values())
                names.add(junk)
            note = f"query {sorted(query)}"
        elif kind == "headers":
            name = draw(st.sampled_from(sorted(headers)))
            if draw(st.booleans()):
                del headers[name]
            else:
                headers[name] = draw(header_values())
            note = f"header {name}"
        elif kind == "method":
            method = draw(st.sampled_from([m for m in ("GET", "PUT", "PATCH", "POST", "DELETE") if m != method]))
            note = f"method {method}"
        if receiver.body == "optional" and kind == "body" and not draw(st.booleans()):
            body = draw(st.sampled_from([None, b"", b" ", b"null"]))
            note = "no body"
        url = receiver.template.format(**ids)
        if query:
            url += "?" + "&".join(f"{name}={value}" for name, value in query.items())
        return Case(method, url, body, content_type if body is not None else None, headers, frozenset(names), note)

    return build()


# ------------------------------------------------------------------------------------------------ the oracle


def snapshot(skip: frozenset[str] = frozenset()) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the receivers write (minus ``skip``)."""
    db.session.expire_all()
    return {
        table.name: [tuple(row) for row in db.session.execute(select(table).order_by(*table.primary_key.columns))]
        for table in WRITTEN_TABLES
        if table.name not in skip
    }


_NAME_EDGE = r"(?<![A-Za-z0-9_]){}(?![A-Za-z0-9_])"


def names_one_of(message: str, names: frozenset[str]) -> bool:
    """Whether the message cites one of ``names`` (as a word, raw or escaped as the reader shows odd keys)."""
    for name in names:
        for shown in {name, name.encode("unicode_escape", "backslashreplace").decode("ascii")}:
            if len(shown) >= 2 and re.search(_NAME_EDGE.format(re.escape(shown)), message):
                return True
    return False


def _is_json_object(body: bytes | None) -> bool:
    """Whether the body is a JSON object (else a refusal may name the body as a whole: "not valid JSON",
    "must be a JSON object")."""
    try:
        return isinstance(load_json(body or b""), dict)
    except ValueError:  # not JSON, NaN, nested too deeply, not UTF-8
        return False


class Runner:
    """Sends cases for one receiver from a fixed starting state and applies the oracle."""

    def __init__(self, client: FlaskClient, receiver: Receiver, headers: dict[str, str]) -> None:
        self.client = client
        self.receiver = receiver
        self.auth_headers = headers
        self.tally = STATS[receiver.name]
        db.session.commit()
        self.baseline = snapshot()

    def run(self, case: Case) -> None:
        """One case in a SAVEPOINT of its own, rolled back whatever happened."""
        connection = db.engines[None]
        assert isinstance(connection, Connection), "the fuzzer runs inside the db_session fixture's transaction"
        db.session.commit()
        db.session.remove()  # no session savepoint may enclose ours (releasing it would release ours)
        savepoint = connection.begin_nested()
        try:
            self._check(case)
        finally:
            db.session.remove()
            if savepoint.is_active:
                savepoint.rollback()

    def _send(self, method: str, url: str, case: Case):  # type: ignore[no-untyped-def]
        return self.client.open(
            url,
            method=method,
            data=case.body,
            content_type=case.content_type,
            headers={**self.auth_headers, **case.headers},
        )

    def _check(self, case: Case) -> None:
        self.tally.cases += 1
        response = self._send(case.method, case.url, case)
        # The end of the request's unit of work, as in production (Flask-SQLAlchemy removes the session when
        # the app context ends; the tests keep one context open): whatever the view flushed but did not commit
        # is rolled back here, before the stored data is compared.
        db.session.remove()
        status = response.status_code
        self.tally.statuses[status] += 1
        if status >= 500:
            self.tally.server_errors += 1
        answer = response.get_json(silent=True)
        assert status < 500, f"server error {status}: {answer or response.data[:500]!r}"
        # No redirects: an OCPI door answers in its envelope (the router no longer merges "a//b" into "a/b").
        assert not 300 <= status < 400, f"redirect {status} to {response.headers.get('Location')}"
        assert (
            isinstance(answer, dict)
            and isinstance(answer.get("status_code"), int)
            and isinstance(answer.get("timestamp"), str)
        ), f"no OCPI envelope: {status} {response.data[:500]!r}"
        code = answer["status_code"]
        if status >= 400 or code >= 2000:
            self.tally.refused += 1
            message = answer.get("status_message")
            assert isinstance(message, str) and message.strip(), f"refusal without a message: {status} {answer}"
            if code == 2001:
                whole_body = not _is_json_object(case.body)  # the body itself is what is wrong, or a list in it
                names = case.names | {"JSON"} if whole_body else case.names
                assert names_one_of(message, names) or (whole_body and re.search(r"\[\d+\]", message)), (
                    f"2001 naming no field or parameter: {message!r}"
                )
            skip = self.receiver.may_write.get(code, frozenset())
            assert snapshot(skip) == {name: rows for name, rows in self.baseline.items() if name not in skip}, (
                f"a refusal ({status}/{code}: {message!r}) changed stored data"
            )
            return
        self.tally.accepted += 1
        assert 1000 <= code < 2000, answer
        if self.receiver.read_back:
            self._read_back(case, response.headers.get("Location"))

    def _read_back(self, case: Case, location: str | None) -> None:
        """What was accepted can be served: a GET of it answers 200 (a value stored but not writable back as
        JSON, or not comparable by the database, would be a 5xx here; one stored under another key a 404)."""
        url = case.url.split("?", 1)[0] if case.method in ("PUT", "PATCH") else location
        if not url:
            return
        response = self.client.open(url, method="GET", headers={**self.auth_headers, **case.headers})
        assert response.status_code == 200, f"reading back {url} after {case.method}: {response.data[:500]!r}"
