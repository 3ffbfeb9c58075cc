"""Every OCPI receiver the fuzzer drives, each with the valid requests its cases start from (the official
examples made the test partner's, the stored objects they address) and the environment that holds them."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from functools import cache
from typing import Any

from flask.testing import FlaskClient

from app.cards.models import CardStatus
from app.db import utcnow
from app.extensions import db
from app.roaming.models import Command, Partner, PartnerStatus
from app.roaming.ocpi.auth import hash_token
from tests.fuzz.harness import Base, Receiver
from tests.roaming.conftest import OcpiTestClient, add_registered_hub
from tests.roaming.token_fixtures import card_in
from tests.shared_data import EXAMPLES

PENDING_TOKEN = "fuzz-pending-token-a"
HUB_TOKEN = "fuzz-hub-token-c"
LATER = "2022-02-02T10:00:00Z"
V = "/ocpi/2.2.1"
LOCATION_URL = V + "/locations/{country_code}/{party_id}/{location_id}"
EVSE_URL = LOCATION_URL + "/{evse_uid}"
CONNECTOR_URL = EVSE_URL + "/{connector_id}"
SESSION_URL = V + "/sessions/{country_code}/{party_id}/{session_id}"
TARIFF_URL = V + "/tariffs/{country_code}/{party_id}/{tariff_id}"
OURS = {"country_code": "NL", "party_id": "TCP"}


@cache
def _example_text(name: str) -> str:
    return (EXAMPLES / name).read_text()


def example(name: str) -> Any:
    return json.loads(_example_text(name))


def ours(obj: dict[str, Any]) -> dict[str, Any]:
    """An official example made the test partner's (NL/TCP)."""
    return {**copy.deepcopy(obj), **OURS}


def _names(prefix: str) -> list[str]:
    return sorted(path.name for path in EXAMPLES.glob(f"{prefix}*.json"))


def location() -> dict[str, Any]:
    return ours(example("location_example.json"))  # LOC1, EVSEs 3256 (connectors 1, 2) and 3257


def location_bases(_: FuzzEnv) -> list[Base]:
    whole = [ours(example(name)) for name in _names("location_example")]
    parts = [example(name) for name in [*_names("location_energymix"), "location_regularhours_example.json"]]
    hours = [{"opening_times": example(name)} for name in _names("location_hours")]
    whole += [{**location(), **part} for part in parts + hours]
    return [Base({**OURS, "location_id": body["id"]}, body) for body in whole]


def location_patch_bases(env: FuzzEnv) -> list[Base]:
    env.store_location()
    bodies = [example("location_patch_example_location.json")]
    bodies += [{**example(name), "last_updated": LATER} for name in _names("location_energymix")]
    bodies += [{"opening_times": example(name), "last_updated": LATER} for name in _names("location_hours")]
    bodies += [
        {"coordinates": {"latitude": "51.047599", "longitude": "3.729944"}, "publish": False, "last_updated": LATER}
    ]
    return [Base({**OURS, "location_id": "LOC1"}, body) for body in bodies]


def evse_bases(env: FuzzEnv) -> list[Base]:
    env.store_location()
    evses = [*copy.deepcopy(location()["evses"]), example("location_put_example_add_evse.json")]
    return [Base({**OURS, "location_id": "LOC1", "evse_uid": evse["uid"]}, evse) for evse in evses]


def evse_patch_bases(env: FuzzEnv) -> list[Base]:
    env.store_location()
    bodies = [
        example("location_patch_example_status.json"),
        example("location_patch_example_remove_evse.json"),
        {"floor_level": "-1", "physical_reference": "1", "last_updated": LATER},
    ]
    return [Base({**OURS, "location_id": "LOC1", "evse_uid": "3256"}, body) for body in bodies]


def connector_bases(env: FuzzEnv) -> list[Base]:
    env.store_location()
    evse = location()["evses"][0]
    return [
        Base({**OURS, "location_id": "LOC1", "evse_uid": "3256", "connector_id": connector["id"]}, connector)
        for connector in copy.deepcopy(evse["connectors"])
    ]


def connector_patch_bases(env: FuzzEnv) -> list[Base]:
    env.store_location()
    bodies = [
        example("location_patch_example_tariff.json"),
        {"max_amperage": 32, "last_updated": LATER},
        {"max_voltage": 400, "max_electric_power": 22000, "power_type": "AC_3_PHASE", "last_updated": LATER},
    ]
    return [Base({**OURS, "location_id": "LOC1", "evse_uid": "3256", "connector_id": "1"}, body) for body in bodies]


def location_get_bases(env: FuzzEnv) -> list[Base]:
    env.store_location()
    return [Base({**OURS, "location_id": "LOC1"})]


def evse_get_bases(env: FuzzEnv) -> list[Base]:
    env.store_location()
    return [Base({**OURS, "location_id": "LOC1", "evse_uid": "3256"})]


def connector_get_bases(env: FuzzEnv) -> list[Base]:
    env.store_location()
    return [Base({**OURS, "location_id": "LOC1", "evse_uid": "3256", "connector_id": "1"})]


def tariff_bases(_: FuzzEnv) -> list[Base]:
    bodies = [ours(example(name)) for name in _names("tariff")]
    return [Base({**OURS, "tariff_id": body["id"]}, body) for body in bodies]


def stored_tariff_bases(env: FuzzEnv) -> list[Base]:
    env.store_tariff()
    return [Base({**OURS, "tariff_id": "12"})]


def session_bases(_: FuzzEnv) -> list[Base]:
    bodies = [ours(example(name)) for name in _names("session_example")]
    return [Base({**OURS, "session_id": body["id"]}, body) for body in bodies]


def session_patch_bases(env: FuzzEnv) -> list[Base]:
    env.store_session()
    bodies = [example(name) for name in _names("session_patch")]
    bodies += [{"kwh": 42, "status": "COMPLETED", "end_date_time": "2015-06-29T22:39:09Z", "last_updated": LATER}]
    return [Base({**OURS, "session_id": "101"}, body) for body in bodies]


def stored_session_bases(env: FuzzEnv) -> list[Base]:
    env.store_session()
    return [Base({**OURS, "session_id": "101"})]


def cdr_bases(_: FuzzEnv) -> list[Base]:
    return [Base({}, ours(example("cdr_example.json")))]


def stored_cdr_bases(env: FuzzEnv) -> list[Base]:
    return [Base({"cdr_id": str(env.store_cdr())})]


def authorize_bases(env: FuzzEnv) -> list[Base]:
    uid = env.card_uid()
    references = [None, {"location_id": "LOC1"}, {"location_id": "LOC1", "evse_uids": ["3256", "3257"]}]
    return [Base({"token_uid": token_uid}, body) for token_uid in (uid, "012345678") for body in references]


def command_bases(env: FuzzEnv) -> list[Base]:
    uid = env.command_uid()
    bodies = [
        {"result": "ACCEPTED"},
        {"result": "REJECTED", "message": {"language": "en", "text": "Occupied"}},
        {"result": "EVSE_OCCUPIED", "message": [{"language": "nl", "text": "Bezet"}]},
    ]
    return [Base({"command": "START_SESSION", "uid": uid}, body) for body in bodies]


def _credentials(country_code: str, party_id: str) -> list[Base]:
    bodies = []
    for name in _names("credentials_example"):
        body = example(name)
        for role in body["roles"]:
            role.update(country_code=country_code, party_id=party_id)
        bodies.append(body)
    return [Base({}, body) for body in bodies]


def credentials_post_bases(_: FuzzEnv) -> list[Base]:
    return _credentials("BE", "PND")


def credentials_put_bases(_: FuzzEnv) -> list[Base]:
    return _credentials("NL", "TCP")


def client_info_bases(_: FuzzEnv) -> list[Base]:
    return [
        Base(
            {"country_code": "NL", "party_id": "ALL"},
            {"country_code": "NL", "party_id": "ALL", "role": "CPO", "status": status, "last_updated": LATER},
        )
        for status in ("CONNECTED", "OFFLINE", "PLANNED", "SUSPENDED")
    ]


def stored_client_info_bases(env: FuzzEnv) -> list[Base]:
    env.store_client_info()
    return [Base({"country_code": "NL", "party_id": "ALL"})]


def hub_location_bases(_: FuzzEnv) -> list[Base]:
    body = {**location(), "country_code": "NL", "party_id": "HBP"}
    return [Base({"country_code": "NL", "party_id": "HBP", "location_id": "LOC1"}, body)]


def token_list_bases(env: FuzzEnv) -> list[Base]:
    env.card_uid()
    return [Base({})]


ROUTING = {
    "OCPI-from-country-code": "NL",
    "OCPI-from-party-id": "HBP",
    "OCPI-to-country-code": "BE",
    "OCPI-to-party-id": "VLT",
}
UNKNOWN_TOKEN_LOGGED = {2004: frozenset({"roaming_authorizations"})}

RECEIVERS = {
    receiver.name: receiver
    for receiver in [
        Receiver("location PUT", "PUT", LOCATION_URL, location_bases, read_back=True),
        Receiver("location PATCH", "PATCH", LOCATION_URL, location_patch_bases, read_back=True),
        Receiver("evse PUT", "PUT", EVSE_URL, evse_bases, read_back=True),
        Receiver("evse PATCH", "PATCH", EVSE_URL, evse_patch_bases, read_back=True),
        Receiver("connector PUT", "PUT", CONNECTOR_URL, connector_bases, read_back=True),
        Receiver("connector PATCH", "PATCH", CONNECTOR_URL, connector_patch_bases, read_back=True),
        Receiver(
            "location PUT via hub",
            "PUT",
            LOCATION_URL,
            hub_location_bases,
            caller="hub",
            headers=ROUTING,
            read_back=True,
        ),
        Receiver("tariff PUT", "PUT", TARIFF_URL, tariff_bases, read_back=True),
        Receiver("tariff DELETE", "DELETE", TARIFF_URL, stored_tariff_bases, body="none"),
        Receiver("session PUT", "PUT", SESSION_URL, session_bases, read_back=True),
        Receiver("session PATCH", "PATCH", SESSION_URL, session_patch_bases, read_back=True),
        Receiver("cdr POST", "POST", V + "/cdrs", cdr_bases, read_back=True),
        Receiver(
            "token authorize",
            "POST",
            V + "/tokens/{token_uid}/authorize",
            authorize_bases,
            body="optional",
            query={"type": "RFID"},
            may_write=UNKNOWN_TOKEN_LOGGED,
        ),
        Receiver("command result", "POST", V + "/commands/{command}/{uid}", command_bases),
        Receiver("credentials POST", "POST", V + "/credentials", credentials_post_bases, caller="pending"),
        Receiver("credentials PUT", "PUT", V + "/credentials", credentials_put_bases),
        Receiver(
            "hubclientinfo PUT",
            "PUT",
            V + "/hubclientinfo/{country_code}/{party_id}",
            client_info_bases,
            caller="hub",
            read_back=True,
        ),
        Receiver("location GET", "GET", LOCATION_URL, location_get_bases, body="none"),
        Receiver("evse GET", "GET", EVSE_URL, evse_get_bases, body="none"),
        Receiver("connector GET", "GET", CONNECTOR_URL, connector_get_bases, body="none"),
        Receiver("tariff GET", "GET", TARIFF_URL, stored_tariff_bases, body="none"),
        Receiver("session GET", "GET", SESSION_URL, stored_session_bases, body="none"),
        Receiver("cdr GET", "GET", V + "/cdrs/{cdr_id}", stored_cdr_bases, body="none"),
        Receiver(
            "hubclientinfo GET",
            "GET",
            V + "/hubclientinfo/{country_code}/{party_id}",
            stored_client_info_bases,
            caller="hub",
            body="none",
        ),
        Receiver(
            "tokens GET list",
            "GET",
            V + "/tokens",
            token_list_bases,
            body="none",
            query={
                "offset": "0",
                "limit": "10",
                "date_from": "2020-01-01T00:00:00Z",
                "date_to": "2100-01-01T00:00:00Z",
                "after": "2020-01-01T00:00:00+00:00~1",
                "total": "1",
            },
        ),
    ]
}


class FuzzEnv:
    """Three callers (a registered CPO, a pending partner holding token A, a hub) and, on demand, the stored
    objects the receivers address. What is stored here stays for the whole test; each case is rolled back."""

    def __init__(self, client: FlaskClient, partner: Partner) -> None:
        self.client = client
        self.partner = partner
        db.session.add(
            Partner(
                name="Fuzz Pending",
                country_code="BE",
                party_id="PND",
                status=PartnerStatus.PENDING,
                incoming_token_hash=hash_token(PENDING_TOKEN),
                endpoints=[],
            )
        )
        add_registered_hub(HUB_TOKEN, name="Fuzz Hub")
        self.callers = {
            "partner": OcpiTestClient(client),
            "pending": OcpiTestClient(client, token=PENDING_TOKEN),
            "hub": OcpiTestClient(client, token=HUB_TOKEN, base64_token=False),
        }
        self._cdr_id: int | None = None
        self._card_uid: str | None = None
        self._command_uid: str | None = None
        self._stored: set[str] = set()

    def _once(self, what: str, method: str, url: str, body: Any, caller: str = "partner") -> Any:
        if what in self._stored:
            return None
        response = self.callers[caller].call(method, url, json=body)
        assert response.status_code in (200, 201), (what, response.get_json())
        self._stored.add(what)
        return response

    def store_location(self) -> None:
        self._once("location", "PUT", V + "/locations/NL/TCP/LOC1", location())

    def store_tariff(self) -> None:
        self._once("tariff", "PUT", V + "/tariffs/NL/TCP/12", ours(example("tariff_1_simple_2hour.json")))

    def store_session(self) -> None:
        self._once("session", "PUT", V + "/sessions/NL/TCP/101", ours(example("session_example_2_short_finished.json")))

    def store_client_info(self) -> None:
        self._once("client info", "PUT", V + "/hubclientinfo/NL/ALL", client_info_bases(self)[0].body, "hub")

    def store_cdr(self) -> int:
        if self._cdr_id is None:
            response = self._once("cdr", "POST", V + "/cdrs", ours(example("cdr_example.json")))
            self._cdr_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
        return self._cdr_id

    def card_uid(self) -> str:
        if self._card_uid is None:
            self._card_uid = card_in(CardStatus.ACTIVE).uid
        return self._card_uid

    def command_uid(self) -> str:
        """A START_SESSION we sent the partner, accepted and awaiting its result."""
        if self._command_uid is None:
            self._command_uid = uuid.uuid4().hex
            db.session.add(
                Command(
                    uid=self._command_uid,
                    partner_id=self.partner.id,
                    command="START_SESSION",
                    request={"location_id": "LOC1"},
                    response_result="ACCEPTED",
                    response_timeout=60,
                    timeout_at=utcnow() + dt.timedelta(hours=1),
                )
            )
            db.session.flush()
        return self._command_uid
