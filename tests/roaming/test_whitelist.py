"""Whitelist files: ``flask roaming export-whitelist PARTNER --out FILE`` writes OCPI Token JSON and CSV."""

from __future__ import annotations

import csv
import json

from app.cards.models import CardStatus
from app.roaming.tasks import export_whitelists
from tests.roaming.token_fixtures import card_in


def test_cli_writes_json_and_csv(app, db_session, partner, tmp_path):
    active = card_in(CardStatus.ACTIVE)
    blocked = card_in(CardStatus.BLOCKED)
    db_session.commit()
    out = tmp_path / "wl" / "tokens.json"
    result = app.test_cli_runner().invoke(args=["roaming", "export-whitelist", "NL/TCP", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 tokens" in result.output
    tokens = json.loads(out.read_text())
    assert [t["uid"] for t in tokens] == [active.uid, blocked.uid]
    assert tokens[0]["valid"] is True and tokens[1]["valid"] is False
    assert tokens[0]["country_code"] == "BE" and tokens[0]["party_id"] == "VLT" and tokens[0]["type"] == "RFID"
    with (tmp_path / "wl" / "tokens.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["uid"] for row in rows] == [active.uid, blocked.uid]
    assert rows[0]["valid"] == "true" and rows[1]["valid"] == "false"
    assert rows[0]["contract_id"] == active.contract_id
    assert not list((tmp_path / "wl").glob("*.part"))


def test_cli_refuses_unknown_partner(app, db_session, tmp_path):
    result = app.test_cli_runner().invoke(
        args=["roaming", "export-whitelist", "XX/NOP", "--out", str(tmp_path / "x.json")]
    )
    assert result.exit_code != 0 and "no partner" in result.output


def test_periodic_task_exports_for_partners_without_token_push(app, db_session, partner, tmp_path):
    card_in(CardStatus.ACTIVE)
    app.config["WHITELIST_EXPORT_DIR"] = str(tmp_path)
    try:
        written = export_whitelists.delay().get()
    finally:
        app.config.pop("WHITELIST_EXPORT_DIR")
    assert written == [str(tmp_path / "NL-TCP-tokens.json")]
    assert len(json.loads((tmp_path / "NL-TCP-tokens.json").read_text())) == 1
    assert (tmp_path / "NL-TCP-tokens.csv").exists()
