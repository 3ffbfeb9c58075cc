"""``flask demo seed --charge-points DIR`` (what ``make run`` does with the shared Dutch data): the locations and
tariffs imported for the map, a demo hub relaying their parties, a re-run that updates and never duplicates, and a
missing folder skipped with a clear message."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.demo.charge_points import DEMO_HUB_NAME
from app.extensions import db
from app.roaming.models import Location, Partner, PartnerParty, PartnerStatus, TariffVersion
from tests.finder.builders import CCS_150KW, TYPE2_11KW, add_partner, connector, evse, location_object

TARIFF = {
    "country_code": "NL",
    "party_id": "AAA",
    "id": "T-AAA",
    "currency": "EUR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": 0.39, "vat": 21.0, "step_size": 1}]}],
    "last_updated": "2026-05-01T00:00:00Z",
}


def write_folder(folder: Path, locations: list[dict[str, Any]], tariffs: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, items in (("locations.json.gz", locations), ("tariffs.json.gz", tariffs)):
        (folder / name).write_bytes(gzip.compress(json.dumps(items).encode()))
    return folder


def sample_locations() -> list[dict[str, Any]]:
    return [
        location_object(52.09, 5.12, evse("E1", connector(TYPE2_11KW, tariff_ids=["T-AAA"])), party_id="AAA", id="A1"),
        location_object(52.10, 5.13, evse("E1", connector(CCS_150KW)), party_id="BBB", id="B1"),
    ]


def seed(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["demo", "seed", *args])
    assert result.exit_code == 0, result.output
    return result.output


def counts() -> tuple[int, int, int, int]:
    return (
        db.session.scalar(select(func.count()).select_from(Location)) or 0,
        db.session.scalar(select(func.count()).select_from(TariffVersion)) or 0,
        db.session.scalar(select(func.count()).select_from(Partner)) or 0,
        db.session.scalar(select(func.count()).select_from(PartnerParty)) or 0,
    )


def test_the_demo_imports_charge_points_and_a_hub_that_relays_them(app, db_session, tmp_path):
    folder = write_folder(tmp_path / "nl", sample_locations(), [TARIFF])
    output = seed(app, "--charge-points", str(folder))
    assert "locations: 2 read, 2 stored" in output and "tariffs: 1 read, 1 stored" in output
    assert "demo hub: registered, 2 parties added as CONNECTED" in output
    assert counts() == (2, 1, 1, 2)
    hub = db.session.scalar(select(Partner).where(Partner.name == DEMO_HUB_NAME))
    assert hub is not None and hub.is_hub and hub.status == PartnerStatus.REGISTERED
    assert hub.endpoints == [] and hub.outgoing_token is None  # nothing is ever sent to it
    assert {(p.party_id, p.status) for p in hub.parties} == {("AAA", "CONNECTED"), ("BBB", "CONNECTED")}
    audited = db.session.scalars(
        select(AuditEntry.action).where(
            AuditEntry.subject_id == str(hub.id), AuditEntry.subject_type == "roaming_partner"
        )
    ).all()
    assert set(audited) >= {"partner.added", "partner.registered"}


def test_a_rerun_updates_and_never_duplicates(app, db_session, tmp_path):
    folder = write_folder(tmp_path / "nl", sample_locations(), [TARIFF])
    seed(app, "--charge-points", str(folder))
    before = counts()
    renamed = sample_locations()
    renamed[0]["name"] = "Renamed"
    renamed[0]["last_updated"] = "2026-02-01T00:00:00Z"
    write_folder(folder, renamed, [TARIFF])
    output = seed(app, "--charge-points", str(folder))
    assert "demo hub: exists, 0 parties added" in output
    assert counts() == before
    assert db.session.scalar(select(Location.name).where(Location.ocpi_id == "A1")) == "Renamed"


def test_a_party_held_by_a_real_partner_is_left_to_it(app, db_session, tmp_path):
    add_partner("Real CPO", "BBB")
    db.session.commit()
    folder = write_folder(tmp_path / "nl", sample_locations(), [TARIFF])
    output = seed(app, "--charge-points", str(folder))
    assert "party NL/BBB left to" in output
    hub = db.session.scalar(select(Partner).where(Partner.name == DEMO_HUB_NAME))
    assert hub is not None and [p.party_id for p in hub.parties] == ["AAA"]


def test_a_missing_folder_is_skipped_with_a_clear_message(app, db_session, tmp_path):
    output = seed(app, "--charge-points", str(tmp_path / "absent"))
    assert "Charge points: skipped" in output and "is not a folder" in output
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / "locations.json.gz").write_bytes(gzip.compress(b"[]"))
    output = seed(app, "--charge-points", str(incomplete))
    assert "Charge points: skipped (missing" in output and "tariffs.json.gz" in output
    assert counts()[0] == 0
