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
    values.update(overrides)
    return services.DriverProfile(**values)  # type: ignore[arg-type]


def make_user(role: Role = Role.DRIVER, *, email: str | None = None, password: str = PASSWORD,
              confirmed: bool = True, **profile: object) -> User:
    email = email or f"user{next(_sequence)}@example.com"
    user = services.create_user(
        email, password, role, profile=driver_profile(**profile) if role == Role.DRIVER else None,
        confirmed=confirmed, actor_label="test",
    )
    db.session.flush()
    return user


def login(client, user: User, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    response = submit_form(client, "/login", {"email": user.email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response
