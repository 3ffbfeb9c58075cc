"""Card stock import from the manufacturer's CSV: all lines or none, with clear per-line errors."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from app.cards.models import StockCard
from app.cards.stock import stock_levels
from app.extensions import db


def _count() -> int:
    return db.session.scalar(select(func.count(StockCard.id)))


def test_import_stock_cli(app, db_session, tmp_path: Path):
    csv_file = tmp_path / "batch-2026-11.csv"
    csv_file.write_text("uid,visual_number\n04a1b2c3,VLT-000001\n04A1B2C3D4E5F6,VLT-000002\n04:a1:b2:c4,VLT-000003\n")
    result = app.test_cli_runner().invoke(args=["cards", "import-stock", str(csv_file)])
    assert result.exit_code == 0, result.output
    assert "imported 3 cards" in result.output
    uids = set(db.session.scalars(select(StockCard.uid)))
    assert uids == {"04A1B2C3", "04A1B2C3D4E5F6", "04A1B2C4"}
    assert stock_levels().available == 3


def test_bad_lines_are_all_reported_and_nothing_is_imported(app, db_session, tmp_path: Path):
    existing = tmp_path / "first.csv"
    existing.write_text("04000001,VLT-1\n")
    assert app.test_cli_runner().invoke(args=["cards", "import-stock", str(existing)]).exit_code == 0
    before = _count()

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "uid,visual_number\n"
        "04000002,VLT-2\n"  # fine
        "XYZ12345,VLT-3\n"  # not hex
        "0400000,VLT-4\n"  # 7 characters
        "04000002,VLT-5\n"  # uid repeats line 2
        "04000006,VLT-2\n"  # visual number repeats line 2
        "04000001,VLT-7\n"  # uid already in stock
        "04000008\n"  # one column
    )
    result = app.test_cli_runner().invoke(args=["cards", "import-stock", str(bad)])
    assert result.exit_code == 1
    output = result.output
    assert "nothing was imported" in output
    assert "line 8: expected 2 columns" in output
    # The file is refused on the column error first; fix that line and every other problem is reported at once.
    bad.write_text("\n".join(bad.read_text().splitlines()[:-1]) + "\n")
    output = app.test_cli_runner().invoke(args=["cards", "import-stock", str(bad)]).output
    assert "line 3: uid 'XYZ12345' is not 8 or 14 hexadecimal characters" in output
    assert "line 4: uid '0400000' is not 8 or 14" in output
    assert "line 5: uid 04000002 repeats line 2" in output
    assert "line 6: visual number VLT-2 repeats line 2" in output
    assert "line 7: uid 04000001 is already known" in output
    assert _count() == before


def test_empty_file_is_refused(app, db_session, tmp_path: Path):
    empty = tmp_path / "empty.csv"
    empty.write_text("uid,visual_number\n")
    result = app.test_cli_runner().invoke(args=["cards", "import-stock", str(empty)])
    assert result.exit_code == 1 and "holds no cards" in result.output


def test_issue_cli_prints_an_ocpi_token(app, db_session, tmp_path: Path):
    import json

    from tests.factories import add_stock, make_user

    user = make_user(email="ops@example.com", language="nl")
    add_stock(1, start=500)
    result = app.test_cli_runner().invoke(args=["cards", "issue", "--email", "ops@example.com"])
    assert result.exit_code == 0, result.output
    token = json.loads(result.output)
    assert set(token) == {
        "country_code",
        "party_id",
        "uid",
        "type",
        "contract_id",
        "visual_number",
        "issuer",
        "group_id",
        "valid",
        "whitelist",
        "language",
        "last_updated",
    }
    assert token["valid"] is True and token["type"] == "RFID" and token["whitelist"] == "ALLOWED"
    assert token["country_code"] == "BE" and token["party_id"] == "VLT" and token["language"] == "nl"
    assert token["group_id"] == f"VLT-A{user.account.id:010d}"
    assert token["last_updated"].endswith("Z")
    from app.cards.emaid import parse_emaid

    parse_emaid(token["contract_id"])  # valid check digit

    no_stock = app.test_cli_runner().invoke(args=["cards", "issue", "--email", "ops@example.com"])
    assert no_stock.exit_code == 1 and "No cards in stock" in no_stock.output
    unknown = app.test_cli_runner().invoke(args=["cards", "issue", "--email", "nobody@example.com"])
    assert unknown.exit_code == 1
