"""Production can never invoice as the demo seller: it refuses to start without the seller's identity (name,
address, VAT number, IBAN, email, company register), with the demo VAT number or IBAN, or with an IBAN whose
check digits are wrong. The demo defaults stay for ``make run``."""

from __future__ import annotations

import pytest

from app import create_app
from app.config import SELLER_IDENTITY_VARIABLES, ConfigError, DevelopmentConfig
from tests.conftest import SELLER_ENVIRONMENT


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in {
        "SECRET_KEY": "x" * 40,
        "DATABASE_URL": "sqlite:///:memory:",
        "STRIPE_API_KEY": "sk_live_x",
        "STRIPE_WEBHOOK_SECRET": "whsec_x",
        "PUBLIC_BASE_URL": "https://emsp.example.com",
    }.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_a_complete_identity_starts(production_env):
    assert create_app("production").config["SELLER"]  # read at import; the environment is checked at start


@pytest.mark.parametrize("name", SELLER_IDENTITY_VARIABLES)
def test_each_part_of_the_identity_is_required(production_env, name):
    production_env.delenv(name)
    with pytest.raises(ConfigError, match=f"seller's identity: set {name}"):
        create_app("production")


@pytest.mark.parametrize(
    ("name", "value"), [("SELLER_VAT_NUMBER", "BE0403170701"), ("SELLER_IBAN", "BE71 0961 2345 6769")]
)
def test_the_demo_sellers_numbers_are_refused(production_env, name, value):
    production_env.setenv(name, value)
    with pytest.raises(ConfigError, match=f"demo seller's {name}"):
        create_app("production")


@pytest.mark.parametrize("iban", ["BE68539007547035", "NL91ABNA041716430", "not an iban"])
def test_an_iban_with_wrong_check_digits_is_refused(production_env, iban):
    production_env.setenv("SELLER_IBAN", iban)
    with pytest.raises(ConfigError, match="SELLER_IBAN is not a valid IBAN"):
        create_app("production")


def test_a_dutch_iban_passes(production_env):
    production_env.setenv("SELLER_IBAN", "NL91 ABNA 0417 1643 00")
    create_app("production")


def test_development_keeps_the_demo_seller():
    assert DevelopmentConfig.SELLER["vat_number"] and set(SELLER_ENVIRONMENT) == set(SELLER_IDENTITY_VARIABLES)
