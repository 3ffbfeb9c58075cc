"""Periodic and on-demand pulls (issue 13): ``roaming.pull_partner``, ``roaming.pull_all`` and their beat entry,
against fake CPOs over real HTTP. Without a broker the tasks run inline, as in the embedded default."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest

from app.charging.models import Cdr
from app.db import utcnow
from app.extensions import celery, db
from app.roaming.models import Location, Partner, PartnerStatus, PullCursor
from app.roaming.receive.pull import pull
from app.roaming.receive.pull_lock import exclusive_run
from app.roaming.tasks import BEAT_SCHEDULE, beat_schedule, pull_all, pull_partner
from tests.roaming.fake_cpo import FakeCpo, start_fake_cpo
from tests.roaming.fake_cpo.sender import PREFIX, sender_endpoints
from tests.shared_data import EXAMPLES, NL_DATA

N = 60


@pytest.fixture(scope="module")
def shared_locations() -> list[dict[str, Any]]:
    return json.loads(gzip.decompress((NL_DATA / "locations.json.gz").read_bytes()))[:N]


@pytest.fixture
def second_cpo() -> Iterator[FakeCpo]:
    running = start_fake_cpo(country_code="BE", party_id="TWO", name="Second CPO")
    try:
        yield running.cpo
    finally:
        running.stop()


def serve(cpo: FakeCpo, partner: Partner, locations: list[dict[str, Any]]) -> None:
    """``cpo`` serves ``locations`` and the standard's example CDR; ``partner`` (a hub: NDW has many parties)
    points at its Sender endpoints."""
    cpo.accepted_tokens.add(partner.outgoing_token or "")
    cpo.data["locations"] = list(locations)
    cpo.data["cdrs"] = [json.loads((EXAMPLES / "cdr_example.json").read_text())]
    partner.is_hub = True
    partner.endpoints = sender_endpoints(cpo)
    db.session.commit()


def another_partner(name: str, country_code: str, party_id: str, status: PartnerStatus) -> Partner:
    other = Partner(
        name=name,
        country_code=country_code,
        party_id=party_id,
        status=status,
        outgoing_token=f"our-token-for-{party_id.lower()}",
        registered_at=utcnow(),
        version="2.2.1",
        endpoints=[],
    )
    db.session.add(other)
    db.session.commit()
    return other


def gets(cpo: FakeCpo) -> list[str]:
    return [request.path for request in cpo.received if request.method == "GET"]


def test_pull_partner_pulls_every_module_the_partner_sends(fake_cpo, partner, shared_locations):
    serve(fake_cpo, partner, shared_locations)

    report = pull_partner.delay(partner.id).get()

    assert list(report) == ["locations", "tariffs", "sessions", "cdrs"]  # locations and tariffs first
    assert (report["locations"]["stored"], report["cdrs"]["stored"], report["tariffs"]["received"]) == (N, 1, 0)
    assert db.session.query(Location).count() == N and db.session.query(Cdr).count() == 1
    assert {cursor.module for cursor in db.session.query(PullCursor)} == {"locations", "tariffs", "sessions", "cdrs"}


def test_pull_partner_restart_pulls_the_modules_asked_for_again_without_duplicates(fake_cpo, partner, shared_locations):
    serve(fake_cpo, partner, shared_locations)
    pull_partner(partner.id)

    incremental = pull_partner(partner.id, ["locations"])
    restarted = pull_partner(partner.id, ["locations"], restart=True)

    assert list(incremental) == list(restarted) == ["locations"]
    assert (incremental["locations"]["received"], restarted["locations"]["received"]) == (0, N)
    assert db.session.query(Location).count() == N


def test_pull_partner_refuses_an_unknown_module_before_calling_anyone(fake_cpo, partner, shared_locations):
    serve(fake_cpo, partner, shared_locations)
    with pytest.raises(ValueError, match="unknown module tokens"):
        pull_partner(partner.id, ["locations", "tokens"])
    with pytest.raises(LookupError):
        pull_partner(partner.id + 1000)
    assert fake_cpo.received == [] and db.session.query(PullCursor).count() == 0


def test_a_suspended_partner_is_not_pulled(fake_cpo, partner, shared_locations):
    serve(fake_cpo, partner, shared_locations)
    partner.status = PartnerStatus.SUSPENDED
    db.session.commit()

    assert "suspended" in pull_partner(partner.id)["partner"]["skipped"]
    assert fake_cpo.received == []


def test_a_run_under_way_is_not_started_twice(fake_cpo, partner, shared_locations):
    """Beat's pull, "pull now" and the CLI may meet on one cursor: the second is refused at once."""
    serve(fake_cpo, partner, shared_locations)
    pull(partner, "locations")
    cursor = db.session.query(PullCursor).filter_by(module="locations").one()
    synced_until = cursor.synced_until

    with exclusive_run(cursor.id) as ours:
        assert ours
        report = pull_partner(partner.id, ["locations", "cdrs"])

    assert "already running" in report["locations"]["error"]
    assert report["cdrs"]["stored"] == 1  # the other module went on
    assert f"{PREFIX}/locations" not in gets(fake_cpo)[1:]
    assert db.session.get(PullCursor, cursor.id).synced_until == synced_until
    assert pull_partner(partner.id, ["locations"])["locations"]["received"] == 0  # free again afterwards


def test_pull_all_pulls_every_registered_partner_and_one_failure_stops_nothing(
    fake_cpo, second_cpo, partner, shared_locations
):
    serve(fake_cpo, partner, shared_locations[:30])
    second = another_partner("Second CPO", "BE", "TWO", PartnerStatus.REGISTERED)
    serve(second_cpo, second, shared_locations[30:])
    # The second partner's locations endpoint is one our guard refuses: that module fails, its CDRs do not.
    second.endpoints = [
        {**endpoint, "url": "http://10.255.0.1/ocpi/cpo/2.2.1/locations"}
        if endpoint["identifier"] == "locations"
        else endpoint
        for endpoint in second.endpoints
    ]
    suspended = another_partner("Paused CPO", "NL", "PAU", PartnerStatus.SUSPENDED)
    suspended.endpoints = sender_endpoints(second_cpo)
    another_partner("Pending CPO", "NL", "PEN", PartnerStatus.PENDING).endpoints = sender_endpoints(second_cpo)
    another_partner("No sender", "NL", "NOS", PartnerStatus.REGISTERED)
    db.session.commit()

    queued = pull_all.delay().get()

    assert queued == [partner.id, second.id]
    assert db.session.query(Location).count() == 30  # the first partner's
    assert db.session.query(Cdr).count() == 1  # both served the same CDR: stored once
    failed = db.session.query(PullCursor).filter_by(partner_id=second.id, module="locations").one()
    assert "address not allowed" in (failed.last_error or "") and failed.synced_until is None
    done = db.session.query(PullCursor).filter_by(partner_id=second.id, module="cdrs").one()
    assert done.synced_until is not None and done.last_error is None
    assert gets(second_cpo) == [f"{PREFIX}/tariffs", f"{PREFIX}/sessions", f"{PREFIX}/cdrs"]  # no one else's


def test_the_periodic_pull_is_on_beat_every_configured_interval(app, monkeypatch):
    assert celery.conf.beat_schedule["roaming-pull-all"]["task"] == "roaming.pull_all"
    assert BEAT_SCHEDULE["roaming-pull-all"]["schedule"] == 15 * 60.0 == app.config["ROAMING_PULL_INTERVAL"]

    monkeypatch.setitem(app.config, "ROAMING_PULL_INTERVAL", 120.0)
    schedule = beat_schedule(app.config)

    assert schedule["roaming-pull-all"] == {"task": "roaming.pull_all", "schedule": 120.0}
    assert schedule["roaming-push-tokens"] == BEAT_SCHEDULE["roaming-push-tokens"]
    for wrong in (0, -5, float("nan")):
        monkeypatch.setitem(app.config, "ROAMING_PULL_INTERVAL", wrong)
        with pytest.raises(ValueError, match="ROAMING_PULL_INTERVAL"):
            beat_schedule(app.config)
