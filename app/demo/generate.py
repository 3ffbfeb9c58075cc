"""``flask demo generate``: national-scale synthetic data, fast and deterministic (issue 17).

What it writes, in one transaction (all or nothing; the command commits): the default plans when missing, CPO
partners and a hub with their parties, tariffs of the kinds in the shared NDW data, locations with EVSEs and
connectors around Belgian and Dutch cities (this module); accounts, driver users, subscriptions, cards in every
state with their stock cards (``generate_people``); completed sessions and their CDRs, priced exactly as the
sessions' frozen tariffs price them, with outliers and late CDRs (``generate_sessions``). The CDRs are left
unrated: ``flask rating rate-pending`` and ``flask billing run`` take them from there, as they take a CPO's.

Fast: rows are written in chunks through ``app.db_bulk`` (COPY on PostgreSQL, an executemany ``insert()``
elsewhere), no ORM object per row, no flush per row: plain dicts for the few, COPY text lines for sessions and
CDRs (nine rows in ten; ``generate_sessions``). Ids are allocated in Python after each table's current maximum
(rows refer to each other without a round trip) and the sequences are moved past them at the end. On PostgreSQL
the writer's thread sends each chunk while the next is built (``generate_base.Writer``), the commit does not wait
for its WAL (``synchronous_commit = off``: a generation can be re-run), and into empty session and CDR tables
their indexes and foreign keys are built once at the end (``db_bulk.deferred_indexes``).

Deterministic: every value comes from ``random.Random(seed)`` and the month (no clock, no ``secrets``; the
password hash is salted from the seed), so the same seed on the same database gives the same rows.

Real data is never touched: see :func:`check_only_demo_accounts`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from argon2 import PasswordHasher
from flask import current_app
from sqlalchemy import exists, func, or_, select, text

from app.accounts.models import Account, User
from app.charging.models import Cdr, ChargingSession
from app.db_bulk import deferred_indexes
from app.demo import generate_catalogue as catalogue
from app.demo import generate_people, generate_sessions
from app.demo.generate_base import (
    CHUNK_ROWS,
    ConnectorRef,
    GenerateOptions,
    GenerateReport,
    Writer,
    month_bounds,
    shift_month,
    table,
)
from app.demo.generate_catalogue import CPOS, HUB, TARIFF_KINDS
from app.demo.generate_places import location_rows
from app.extensions import db
from app.plans.services import billing_zone, current_version, seed_default_plans
from app.roaming.models import Partner, PartnerParty, TariffVersion
from app.roaming.ocpi.reader import jsonable
from app.timestamps import ocpi_timestamp

__all__ = ["GenerateError", "GenerateOptions", "GenerateReport", "RealDataError", "default_month", "generate"]

# Reserved domains (RFC 2606 / RFC 6761): no real customer can receive mail there, so an account with such a
# login was made by the generator or by ``flask demo seed`` (whose users are ``...@example.com``).
GENERATED_EMAIL_DOMAIN = "generated.demo.invalid"
DEMO_EMAIL_DOMAINS = (GENERATED_EMAIL_DOMAIN, "example.com")
# The password of every generated driver (the same as the demo seed's), for trying the portal as any of them.
GENERATED_PASSWORD = "demo-password-1"
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class GenerateError(ValueError):
    """Options the generator cannot work with; nothing was written."""


class RealDataError(GenerateError):
    """The database holds data the generator must not mix with; nothing was written."""


# ------------------------------------------------------------------------------------------------ the guard


def check_only_demo_accounts() -> None:
    """Refuse a database that holds real accounts, or data of an earlier generation.

    "Real" is any account none of whose users logs in with an address of a reserved demo domain
    (``DEMO_EMAIL_DOMAINS``: the generator's ``generated.demo.invalid`` and the demo seed's ``example.com``): a
    customer's account, and also an account without users (anonymised or closed). No option overrides this.
    """
    demo_login = exists().where(
        User.account_id == Account.id,
        or_(*(User.email.like(f"%@{domain}") for domain in DEMO_EMAIL_DOMAINS)),
    )
    real = db.session.scalar(
        select(func.count()).select_from(select(Account.id).where(~demo_login).limit(1).subquery())
    )
    if real:
        raise RealDataError(
            "this database holds real accounts (accounts without a login at a demo domain: "
            f"{', '.join(DEMO_EMAIL_DOMAINS)}); the generator only fills an empty or demo database"
        )
    generated = db.session.scalar(select(func.count(User.id)).where(User.email.like(f"%@{GENERATED_EMAIL_DOMAIN}")))
    if generated:
        raise RealDataError(
            f"this database already holds generated data ({generated} generated drivers); "
            "generate into a fresh database (flask db upgrade on an empty one)"
        )
    codes = [(cpo.country_code, cpo.party_id) for cpo in CPOS] + [(HUB[1], HUB[2])]
    for country_code, party_id in codes:
        taken = db.session.scalar(
            select(func.count(Partner.id)).where(Partner.country_code == country_code, Partner.party_id == party_id)
        ) or db.session.scalar(
            select(func.count(PartnerParty.id)).where(
                PartnerParty.country_code == country_code, PartnerParty.party_id == party_id
            )
        )
        if taken:
            raise RealDataError(f"the party {country_code}/{party_id} the generator uses is already held by a partner")


# ------------------------------------------------------------------------------------------------ options


def check_options(options: GenerateOptions, now: dt.datetime) -> None:
    if options.accounts < 1:
        raise GenerateError("--accounts must be at least 1")
    if not Decimal(1) <= options.cards_per_account <= Decimal(10):
        raise GenerateError("--cards-per-account must be between 1 and 10 (an average)")
    if options.cdrs < 0 or options.locations < 1:
        raise GenerateError("--cdrs must be 0 or more and --locations at least 1")
    if not 1 <= options.months <= 24:
        raise GenerateError("--months must be between 1 and 24")
    if not MONTH.match(options.month):
        raise GenerateError(f"--month must look like 2026-10, not {options.month!r}")
    if month_bounds(options.month)[1] > now:
        raise GenerateError(f"{options.month} has not ended yet: generate sessions of months that have ended")


def default_month(now: dt.datetime) -> str:
    local = now.astimezone(billing_zone())
    return shift_month(f"{local.year:04d}-{local.month:02d}", -1)


# ------------------------------------------------------------------------------------------------ the run


def generate(
    options: GenerateOptions, now: dt.datetime, progress: Callable[[str], None] | None = None
) -> GenerateReport:
    """Write the data of ``options`` in the session's transaction (flushes; the caller commits). Raises
    :class:`GenerateError` / :class:`RealDataError` before anything is written."""
    check_options(options, now)
    check_only_demo_accounts()
    say = progress or (lambda _message: None)
    rng = random.Random(options.seed)  # noqa: S311 (reproducible demo data, not secrets)
    report = GenerateReport()
    writer = Writer(report)
    started = time.perf_counter()
    first_month = shift_month(options.month, -(options.months - 1))
    since = month_bounds(first_month)[0]
    generated_at = month_bounds(options.month)[1]

    def phase(name: str, work: Callable[[], Any]) -> Any:
        say(f"{name} ...")
        phase_started = time.perf_counter()
        result = work()
        report.phases[name] = time.perf_counter() - phase_started
        return result

    if db.session.get_bind().dialect.name == "postgresql":
        # One commit at the end: waiting for its WAL to reach the disk adds nothing to a load that can be re-run.
        db.session.execute(text("SET LOCAL synchronous_commit = off"))
    seed_default_plans()
    db.session.flush()
    plans = {}
    for code in ("payg", "comfort", "business"):
        plan = current_version(code)
        if plan is None:
            raise GenerateError(f"the plan {code!r} is missing (flask plans seed)")
        plans[code] = plan.id
    # Sessions and CDRs are nine rows in ten: into empty tables, their indexes and foreign keys are built once at
    # the end (app.db_bulk.deferred_indexes); into tables with rows, they are kept.
    bulk_tables = (table(ChargingSession), table(Cdr))
    with deferred_indexes(bulk_tables) as deferred:
        report.indexes_deferred = deferred
        try:
            connectors = phase(
                "network", lambda: generate_network(writer, rng, options.locations, since - dt.timedelta(days=60))
            )
            password_hash = PasswordHasher(
                time_cost=current_app.config["ARGON2_TIME_COST"],
                memory_cost=current_app.config["ARGON2_MEMORY_COST"],
                parallelism=current_app.config["ARGON2_PARALLELISM"],
            ).hash(GENERATED_PASSWORD, salt=hashlib.sha256(f"demo-generate-{options.seed}".encode()).digest()[:16])
            drivers = phase(
                "people",
                lambda: generate_people.generate_people(
                    writer, rng, options, plans, password_hash, since=since, generated_at=generated_at
                ),
            )
            report.first_account_id = drivers.first_account_id
            phase(
                "sessions",
                lambda: generate_sessions.generate_sessions(
                    writer, rng, options, drivers, connectors, first_month=first_month, say=say
                ),
            )
        except BaseException:
            writer.close(discard=True)  # the caller rolls back: the chunks still in line are not written
            raise
        say("finish: sequences, statistics" + (", indexes and foreign keys ..." if deferred else " ..."))
        finish_started = time.perf_counter()
        writer.finish(analysed=frozenset(bulk.name for bulk in bulk_tables) if deferred else frozenset())
    report.phases["finish"] = time.perf_counter() - finish_started
    db.session.flush()
    report.seconds = time.perf_counter() - started
    return report


def generate_network(writer: Writer, rng: random.Random, locations: int, since: dt.datetime) -> list[ConnectorRef]:
    """The hub, the CPOs (two direct, three through the hub), their tariffs, and ``locations`` locations."""
    partners_table, parties_table = table(Partner), table(PartnerParty)
    first_partner = writer.first_id(partners_table, len(CPOS) + 1)
    hub_id = first_partner + len(CPOS)
    changed = ocpi_timestamp(since)
    partners, parties = [], []
    for index, cpo in enumerate((*CPOS, None)):
        name, country_code, party_id = (cpo.name, cpo.country_code, cpo.party_id) if cpo else HUB
        partners.append(
            {
                "id": first_partner + index,
                "name": name,
                "is_hub": cpo is None,
                "country_code": country_code,
                "party_id": party_id,
                # Registered without a handshake and without endpoints (there is no server behind them): their
                # data is here, nothing is pushed to or pulled from them.
                "status": "registered",
                "send_base64_tokens": True,
                "endpoints": [],
                "created_at": since,
                "registered_at": since,
                "status_changed_at": since,
                "status_changed_by": "demo-generate",
                "status_reason": "generated demo partner",
            }
        )
        if cpo is not None:
            parties.append(
                {
                    "partner_id": hub_id if cpo.via_hub else first_partner + index,
                    "country_code": country_code,
                    "party_id": party_id,
                    "role": "CPO",
                    "name": name,
                    "status": "CONNECTED",
                    "last_updated": since,
                }
            )
    parties.append(
        {"partner_id": hub_id, "country_code": HUB[1], "party_id": HUB[2], "role": "HUB", "name": HUB[0],
         "status": "CONNECTED", "last_updated": since}
    )  # fmt: skip
    first_party = writer.first_id(parties_table, len(parties))
    for offset, party in enumerate(parties):
        party["id"] = first_party + offset
    writer.write(partners_table, partners)
    writer.write(parties_table, parties)
    tariffs = _write_tariffs(writer, first_partner, hub_id, since)
    return _write_locations(writer, rng, locations, first_partner, hub_id, tariffs, changed, since)


def _partner_of(cpo_index: int, first_partner: int, hub_id: int) -> int:
    return hub_id if CPOS[cpo_index].via_hub else first_partner + cpo_index


def _write_tariffs(writer: Writer, first_partner: int, hub_id: int, since: dt.datetime) -> dict[tuple[int, str], int]:
    versions = table(TariffVersion)
    rows = []
    for index, cpo in enumerate(CPOS):
        for kind in cpo.tariff_kinds:
            tariff_id = f"{cpo.party_id}-{kind.upper().replace('_', '-')}"
            rows.append(
                {
                    "partner_id": _partner_of(index, first_partner, hub_id),
                    "country_code": cpo.country_code,
                    "party_id": cpo.party_id,
                    "ocpi_id": tariff_id,
                    "ocpi_id_key": tariff_id.upper(),
                    "currency": "EUR",
                    "data": jsonable(
                        catalogue.tariff_object(TARIFF_KINDS[kind], cpo, tariff_id, ocpi_timestamp(since))
                    ),
                    "last_updated": since,
                    "received_at": since,
                    "_key": (index, kind),
                }
            )
    first = writer.first_id(versions, len(rows))
    ids = {}
    for offset, row in enumerate(rows):
        row["id"] = first + offset
        ids[row.pop("_key")] = row["id"]
    writer.write(versions, rows)
    return ids


def _write_locations(
    writer: Writer,
    rng: random.Random,
    count: int,
    first_partner: int,
    hub_id: int,
    tariffs: dict[tuple[int, str], int],
    changed: str,
    since: dt.datetime,
) -> list[ConnectorRef]:
    refs: list[ConnectorRef] = []
    for block_start in range(0, count, CHUNK_ROWS):
        size = min(CHUNK_ROWS, count - block_start)
        rows = location_rows(rng, writer, block_start, size, first_partner, hub_id, tariffs, changed, since)
        for name, batch in rows.tables:
            writer.write(name, batch)
        refs.extend(rows.connectors)
    return refs
