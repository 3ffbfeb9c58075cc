"""Pulls that cannot get stuck (issue 13): what real peers did to our pull client, replayed by the fake CPO.

Each test switches on the misbehaviour a real peer showed (``cpo.misbehave``, see the fake CPO's modules) and
checks that the pull completes, stores everything once, and leaves a cursor that the next run can use.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from app.charging.models import Cdr, ChargingSession
from app.extensions import db
from app.roaming.models import Location, Partner, PullCursor, TariffVersion
from app.roaming.ocpi.reader import FieldReader, InvalidObjectError, to_datetime
from app.roaming.receive.pull import PullError, pull
from app.timestamps import ocpi_timestamp
from tests.roaming.fake_cpo import FakeCpo
from tests.roaming.fake_cpo.sender import BROKEN_PREFIX, PREFIX, sender_endpoints
from tests.roaming.fake_cpo.server import REDIRECT_PREFIX
from tests.roaming.loopback_servers import ScriptedServer, ocpi, start_scripted
from tests.shared_data import EXAMPLES, NL_DATA

N = 120
START = dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def shared_locations() -> list[dict[str, Any]]:
    return json.loads(gzip.decompress((NL_DATA / "locations.json.gz").read_bytes()))[:N]


@pytest.fixture
def cpo(fake_cpo: FakeCpo, partner: Partner, shared_locations: list[dict[str, Any]]) -> FakeCpo:
    """The fake CPO serving 120 real NDW locations (29 parties: the partner relays them as a hub)."""
    fake_cpo.accepted_tokens.add(partner.outgoing_token or "")
    fake_cpo.data["locations"] = list(shared_locations)
    partner.is_hub = True
    partner.endpoints = sender_endpoints(fake_cpo)
    db.session.commit()
    return fake_cpo


@pytest.fixture
def elsewhere() -> Iterator[ScriptedServer]:
    """Another origin on loopback that must never be called with our token for the partner."""
    running = start_scripted()
    running.scripted.routes[f"{REDIRECT_PREFIX}{PREFIX}/locations"] = ocpi([])
    yield running.scripted
    running.stop()


def no_sleep(_: float) -> None:
    pass


def queries(cpo: FakeCpo, prefix: str = f"{PREFIX}/locations") -> list[dict[str, str]]:
    return [request.query for request in cpo.requests_to(prefix, "GET")]


def cursor_of(module: str = "locations") -> PullCursor:
    return db.session.query(PullCursor).filter_by(module=module).one()


# --- a broken Link header ---------------------------------------------------------------------------------------


def test_a_broken_next_link_falls_back_to_offset_paging_and_the_next_run_is_not_stuck(cpo, partner):
    """The peer's Link says /ocpi/cpo/VersionNumber.v_2_2_1/locations: never followed, the pages are asked for
    by offset on the announced endpoint instead, and the cursor carries a note (not a blocking error)."""
    cpo.misbehave["broken_link_path"] = True

    result = pull(partner, "locations", limit=25, sleep=no_sleep, clock=lambda: START)

    assert (result.pages, result.received, result.stored, result.errors) == (5, N, N, [])
    assert cpo.requests_to(BROKEN_PREFIX) == []
    assert [q["offset"] for q in queries(cpo)] == ["0", "25", "50", "75", "100"]
    assert all(q["date_to"] == "2026-11-02T12:00:00Z" and q["limit"] == "25" for q in queries(cpo))
    assert db.session.query(Location).count() == N
    assert any("VersionNumber.v_2_2_1" in note and "offset" in note for note in result.notes)
    cursor = cursor_of()
    assert (cursor.synced_until, cursor.run_started_at, cursor.next_url) == (START, None, None)
    assert cursor.last_error is not None and cursor.last_error.startswith("note:")

    rerun = pull(partner, "locations", limit=25, sleep=no_sleep, clock=lambda: START + dt.timedelta(minutes=15))

    assert (rerun.resumed, rerun.pages, rerun.received) == (False, 1, 0)
    assert queries(cpo)[-1]["date_from"] == "2026-11-02T12:00:00Z"
    assert cursor_of().synced_until == START + dt.timedelta(minutes=15)
    assert cursor_of().last_error is None  # nothing unusual in this run: the note goes


def test_a_cursor_left_on_a_broken_link_by_an_earlier_run_recovers(cpo, partner):
    """Before the fix the cursor stored the broken link and every run resumed there (HTTP 404, forever). Such a
    cursor is read like a broken Link: the interrupted window is paged again by offset, nothing doubled."""
    window_end = START - dt.timedelta(hours=1)
    pull(partner, "locations", limit=50, sleep=no_sleep, clock=lambda: window_end)  # what that run had stored
    stuck = f"{cpo.url(BROKEN_PREFIX)}/locations?date_to={ocpi_timestamp(window_end)}&offset=50&limit=50"
    cursor = cursor_of()
    cursor.synced_until, cursor.run_started_at, cursor.next_url = None, window_end, stuck
    cursor.last_error = f"{stuck}: HTTP 404 from partner"
    db.session.commit()

    result = pull(partner, "locations", limit=50, sleep=no_sleep, clock=lambda: START)

    assert result.resumed and result.received == N
    assert cpo.requests_to(BROKEN_PREFIX) == []
    assert [q["offset"] for q in queries(cpo)][-3:] == ["0", "50", "100"]  # the window again, from its start
    assert all(q["date_to"] == ocpi_timestamp(window_end) and "date_from" not in q for q in queries(cpo)[-3:])
    assert db.session.query(Location).count() == N
    cursor = cursor_of()
    assert (cursor.synced_until, cursor.run_started_at, cursor.next_url) == (window_end, None, None)
    assert "note:" in (cursor.last_error or "") and "404" not in (cursor.last_error or "")


def test_a_link_to_another_host_is_not_followed_and_the_pull_goes_on_by_offset(cpo, partner, elsewhere):
    """A Link elsewhere would carry our token to another host: the pages are asked for by offset instead."""
    cpo.misbehave["link_origin"] = elsewhere.url("").rstrip("/")

    result = pull(partner, "locations", limit=40, sleep=no_sleep)

    assert (result.received, result.stored) == (N, N)
    assert [q["offset"] for q in queries(cpo)] == ["0", "40", "80"]
    assert elsewhere.seen == []
    assert any("origin" in note for note in result.notes)


def scripted_sender(partner: Partner, server: ScriptedServer, route) -> None:  # type: ignore[no-untyped-def]
    server.routes["/locations"] = route
    partner.is_hub = True
    partner.endpoints = [{"identifier": "locations", "role": "SENDER", "url": server.url("/locations")}]
    db.session.commit()


def offset_of(handler) -> str:  # type: ignore[no-untyped-def]
    return parse_qs(urlsplit(handler.path).query).get("offset", ["0"])[0]


def test_a_link_back_to_the_first_page_does_not_loop(partner, shared_locations):
    """A server whose Link always names its first page, with no total: offsets take over, the empty page ends."""
    running = start_scripted()
    try:
        server = running.scripted
        pages = {"0": shared_locations[:2], "2": shared_locations[2:4]}
        link = f'<{server.url("/locations")}?offset=0&limit=2>; rel="next"'
        scripted_sender(
            partner,
            server,
            lambda handler, seen: ocpi(pages.get(offset_of(handler), []), headers={"Link": link})(handler, seen),
        )

        result = pull(partner, "locations", limit=2, sleep=no_sleep)

        assert (result.pages, result.stored) == (3, 4)
        assert len(server.seen) == 3
        assert any("goes back to offset 0" in note for note in result.notes)
    finally:
        running.stop()


def test_a_server_that_ignores_the_offset_stops_the_run_instead_of_looping(partner, shared_locations):
    running = start_scripted()
    try:
        server = running.scripted
        scripted_sender(partner, server, ocpi(shared_locations[:2], headers={"X-Total-Count": "1000000"}))

        with pytest.raises(PullError, match="same objects as the page before"):
            pull(partner, "locations", limit=2, sleep=no_sleep)

        assert len(server.seen) == 2
        assert db.session.query(Location).count() == 2
        assert "same objects" in (cursor_of().last_error or "")
    finally:
        running.stop()


# --- --restart and --from ---------------------------------------------------------------------------------------


def test_restart_pulls_everything_again_without_duplicates(cpo, partner):
    pull(partner, "locations", limit=50, sleep=no_sleep, clock=lambda: START)
    assert db.session.query(Location).count() == N

    result = pull(
        partner, "locations", limit=50, sleep=no_sleep, clock=lambda: START + dt.timedelta(hours=1), restart=True
    )

    assert (result.received, result.stored) == (N, N)
    assert "date_from" not in queries(cpo)[-1]  # from the beginning
    assert db.session.query(Location).count() == N  # every object once
    assert cursor_of().synced_until == START + dt.timedelta(hours=1)


def test_restart_forgets_an_interrupted_run(cpo, partner):
    cpo.misbehave["fail_at_offset"] = 50
    with pytest.raises(PullError):
        pull(partner, "locations", limit=50, retries=0, sleep=no_sleep, clock=lambda: START)
    del cpo.misbehave["fail_at_offset"]

    later = START + dt.timedelta(hours=1)
    result = pull(partner, "locations", limit=50, sleep=no_sleep, clock=lambda: later, restart=True)

    assert not result.resumed and result.received == N
    assert queries(cpo)[-3]["offset"] == "0" and queries(cpo)[-1]["date_to"] == ocpi_timestamp(later)
    assert cursor_of().last_error is None  # a successful run clears the last error


def test_cli_restart_and_from(app, cpo, partner):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["roaming", "pull", "NL/TCP", "--module", "locations"])
    assert first.exit_code == 0, first.output

    restarted = runner.invoke(args=["roaming", "pull", "NL/TCP", "--module", "locations", "--restart"])
    assert restarted.exit_code == 0, restarted.output
    assert f"{N} received" in restarted.output and "date_from" not in queries(cpo)[-1]

    since_day = runner.invoke(args=["roaming", "pull", "NL/TCP", "--module", "locations", "--from", "2026-06-07"])
    assert since_day.exit_code == 0, since_day.output
    assert queries(cpo)[-1]["date_from"] == "2026-06-07T00:00:00Z"

    since_moment = runner.invoke(
        args=["roaming", "pull", "NL/TCP", "--module", "locations", "--from", "2026-06-07 12:30:00+02:00"]
    )
    assert since_moment.exit_code == 0, since_moment.output
    assert queries(cpo)[-1]["date_from"] == "2026-06-07T10:30:00Z"
    assert db.session.query(Location).count() == N


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--from", "last tuesday"], "not a date"),
        (["--from", "2026-06-07", "--restart"], "either --restart or --from"),
        (["--from", "2999-01-01"], "in the future"),
        (["--limit", "0"], "not in the range"),
    ],
)
def test_cli_refuses_a_bad_from_and_changes_nothing(app, cpo, partner, arguments, message):
    pull(partner, "locations", sleep=no_sleep, clock=lambda: START)
    asked = len(cpo.received)

    refused = app.test_cli_runner().invoke(args=["roaming", "pull", "NL/TCP", "--module", "locations", *arguments])

    assert refused.exit_code != 0 and message in refused.output
    assert len(cpo.received) == asked
    assert cursor_of().synced_until == START


# --- redirects ----------------------------------------------------------------------------------------------------


def test_a_partner_that_redirects_every_call_is_pulled(cpo, partner):
    """307 to the same path under another prefix on the same origin, for every page: followed, token included."""
    cpo.misbehave["redirect_every_call"] = True

    result = pull(partner, "locations", limit=50, sleep=no_sleep)

    assert (result.received, result.stored, result.notes) == (N, N, [])
    assert [q["offset"] for q in queries(cpo)] == ["0", "50", "100"]  # each asked at the endpoint ...
    assert [q["offset"] for q in queries(cpo, f"{REDIRECT_PREFIX}{PREFIX}/locations")] == [
        "0",
        "50",
        "100",
    ]  # ... and served there
    assert db.session.query(Location).count() == N


def test_a_redirect_to_another_origin_stops_the_pull_without_our_token_leaving(cpo, partner, elsewhere):
    cpo.misbehave["redirect_every_call"] = elsewhere.url("")

    with pytest.raises(PullError, match="another origin"):
        pull(partner, "locations", retries=3, sleep=no_sleep)

    assert elsewhere.seen == []
    assert len(queries(cpo)) == 1  # refused, not retried: asking again cannot help
    assert "another origin" in (cursor_of().last_error or "")


# --- timestamps with a space ------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", [True, "without_z"])
def test_timestamps_with_a_space_are_read(cpo, partner, shared_locations, style):
    cpo.misbehave["space_timestamps"] = style
    session = json.loads((EXAMPLES / "session_example_2_short_finished.json").read_text())
    cdr = json.loads((EXAMPLES / "cdr_example.json").read_text())
    cdr["last_updated"] = "2015-06-29T22:01:13.250Z"  # fractions of a second too
    tariffs = json.loads(gzip.decompress((NL_DATA / "tariffs.json.gz").read_bytes()))
    plain_tariffs = [t for t in tariffs if "start_date_time" not in t and "end_date_time" not in t][:10]
    cpo.data.update(sessions=[session], cdrs=[cdr], tariffs=plain_tariffs)

    results = {module: pull(partner, module, sleep=no_sleep) for module in ("locations", "tariffs", "sessions", "cdrs")}

    assert {module: (r.stored, r.errors) for module, r in results.items()} == {
        "locations": (N, []),
        "tariffs": (10, []),
        "sessions": (1, []),
        "cdrs": (1, []),
    }
    first = db.session.query(Location).filter_by(ocpi_id=shared_locations[0]["id"]).one()
    assert " " in first.data["last_updated"]  # kept as served: the CPO did send it with a space
    assert first.last_updated == dt.datetime.fromisoformat(shared_locations[0]["last_updated"])
    assert db.session.query(ChargingSession).one().start_date_time == dt.datetime(2015, 6, 29, 22, 39, 9, tzinfo=dt.UTC)
    assert db.session.query(Cdr).one().last_updated == dt.datetime(2015, 6, 29, 22, 1, 13, 250000, tzinfo=dt.UTC)
    assert db.session.query(TariffVersion).count() == 10


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-11-02 12:00:00Z", dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)),
        ("2026-11-02 12:00:00", dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)),  # no zone: UTC
        ("2026-11-02 12:00:00.5Z", dt.datetime(2026, 11, 2, 12, 0, 0, 500000, tzinfo=dt.UTC)),
        ("2026-11-02 13:00:00.123+01:00", dt.datetime(2026, 11, 2, 12, 0, 0, 123000, tzinfo=dt.UTC)),
        ("2026-11-02T12:00:00Z", dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)),
    ],
)
def test_a_partner_timestamp_may_have_a_space_for_the_t(text, moment):
    assert to_datetime(text, "last_updated") == moment
    errors: list[tuple[str, str]] = []
    assert FieldReader({"last_updated": text}, "", errors).timestamp("last_updated") == moment and errors == []


@pytest.mark.parametrize(
    "text",
    ["2026-11-02x12:00:00Z", "2026-11-02  12:00:00Z", "20261102T120000Z", "2026-W45-1", "2026-11-02Z", "yesterday", ""],
)
def test_what_is_no_timestamp_is_still_refused(text):
    with pytest.raises(InvalidObjectError, match="last_updated is not a valid DateTime"):
        to_datetime(text, "last_updated")
    errors: list[tuple[str, str]] = []
    assert FieldReader({"last_updated": text}, "", errors).timestamp("last_updated") is None
    assert errors == [("last_updated", "must be an OCPI DateTime")]


# --- endpoints listed in lower case -------------------------------------------------------------------------------


def test_endpoints_listed_in_another_case_are_found(cpo, partner):
    """A peer lists ``"role": "sender"`` and ``"identifier": "Locations"``: still its Sender interface."""
    spelled = {"locations": "Locations", "cdrs": "CDRs"}
    partner.endpoints = [
        {"identifier": spelled.get(e["identifier"], e["identifier"]), "role": "sender", "url": e["url"]}
        for e in sender_endpoints(cpo)
    ]
    db.session.commit()

    assert partner.endpoint_url("cdrs", "SENDER") == cpo.url(f"{PREFIX}/cdrs")
    assert partner.endpoint_url("tokens", "SENDER") is None
    assert pull(partner, "locations", sleep=no_sleep).stored == N
    assert pull(partner, "cdrs", sleep=no_sleep).pages == 1
