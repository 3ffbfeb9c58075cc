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
from app.roaming.receive.pull import PullError, next_page_url, pull
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


def test_next_page_url_rules():
    base = "http://cpo/ocpi/locations?date_to=X&offset=0&limit=10"
    link = {"Link": '<http://cpo/next?offset=10>; rel="next"', "X-Total-Count": "25"}
    assert next_page_url(base, link, 10) == "http://cpo/next?offset=10"
    computed = next_page_url(base, {"X-Total-Count": "25", "X-Limit": "10"}, 10)
    assert parse_qs(urlsplit(computed).query) == {"date_to": ["X"], "offset": ["10"], "limit": ["10"]}
    assert next_page_url(base.replace("offset=0", "offset=20"), {"X-Total-Count": "25"}, 5) is None
    assert next_page_url(base, {}, 10) is None  # neither Link nor a total: last page
