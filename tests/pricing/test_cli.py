"""``pricing price-cdr``: one JSON object on stdout; clear stderr message and exit code 2 on bad input."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ._support import EXAMPLES
from ._support import pricing_cli as pricing_group

MINIMAL_CDR = {
    "start_date_time": "2024-03-01T21:30:00Z",
    "end_date_time": "2024-03-01T23:30:00Z",
    "currency": "EUR",
    "charging_periods": [
        {
            "start_date_time": "2024-03-01T21:30:00Z",
            "dimensions": [{"type": "ENERGY", "volume": 20}, {"type": "TIME", "volume": 1.5}],
        },
        {"start_date_time": "2024-03-01T23:00:00Z", "dimensions": [{"type": "PARKING_TIME", "volume": 0.5}]},
    ],
}


def run(tmp_path, tariff, cdr, *extra):
    tfile, cfile = tmp_path / "tariff.json", tmp_path / "cdr.json"
    tfile.write_text(tariff if isinstance(tariff, str) else json.dumps(tariff))
    cfile.write_text(cdr if isinstance(cdr, str) else json.dumps(cdr))
    runner = CliRunner()
    return runner.invoke(pricing_group, ["price-cdr", "--tariff", str(tfile), "--cdr", str(cfile), *extra])


def load(name):
    return json.loads((EXAMPLES / name).read_text())


def test_prices_minimal_cdr(tmp_path):
    result = run(tmp_path, load("tariff_10_025kwh_parking_start.json"), MINIMAL_CDR)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out == {
        "currency": "EUR",
        "total_cost": {"excl_vat": "6.5000", "incl_vat": "7.3000"},
        "total_energy": "20.0000",
        "total_energy_cost": {"excl_vat": "5.0000", "incl_vat": "5.5000"},
        "total_time": "2.0000",
        "total_time_cost": {"excl_vat": "0.0000", "incl_vat": "0.0000"},
        "total_parking_time": "0.5000",
        "total_parking_cost": {"excl_vat": "1.0000", "incl_vat": "1.2000"},
        "total_fixed_cost": {"excl_vat": "0.5000", "incl_vat": "0.6000"},
        "total_reservation_cost": {"excl_vat": "0.0000", "incl_vat": "0.0000"},
        "notes": [],
    }
    assert result.stderr == ""


def test_accepts_envelope_and_timezone(tmp_path):
    tariff = {
        "data": {
            "currency": "EUR",
            "elements": [
                {
                    "price_components": [{"type": "ENERGY", "price": 0.1, "step_size": 1}],
                    "restrictions": {"start_time": "22:00", "end_time": "06:00"},
                },
                {"price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 1}]},
            ],
        },
        "status_code": 1000,
        "timestamp": "2024-03-01T00:00:00Z",
    }
    utc = json.loads(run(tmp_path, tariff, MINIMAL_CDR).stdout)
    brussels = json.loads(run(tmp_path, tariff, MINIMAL_CDR, "--timezone", "Europe/Brussels").stdout)
    # 20 kWh over 21:30-23:00 UTC: a third before 22:00 UTC (× 0.30), the rest × 0.10; in Brussels all × 0.10.
    assert utc["total_cost"]["excl_vat"] == "3.3333"
    assert brussels["total_cost"]["excl_vat"] == "2.0000"


def test_official_cdr_example(tmp_path):
    cdr = load("cdr_example.json")
    result = run(tmp_path, cdr["tariffs"][0], cdr)
    assert json.loads(result.stdout)["total_cost"] == {"excl_vat": "4.0000", "incl_vat": "4.4000"}


@pytest.mark.parametrize(
    ("tariff", "cdr", "message"),
    [
        ("{not json", MINIMAL_CDR, "invalid JSON"),
        (load("tariff_1_simple_2hour.json"), "[1, 2", "invalid JSON"),
        (
            load("tariff_1_simple_2hour.json"),
            {k: v for k, v in MINIMAL_CDR.items() if k != "currency"},
            "currency",
        ),
        (load("tariff_1_simple_2hour.json"), {**MINIMAL_CDR, "end_date_time": 5}, "end_date_time"),
        (
            load("tariff_1_simple_2hour.json"),
            {**MINIMAL_CDR, "currency": "USD"},
            "differs from tariff currency",
        ),
        ({**load("tariff_1_simple_2hour.json"), "elements": []}, MINIMAL_CDR, "elements"),
        (
            {
                "currency": "EUR",
                "elements": [{"price_components": [{"type": "ENERGY", "price": "0.2", "step_size": 1}]}],
            },
            MINIMAL_CDR,
            "elements[0].price_components[0].price: expected a number",
        ),
        (
            load("tariff_1_simple_2hour.json"),
            {
                **MINIMAL_CDR,
                "charging_periods": [
                    {
                        "start_date_time": "2024-03-01T21:30:00Z",
                        "dimensions": [{"type": "ENERGY", "volume": -1}],
                    }
                ],
            },
            "negative ENERGY",
        ),
        (load("tariff_6_025kwh_start_max_price.json"), MINIMAL_CDR, "outside the tariff's validity"),
    ],
)
def test_invalid_input_exit_code_2(tmp_path, tariff, cdr, message):
    result = run(tmp_path, tariff, cdr)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_unknown_timezone_and_missing_file(tmp_path):
    result = run(tmp_path, load("tariff_1_simple_2hour.json"), MINIMAL_CDR, "--timezone", "Mars/Olympus")
    assert result.exit_code == 2 and "unknown time zone" in result.stderr
    runner = CliRunner()
    result = runner.invoke(pricing_group, ["price-cdr", "--tariff", str(tmp_path / "nope.json"), "--cdr", "x"])
    assert result.exit_code == 2 and "cannot read" in result.stderr
