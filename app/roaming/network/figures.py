"""What the operations pages show of the roaming network: typed, read-only results."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from app.roaming.models import PartnerStatus
from app.roaming.send.authorization import ALLOWED, UNKNOWN

# The modules whose traffic the pages show, in their order: what partners send us, then what we send them.
RECEIVED_MODULES = ("locations", "tariffs", "sessions", "cdrs", "hubclientinfo")
SENT_MODULES = ("tokens", "authorization")


@dataclass(frozen=True)
class Infrastructure:
    """What a partner brings: EVSEs and connectors count only while the EVSE is not ``REMOVED``."""

    locations: int = 0
    evses: int = 0
    connectors: int = 0
    evses_available: int = 0

    @property
    def available_percent(self) -> Decimal | None:
        """The share of EVSEs ``AVAILABLE`` now, in percent with one decimal; None without EVSEs."""
        if not self.evses:
            return None
        share = Decimal(self.evses_available * 100) / Decimal(self.evses)
        return share.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)

    def __add__(self, other: Infrastructure) -> Infrastructure:
        return Infrastructure(
            self.locations + other.locations,
            self.evses + other.evses,
            self.connectors + other.connectors,
            self.evses_available + other.evses_available,
        )


@dataclass(frozen=True)
class ReasonCount:
    allowed: str  # ALLOWED, BLOCKED, EXPIRED, NO_CREDIT, NOT_ALLOWED; UNKNOWN for a token we do not know
    reason: str
    count: int


@dataclass(frozen=True)
class Authorizations:
    """Our real-time authorization answers to one partner in the window, by answer and reason (most first)."""

    by_reason: tuple[ReasonCount, ...] = ()
    last_at: dt.datetime | None = None  # our newest answer to this partner, at any time

    @property
    def accepted(self) -> int:
        return sum(row.count for row in self.by_reason if row.allowed == ALLOWED)

    @property
    def refused(self) -> int:
        """Cards we know and refused (blocked, expired, no credit, not allowed there)."""
        return sum(row.count for row in self.by_reason if row.allowed not in (ALLOWED, UNKNOWN))

    @property
    def unknown(self) -> int:
        """Tokens we do not know (answered 404 / 2004)."""
        return sum(row.count for row in self.by_reason if row.allowed == UNKNOWN)

    @property
    def total(self) -> int:
        return sum(row.count for row in self.by_reason)

    @property
    def refusals(self) -> tuple[ReasonCount, ...]:
        return tuple(row for row in self.by_reason if row.allowed != ALLOWED)


@dataclass(frozen=True)
class TokenPushes:
    """Token updates still to be delivered to a partner; ``failing`` are those already tried and refused or not
    reached (they are retried with backoff until they land)."""

    pending: int = 0
    failing: int = 0
    oldest_pending_at: dt.datetime | None = None  # when the oldest waiting token change was made
    last_failed_at: dt.datetime | None = None  # the newest failed attempt among those still waiting
    last_error: str | None = None  # what that attempt met (the partner's answer or our client's failure)


@dataclass(frozen=True)
class Cursor:
    """Where the pull of one module stands (``PullCursor``)."""

    module: str
    synced_until: dt.datetime | None  # the next incremental pull asks from here
    running_since: dt.datetime | None  # a run under way or interrupted: its date_to
    resuming: bool  # the next run resumes at a stored page
    objects_received: int
    last_error: str | None
    updated_at: dt.datetime


@dataclass(frozen=True)
class QuarantineCount:
    """Objects of a partner we could not store and keep waiting to be re-processed."""

    pending: int = 0
    oldest_at: dt.datetime | None = None

    def __add__(self, other: QuarantineCount) -> QuarantineCount:
        oldest = [moment for moment in (self.oldest_at, other.oldest_at) if moment is not None]
        return QuarantineCount(self.pending + other.pending, min(oldest) if oldest else None)


@dataclass(frozen=True)
class Parties:
    """The parties behind a connection: a direct partner's own (usually one), every party a hub relays."""

    total: int = 0
    connected: int = 0  # HubClientInfo CONNECTED (a direct partner's parties are connected while it is)
    roles: tuple[str, ...] = ()  # the OCPI roles they hold (CPO, HUB, ...)


@dataclass(frozen=True)
class PartnerOverview:
    """One partner or hub: the overview's row and the head of its page."""

    id: int
    name: str
    status: PartnerStatus
    is_hub: bool
    country_code: str
    party_id: str
    registered_at: dt.datetime | None
    parties: Parties
    infrastructure: Infrastructure
    received: dict[str, dt.datetime | None]  # module -> the newest object or update we hold from the partner
    sent: dict[str, dt.datetime | None]  # tokens -> last delivery, authorization -> our last answer
    cursors: tuple[Cursor, ...]
    tokens: TokenPushes
    quarantine_by_module: dict[str, QuarantineCount]
    authorizations: Authorizations
    endpoints: tuple[tuple[str, str], ...] = field(default=())  # (module identifier, role) the partner offers

    @property
    def quarantine(self) -> QuarantineCount:
        return sum(self.quarantine_by_module.values(), QuarantineCount())

    @property
    def cursor_errors(self) -> tuple[Cursor, ...]:
        return tuple(cursor for cursor in self.cursors if cursor.last_error)

    def cursor(self, module: str) -> Cursor | None:
        return next((cursor for cursor in self.cursors if cursor.module == module), None)

    def offers(self, module: str, role: str) -> bool:
        """Whether the partner announced ``module`` in ``role`` (SENDER: we may pull it; RECEIVER: we push)."""
        wanted = (module.lower(), role.lower())
        return any((identifier.lower(), kind.lower()) == wanted for identifier, kind in self.endpoints)


@dataclass(frozen=True)
class NetworkOverview:
    partners: tuple[PartnerOverview, ...]
    since: dt.datetime  # the start of the authorization window
    unassigned_locations: int  # locations imported from files, delivered by no partner
    counted_at: dt.datetime  # when the locations, EVSEs and connectors were counted (they are kept a minute)

    @property
    def infrastructure(self) -> Infrastructure:
        return sum((partner.infrastructure for partner in self.partners), Infrastructure())

    @property
    def quarantine(self) -> QuarantineCount:
        return sum((partner.quarantine for partner in self.partners), QuarantineCount())

    @property
    def pending_tokens(self) -> int:
        return sum(partner.tokens.pending for partner in self.partners)

    @property
    def failing_tokens(self) -> int:
        return sum(partner.tokens.failing for partner in self.partners)

    @property
    def registered(self) -> int:
        return sum(1 for partner in self.partners if partner.status == PartnerStatus.REGISTERED)
