"""Factory functions for test data, going through the same services as production code."""

from __future__ import annotations

import itertools

from app.accounts import services
from app.accounts.models import Role, User
from app.extensions import db
from tests.helpers import submit_form

PASSWORD = "correct-horse-battery"
_sequence = itertools.count(1)


def driver_profile(**overrides: object) -> services.DriverProfile:
    values: dict[str, object] = {
        "full_name": "Jan Janssens",
        "street": "Meir 10",
        "postal_code": "2000",
        "city": "Antwerpen",
        "country": "BE",
        "language": "en",
    }
    if overrides.get("country") == "NL" and "postal_code" not in overrides:  # an address the NL rules accept
        values.update(street="Oudegracht 1", postal_code="3511 AB", city="Utrecht")
    values.update(overrides)
    return services.DriverProfile(**values)  # type: ignore[arg-type]


def make_user(
    role: Role = Role.DRIVER,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    confirmed: bool = True,
    **profile: object,
) -> User:
    email = email or f"user{next(_sequence)}@example.com"
    user = services.create_user(
        email,
        password,
        role,
        profile=driver_profile(**profile) if role == Role.DRIVER else None,
        confirmed=confirmed,
        actor_label="test",
    )
    db.session.flush()
    return user


def login(client, user: User, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    response = submit_form(client, "/login", {"email": user.email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def stock_cards(count: int = 5, start: int = 1) -> list[tuple[int, str, str]]:
    """Rows for ``import_stock``: 8-hex-digit UIDs and printed numbers."""
    return [(n, f"{0x04A00000 + start + n:08X}", f"VLT-{start + n:06d}") for n in range(count)]


def add_stock(count: int = 5, start: int = 1) -> None:
    from app.cards.stock import import_stock

    import_stock(stock_cards(count, start), batch=f"test-{start}")


def give_payment_method(account, *, exp_year: int = 2099, method_type: str = "card"):  # type: ignore[no-untyped-def]
    """A saved payment method as the Stripe flow would record it (the Stripe flow itself is tested elsewhere)."""
    from app.payments.models import PaymentMethod

    method = PaymentMethod(
        account_id=account.id,
        stripe_payment_method_id=f"pm_test_{account.id}_{next(_sequence)}",
        method_type=method_type,
        brand="visa" if method_type == "card" else None,
        last4="4242",
        exp_month=12 if method_type == "card" else None,
        exp_year=exp_year if method_type == "card" else None,
    )
    db.session.add(method)
    db.session.flush()
    return method


def one_connector_location(tariff_id: str) -> dict:  # type: ignore[type-arg]
    """An OCPI Location (NL/TCP, Utrecht) with one EVSE whose one AC connector has ``tariff_id``."""
    return {
        "country_code": "NL",
        "party_id": "TCP",
        "id": "LOC-EST",
        "publish": True,
        "address": "Stationsplein 1",
        "city": "Utrecht",
        "country": "NLD",
        "coordinates": {"latitude": "52.089444", "longitude": "5.110278"},
        "time_zone": "Europe/Amsterdam",
        "last_updated": "2026-01-01T00:00:00Z",
        "evses": [
            {
                "uid": "E1",
                "evse_id": "NL*TCP*E1",
                "status": "AVAILABLE",
                "last_updated": "2026-01-01T00:00:00Z",
                "connectors": [
                    {
                        "id": "1",
                        "standard": "IEC_62196_T2",
                        "format": "SOCKET",
                        "power_type": "AC_3_PHASE",
                        "max_voltage": 230,
                        "max_amperage": 32,
                        "max_electric_power": 22000,
                        "tariff_ids": [tariff_id],
                        "last_updated": "2026-01-01T00:00:00Z",
                    }
                ],
            }
        ],
    }
