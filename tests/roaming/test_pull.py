"""Pull client against the fake CPO over real HTTP, paging the shared NDW data, with its misbehaviours."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from app.charging.models import Cdr, ChargingSession
from app.extensions import db
from app.roaming.models import Location, PullCursor, TariffVersion
from app.roaming.receive.pull import PullError, pull
from app.roaming.receive.pull_paging import Window, link_problem, next_page
from tests.roaming.fake_cpo.sender import sender_endpoints
from tests.shared_data import EXAMPLES as SHARED_EXAMPLES
from tests.shared_data import NL_DATA

DATA = NL_DATA
EXAMPLES = SHARED_EXAMPLES
N = 300


@pytest.fixture(scope="module")
def shared_locations() -> list[dict]:
    return json.loads(gzip.decompress((DATA / "locations.json.gz").read_bytes()))[:N]


@pytest.fixture
def cpo(fake_cpo, partner, shared_locations):  # type: ignore[no-untyped-def]
    """The fake CPO serving 300 real locations; our partner row points at its Sender endpoints.

    The NDW feed carries 29 parties, so the partner is a hub (a hub relays many parties)."""
    fake_cpo.accepted_tokens.add(partner.outgoing_token)
    fake_cpo.data["locations"] = list(shared_locations)
    partner.is_hub = True
    partner.endpoints = sender_endpoints(fake_cpo)
    db.session.commit()
    return fake_cpo


def gets(cpo, module: str = "locations") -> list[dict[str, str]]:
    return [r.query for r in cpo.requests_to(f"/ocpi/cpo/2.2.1/{module}", "GET")]


def no_sleep(delays: list[float] | None = None):  # type: ignore[no-untyped-def]
    return delays.append if delays is not None else (lambda _: None)


def test_pull_follows_link_pages_and_sets_cursor(cpo, partner):
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    result = pull(partner, "locations", limit=50, sleep=no_sleep(), clock=lambda: start)
    assert (result.pages, result.received, result.stored, result.errors) == (6, N, N, [])
    assert db.session.query(Location).count() == N
    queries = gets(cpo)
    assert [q["offset"] for q in queries] == ["0", "50", "100", "150", "200", "250"]
    assert all(q["date_to"] == "2026-11-01T00:00:00Z" and "date_from" not in q for q in queries)
    cursor = db.session.query(PullCursor).one()
    assert cursor.synced_until == start and cursor.next_url is None and cursor.run_started_at is None

    # incremental: the next run asks only for what changed since the previous run started
    later = start + dt.timedelta(hours=1)
    again = pull(partner, "locations", limit=50, sleep=no_sleep(), clock=lambda: later)
    assert (again.pages, again.received) == (1, 0)  # an empty page ends the run
    assert gets(cpo)[-1]["date_from"] == "2026-11-01T00:00:00Z"


def test_missing_link_header_continues_by_total_count(cpo, partner):
    cpo.misbehave.update(no_link_header=True, page_size=40)  # and the server caps the page size
    result = pull(partner, "locations", limit=100, sleep=no_sleep())
    assert (result.pages, result.stored) == (8, N)
    assert [q["offset"] for q in gets(cpo)] == [str(i) for i in range(0, N, 40)]


def test_page_failing_once_is_retried_with_backoff(cpo, partner):
    cpo.misbehave["fail_once_at_offset"] = 100
    delays: list[float] = []
    result = pull(partner, "locations", limit=50, sleep=no_sleep(delays), backoff=0.5)
    assert result.stored == N
    assert delays == [0.5]
    assert [q["offset"] for q in gets(cpo)].count("100") == 2


def test_objects_wrapped_in_a_one_item_list(cpo, partner):
    cpo.misbehave["wrap_single_in_list"] = True
    result = pull(partner, "locations", limit=100, sleep=no_sleep())
    assert (result.stored, result.errors) == (N, [])


def test_empty_sender(cpo, partner):
    cpo.data["locations"] = []
    result = pull(partner, "locations", sleep=no_sleep())
    assert (result.pages, result.received) == (1, 0)
    assert db.session.query(PullCursor).one().synced_until is not None


def test_date_to_is_exclusive(cpo, partner, shared_locations):
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    at_start = {**shared_locations[0], "id": "AT-START", "last_updated": "2026-11-01T00:00:00Z"}
    just_before = {**shared_locations[1], "id": "BEFORE", "last_updated": "2026-10-31T23:59:59Z"}
    cpo.data["locations"] = [at_start, just_before]
    pull(partner, "locations", sleep=no_sleep(), clock=lambda: start)
    assert {loc.ocpi_id for loc in db.session.query(Location)} == {"BEFORE"}
    pull(partner, "locations", sleep=no_sleep(), clock=lambda: start + dt.timedelta(minutes=5))
    assert {loc.ocpi_id for loc in db.session.query(Location)} == {"BEFORE", "AT-START"}  # date_from inclusive


def test_resume_after_a_failure(cpo, partner):
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    cpo.misbehave["fail_at_offset"] = 150
    with pytest.raises(PullError):
        pull(partner, "locations", limit=50, retries=2, sleep=no_sleep(), clock=lambda: start)
    cursor = db.session.query(PullCursor).one()
    assert "offset=150" in cursor.next_url and "HTTP 500" in cursor.last_error
    assert cursor.synced_until is None and cursor.run_started_at == start
    assert db.session.query(Location).count() == 150  # the pages before the failure are committed
    assert [q["offset"] for q in gets(cpo)] == ["0", "50", "100", "150", "150", "150"]

    del cpo.misbehave["fail_at_offset"]
    result = pull(partner, "locations", limit=50, sleep=no_sleep(), clock=lambda: start + dt.timedelta(hours=2))
    assert result.resumed and result.stored == 150
    assert [q["offset"] for q in gets(cpo)][6:] == ["150", "200", "250"]
    assert all(q["date_to"] == "2026-11-01T00:00:00Z" for q in gets(cpo))  # the interrupted run's window
    assert db.session.query(Location).count() == N
    cursor = db.session.query(PullCursor).one()
    assert cursor.synced_until == start and cursor.next_url is None and cursor.last_error is None


def test_direct_cpo_may_not_deliver_other_parties(cpo, partner, shared_locations):
    partner.is_hub = False  # NL/TCP only
    cpo.data["locations"] = [shared_locations[0], {**shared_locations[1], "party_id": "TCP"}]
    db.session.commit()
    result = pull(partner, "locations", sleep=no_sleep())
    assert result.stored == 1 and len(result.errors) == 1
    assert "not allowed" in result.errors[0][1]


def test_pull_tariffs(cpo, partner):
    tariffs = json.loads(gzip.decompress((DATA / "tariffs.json.gz").read_bytes()))[:120]
    cpo.data["tariffs"] = tariffs
    result = pull(partner, "tariffs", limit=50, sleep=no_sleep())
    assert (result.pages, result.stored) == (3, 120)
    assert db.session.query(TariffVersion).count() == 120


def test_pull_sessions_and_cdrs(cpo, partner):
    session = json.loads((EXAMPLES / "session_example_2_short_finished.json").read_text())
    cdr = json.loads((EXAMPLES / "cdr_example.json").read_text())
    cpo.data["sessions"] = [session]
    cpo.data["cdrs"] = [cdr]
    assert pull(partner, "sessions", sleep=no_sleep()).stored == 1
    assert pull(partner, "cdrs", sleep=no_sleep()).stored == 1
    assert db.session.query(ChargingSession).count() == 1
    assert db.session.query(Cdr).count() == 1


def test_cli_pull(app, cpo, partner):
    result = app.test_cli_runner().invoke(args=["roaming", "pull", "NL/TCP", "--module", "locations", "--limit", "100"])
    assert result.exit_code == 0, result.output
    assert f"locations: 3 pages, {N} received, {N} stored" in result.output


def test_next_page_rules():
    window = Window("http://cpo/ocpi/locations", None, dt.datetime(2026, 11, 1, tzinfo=dt.UTC), 10)
    first = window.page(0)
    assert parse_qs(urlsplit(first).query) == {"date_to": ["2026-11-01T00:00:00Z"], "offset": ["0"], "limit": ["10"]}

    link = {"Link": '<http://cpo/ocpi/locations?cursor=abc>; rel="next"', "X-Total-Count": "25"}
    assert next_page(window, 0, link, 10, {first}).url == "http://cpo/ocpi/locations?cursor=abc"  # opaque: fine
    assert next_page(window, 0, link, 10, {first}).offset == 10

    computed = next_page(window, 0, {"X-Total-Count": "25", "X-Limit": "5"}, 10, {first})
    assert (computed.offset, computed.note) == (10, None)  # no Link but more remain: by offset, quietly
    assert parse_qs(urlsplit(computed.url).query)["limit"] == ["5"]  # the server's X-Limit caps the page
    assert next_page(window, 20, {"X-Total-Count": "25"}, 5, {first}).url is None
    assert next_page(window, 0, {}, 10, {first}).url is None  # neither Link nor a total: last page


@pytest.mark.parametrize(
    ("link", "problem"),
    [
        ("http://cpo/ocpi/locations?offset=10", None),
        ("http://CPO:80/ocpi/locations/?offset=10", None),  # the same origin and path, spelled otherwise
        ("http://cpo/ocpi/VersionNumber.v_2_2_1/locations?offset=10", "is not at the endpoint's path"),
        ("http://cpo/ocpi/locations/extra?offset=10", "is not at the endpoint's path"),
        ("https://cpo/ocpi/locations?offset=10", "leaves the origin"),
        ("http://cpo:8080/ocpi/locations?offset=10", "leaves the origin"),
        ("http://other/ocpi/locations?offset=10", "leaves the origin"),
        ("/ocpi/locations?offset=10", "is not a URL"),
        ("http://cpo:port/ocpi/locations", "is not a URL"),
        ("http://cpo/ocpi/locations?offset=0&limit=10", "already fetched"),
    ],
)
def test_which_links_are_pages_of_the_endpoint(link, problem):
    found = link_problem("http://cpo/ocpi/locations", link, {"http://cpo/ocpi/locations?offset=0&limit=10"})
    assert found == problem if problem is None else problem in (found or "")


def test_a_broken_link_is_replaced_by_the_next_offset_in_the_window():
    since = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    window = Window("http://cpo/ocpi/locations", since, dt.datetime(2026, 11, 1, tzinfo=dt.UTC), 10)
    broken = {"Link": '<http://cpo/ocpi/VersionNumber.v_2_2_1/locations?offset=20>; rel="next"'}

    page = next_page(window, 10, broken, 10, set())

    assert page.offset == 20 and "VersionNumber.v_2_2_1" in (page.note or "")
    assert parse_qs(urlsplit(page.url).query) == {
        "date_from": ["2026-10-01T00:00:00Z"],
        "date_to": ["2026-11-01T00:00:00Z"],
        "offset": ["20"],
        "limit": ["10"],
    }
    assert next_page(window, 10, {**broken, "X-Total-Count": "20"}, 10, set()).url is None  # the total is reached
    unknown = next_page(window, None, broken, 10, set())  # resumed at a Link without offset: the window again
    assert unknown.offset == 0 and "offset=0" in (unknown.url or "")


def test_cli_pull_without_module_pulls_every_module_and_goes_on_after_a_failure(app, cpo, partner):
    cpo.data["cdrs"] = [json.loads((EXAMPLES / "cdr_example.json").read_text())]
    partner.endpoints = [  # the locations endpoint is one our guard refuses: that module fails, the rest go on
        {**e, "url": "http://10.255.0.1/locations"} if e["identifier"] == "locations" else e for e in partner.endpoints
    ]
    db.session.commit()

    result = app.test_cli_runner().invoke(args=["roaming", "pull", "NL/TCP", "--restart"])

    assert result.exit_code != 0
    assert "locations: pull locations from Test CPO stopped" in result.output and "address not allowed" in result.output
    assert "tariffs: 1 pages, 0 received" in result.output and "cdrs: 1 pages, 1 received, 1 stored" in result.output
    assert "pull of locations from Test CPO failed" in result.output
    assert db.session.query(Cdr).count() == 1
