"""The demo's charging history, relative to now: months of sessions sent by the demo CPO, rated, invoiced by the
monthly runs of the months that have ended, paid through Stripe, one invoice credited, one session held for
finance, the current month accruing and a session charging right now.

Every step goes through the real services: the OCPI receivers' storing functions (``store_session``,
``store_cdr``: what the CPO's PUT and POST do), rating (``rate_pending``), the run driver that ``flask billing``
and the back office follow (preview → approve → finalize → deliver: PDFs, emails, collection at the Stripe
emulator), the credit note of the back office and its refund. Sessions have fixed ids per month and slot, so a
re-run finds them and adds nothing; a run that exists is taken from where it stands.

The months, with M the current one (in ``BILLING_TIMEZONE``):

- M-3 and M-2: the demo driver's sessions; both runs finalized and delivered: M-3 paid and then partly credited
  (a credit note with a reason the driver reads, refunded through Stripe), M-2 paid;
- M-1: the demo driver and a few dozen others; the run finalized but not delivered yet, so the demo driver's
  invoice is open and finance can deliver the run in the back office (emails, collection). One session of
  another driver (212 kWh, a meter error) is caught by the outlier rules and held for finance;
- M: every driver's sessions so far, rated and waiting for next month's run, and the demo driver's session
  charging right now (an ACTIVE session with its energy so far: the dashboard's live cost).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select

from app.accounts.models import Account
from app.audit.services import Actor
from app.billing.invoicing import invoices
from app.billing.invoicing.composition import period_bounds
from app.billing.models import Invoice, InvoiceKind, InvoiceRun, InvoiceStatus, RunStatus
from app.billing.runs import dispatch, driver
from app.billing.runs.services import run_for
from app.cards.models import Card
from app.charging.models import Cdr, ChargingSession
from app.demo.network import DEMO_CPO_PARTY, SITES, DemoSession, DemoSite
from app.extensions import db
from app.plans.services import billing_zone
from app.rating.pending import rate_pending
from app.roaming.models import Partner
from app.roaming.receive.cdrs import store_cdr
from app.roaming.receive.sessions import patch_session, store_session
from app.timestamps import ocpi_timestamp

LIVE_PREFIX = "DEMO-LIVE-"
LIVE_FOR = dt.timedelta(hours=6)  # an older "charging now" session is finished and a new one started
OUTLIER_KWH = Decimal("212.4")  # over the 150 kWh limit of the outlier rules: held for finance
CREDIT_MINOR = 450  # excl. VAT: the demo's goodwill credit on the M-3 invoice
CREDIT_NOTE_REASON = "Demo: the charger at Korenmarkt stopped after 20 minutes; goodwill for the restart fee"
CREDIT_CUSTOMER_REASON = "session_price"


@dataclass
class HistoryReport:
    sessions_stored: int = 0
    rated: int = 0
    rating_problems: list[str] = field(default_factory=list)
    runs: dict[str, str] = field(default_factory=dict)  # period → what was done
    credit_note: str | None = None
    live_session: str | None = None


def month_of(moment: dt.datetime, back: int) -> str:
    """The ``YYYY-MM`` month ``back`` months before the one holding ``moment`` in the billing time zone."""
    local = moment.astimezone(billing_zone())
    index = local.year * 12 + (local.month - 1) - back
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _session(rng: random.Random, ocpi_id: str, card: Card, site: DemoSite, start: dt.datetime,
             latest_end: dt.datetime, kwh: Decimal | None = None) -> DemoSession:  # fmt: skip
    """A plausible session starting at ``start``: power a fraction of the charger's, 20 min to 3 h, ending by
    ``latest_end`` at the latest."""
    minutes = rng.randint(20, 50) if site.fast else rng.randint(45, 180)
    end = min(start + dt.timedelta(minutes=minutes), latest_end)
    end = max(end, start + dt.timedelta(minutes=5))
    hours = Decimal((end - start).total_seconds()) / 3600
    power = (site.max_kw * Decimal(rng.randint(30, 50)) / 100) if site.fast else Decimal(rng.choice((7, 11)))
    energy = kwh if kwh is not None else (power * hours).quantize(Decimal("0.001"))
    return DemoSession(ocpi_id, card, site, start, max(energy, Decimal("0.5")), end)


def _spread(rng: random.Random, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    """A start time between ``start`` and 4 h before ``end``, at a plausible hour (6:00-22:00 UTC)."""
    window = max((end - start) - dt.timedelta(hours=4), dt.timedelta(0))
    moment = start + dt.timedelta(seconds=rng.randint(0, int(window.total_seconds())))
    if not 6 <= moment.hour < 22 and moment.replace(hour=8) > start and moment.replace(hour=8) < end:
        moment = moment.replace(hour=rng.randint(8, 18))
    return moment


def plan_sessions(
    now: dt.datetime, demo_cards: list[Card], others: list[tuple[Account, Card]], *, invoiced_others: int
) -> list[DemoSession]:
    """Every completed demo session, the same on every run in the same month (seeded by the month)."""
    sessions: list[DemoSession] = []
    for back, count in ((3, 4), (2, 5), (1, 5), (0, 3)):
        period = month_of(now, back)
        start, end = period_bounds(period)
        end = min(end, now - dt.timedelta(hours=2))
        if end - start < dt.timedelta(hours=6):
            continue  # the first hours of a month: nothing to accrue yet
        rng = random.Random(f"demo-{period}")  # noqa: S311 (demo figures, not secrets)
        for n in range(1, count + 1):
            card = demo_cards[n % len(demo_cards)]
            site = SITES[1] if (back, n) == (3, 1) else rng.choice(SITES)  # M-3's first: the credited session
            sessions.append(_session(rng, f"DEMO-{period}-0000-{n}", card, site, _spread(rng, start, end), end))
        for slot, (_account, card) in enumerate(others, start=1):
            if back >= 2 or (back == 1 and slot > invoiced_others):
                continue
            for n in range(1, rng.randint(1, 2) + 1):
                site = rng.choice(SITES)
                outlier = back == 1 and slot == 7 and n == 1
                kwh = OUTLIER_KWH if outlier else None
                session = _session(rng, f"DEMO-{period}-{slot:04d}-{n}", card, site, _spread(rng, start, end), end, kwh)
                sessions.append(session)
    return sessions


def store_sessions(partner: Partner, sessions: list[DemoSession]) -> int:
    """Store each session and its CDR as the CPO sends them (PUT Session, POST CDR), unless stored before.
    Returns how many were stored. Flushes."""
    country_code, party_id = DEMO_CPO_PARTY
    known = set(
        db.session.scalars(select(Cdr.ocpi_id).where(Cdr.country_code == country_code, Cdr.party_id == party_id))
    )
    stored = 0
    for session in sessions:
        if session.ocpi_id in known:
            continue
        assert session.end is not None
        store_session(partner, session.session(session.end))
        store_cdr(partner, session.cdr())
        stored += 1
    db.session.flush()
    return stored


def live_session(partner: Partner, card: Card, now: dt.datetime) -> str:
    """The demo driver's session charging right now at the fast charger: kept when it started less than
    ``LIVE_FOR`` ago, else finished (its CDR sent) and a new one started. Returns its id. Flushes."""
    country_code, party_id = DEMO_CPO_PARTY
    site = SITES[2]
    running = db.session.scalars(
        select(ChargingSession).where(
            ChargingSession.country_code == country_code,
            ChargingSession.party_id == party_id,
            ChargingSession.ocpi_id.startswith(LIVE_PREFIX),
            ChargingSession.status == "ACTIVE",
        )
    ).all()
    for session in running:
        if session.start_date_time > now - LIVE_FOR:
            return session.ocpi_id
        rng = random.Random(session.ocpi_id)  # noqa: S311 (demo figures, not secrets)
        done = _session(rng, session.ocpi_id, card, site, session.start_date_time, now)
        assert done.end is not None
        patch_session(partner, country_code, party_id, session.ocpi_id, {
            "status": "COMPLETED", "kwh": done.kwh, "end_date_time": ocpi_timestamp(done.end),
            "last_updated": ocpi_timestamp(done.end)})  # fmt: skip
        store_cdr(partner, done.cdr())
    start = (now - dt.timedelta(minutes=24)).replace(second=0, microsecond=0)
    ocpi_id = f"{LIVE_PREFIX}{start:%Y%m%d%H%M}"
    charging = DemoSession(ocpi_id, card, site, start, Decimal("23.614"))  # about 59 kW so far
    store_session(partner, charging.session(now - dt.timedelta(minutes=1)))
    db.session.flush()
    return ocpi_id


def rate(report: HistoryReport) -> None:
    """Price every new CDR, as the rating job does (commits)."""
    report.rated, report.rating_problems = rate_pending()
    db.session.commit()


def run_month(period: str, actor: Actor, *, deliver: bool) -> str:
    """Drive the month's run through the steps it has not passed yet; ``deliver`` False leaves a finalized run's
    delivery (emails, collection) to finance. Returns what it did, in a few words."""
    run = run_for(period)
    if run is not None and run.status == RunStatus.FINALIZED:
        return "finalized before"
    if run is None:
        run = driver.preview(period, actor)
    if run.status == RunStatus.PREVIEW:
        run = driver.approve(run, actor, reason="demo data")
    finished = driver.finalize(run, actor, then_deliver=deliver)
    count = finished.accounts_total
    state = "finalized and delivered" if deliver else "finalized, delivery left to finance"
    return f"{state} ({count} account{'s' if count != 1 else ''})"


def invoice_of(account_id: int, period: str) -> Invoice | None:
    return db.session.scalar(
        select(Invoice).where(
            Invoice.account_id == account_id,
            Invoice.period == period,
            Invoice.kind == InvoiceKind.INVOICE,
            Invoice.status == InvoiceStatus.FINALIZED,
        )
    )


def credit_once(invoice: Invoice, actor: Actor) -> str:
    """The goodwill credit note on ``invoice`` (once), delivered: its PDF, email and refund through Stripe, as
    the back office's "Credit" button does. Returns its number."""
    note = db.session.scalar(select(Invoice).where(Invoice.credits_invoice_id == invoice.id))
    if note is None:
        note = invoices.credit_invoice(
            invoice, actor, CREDIT_NOTE_REASON, CREDIT_MINOR, customer_reason=CREDIT_CUSTOMER_REASON
        )
        db.session.commit()
        dispatch.dispatch_delivery([note.id])
    assert note.number is not None
    return note.number


def last_run(now: dt.datetime) -> InvoiceRun | None:
    return run_for(month_of(now, 1))
