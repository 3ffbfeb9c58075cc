"""``flask rating rate-pending`` says how many CDRs it could not rate and why, grouped by reason with a few CDR ids
each, and exits 1 when some could not be rated; every CDR keeps its own full reason for finance."""

from __future__ import annotations

import datetime as dt
from decimal import InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.pricing import PricingInputError
from app.rating import pending, services
from app.rating.models import RatingProblem, SessionCharge
from app.rating.problems import NO_PLAN, NotRated, PendingOutcome, RatingError, group_problems, problem_kind
from tests.rating.test_rating import START, TARIFF, _cdr

BEFORE_THE_PLAN = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
NEGATIVE = "cannot be priced: charging_periods[].dimensions[].volume: negative ENERGY volume (…) is not supported"


def _negative_energy(cdr):  # type: ignore[no-untyped-def]
    period = cdr.data["charging_periods"][0]
    cdr.data = {**cdr.data, "charging_periods": [{**period, "dimensions": [{"type": "ENERGY", "volume": -1}]}]}
    db.session.flush()
    return cdr


def _mixed_bag(account_id: int, card_id: int) -> dict[str, int]:
    """One CDR that rates, and four that cannot: two before the account had a plan, one with negative energy,
    one in a country without a VAT rate."""
    cdrs = {
        "GOOD": _cdr(account_id, card_id, ocpi_id="GOOD", tariffs=[TARIFF]),
        "EARLY-1": _cdr(account_id, card_id, ocpi_id="EARLY-1", tariffs=[TARIFF], start=BEFORE_THE_PLAN),
        "EARLY-2": _cdr(
            account_id, card_id, ocpi_id="EARLY-2", tariffs=[TARIFF], start=BEFORE_THE_PLAN + dt.timedelta(days=1)
        ),
        "NEG": _negative_energy(
            _cdr(account_id, card_id, ocpi_id="NEG", tariffs=[TARIFF], start=START + dt.timedelta(hours=2))
        ),
        "US": _cdr(
            account_id, card_id, ocpi_id="US", tariffs=[TARIFF], country="USA", start=START + dt.timedelta(hours=4)
        ),
    }
    db.session.commit()
    return {name: cdr.id for name, cdr in cdrs.items()}


def test_rate_pending_counts_the_cdrs_it_could_not_rate_by_reason(app, driver):
    account, card = driver
    ids = _mixed_bag(account.id, card.id)

    result = app.test_cli_runner().invoke(args=["rating", "rate-pending"])

    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[:2] == ["rated 1 CDRs; could not rate 4", "not rated, by reason (3):"]
    assert lines[2] == f"  2 × {NO_PLAN}: EARLY-1, EARLY-2"
    assert lines[3].startswith(f"  1 × {NEGATIVE}") and lines[3].endswith(": NEG")
    assert lines[4] == "  1 × no VAT rate known for country 'USA': US"
    assert len(lines) == 5
    # Each CDR keeps its own reason, with its ids and values.
    reasons = {problem.cdr_id: problem.reason for problem in db.session.scalars(select(RatingProblem))}
    assert set(reasons) == {ids["EARLY-1"], ids["EARLY-2"], ids["NEG"], ids["US"]}
    assert reasons[ids["EARLY-1"]] == f"account {account.id} had no plan at 2025-06-01T00:00:00+00:00"
    assert "negative ENERGY volume (-1)" in reasons[ids["NEG"]]
    assert db.session.scalar(select(SessionCharge.cdr_id)) == ids["GOOD"]


def test_rate_pending_shows_a_few_ids_per_reason(app, driver):
    account, card = driver
    _mixed_bag(account.id, card.id)
    result = app.test_cli_runner().invoke(args=["rating", "rate-pending", "--examples", "1"])
    assert result.exit_code == 1
    assert f"  2 × {NO_PLAN}: EARLY-1 and 1 more" in result.output.splitlines()


def test_rate_pending_exits_0_when_everything_was_rated(app, driver):
    account, card = driver
    _cdr(account.id, card.id, ocpi_id="FINE", tariffs=[TARIFF])
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["rating", "rate-pending"])
    assert result.exit_code == 0, result.output
    assert result.output == "rated 1 CDRs; could not rate 0\n"


def test_the_outcome_keeps_the_old_lines_for_the_invoice_runs_preview(driver):
    account, card = driver
    _mixed_bag(account.id, card.id)
    rated, lines = pending.rate_pending()
    assert rated == 1 and len(lines) == 4
    assert f"EARLY-1: account {account.id} had no plan at 2025-06-01T00:00:00+00:00" in lines


def test_problem_kinds_leave_out_what_differs_from_cdr_to_cdr():
    wrapped = RatingError("CDR X1: charging_periods[3].dimensions[0].volume: negative ENERGY volume (-2.5)")
    wrapped.__cause__ = PricingInputError(
        "charging_periods[3].dimensions[0].volume", "negative ENERGY volume (-2.5) is not supported"
    )
    assert problem_kind(wrapped) == (
        "cannot be priced: charging_periods[].dimensions[].volume: negative ENERGY volume (…) is not supported"
    )
    assert problem_kind(RatingError("account 7 had no plan at 2025-01-01T00:00:00+00:00", NO_PLAN)) == NO_PLAN
    assert problem_kind(InvalidOperation()) == "a number out of range or not a number (InvalidOperation)"
    assert problem_kind(ValueError("tariff 'T9' has 12 elements")) == "ValueError: tariff … has … elements"


def test_groups_are_ordered_by_count_then_reason():
    problems = [NotRated(n, f"C{n}", kind, "why") for n, kind in enumerate(["b", "a", "b", "c", "a", "b"])]
    assert [(g.kind, g.count, g.examples) for g in group_problems(problems, examples=2)] == [
        ("b", 3, ("C0", "C2")),
        ("a", 2, ("C1", "C4")),
        ("c", 1, ("C3",)),
    ]


def test_a_pass_reads_and_rates_in_batches_each_cdr_tried_once(driver):
    """At national scale the pass cannot load every pending CDR at once: it reads a batch at a time in rating
    order, moves past the ones that failed (no CDR tried twice in a pass) and lets the caller commit each batch."""
    account, card = driver
    ids = _mixed_bag(account.id, card.id)
    batches = list(pending.rate_pending_batches(batch_size=2))
    assert [batch.rated + len(batch.not_rated) for batch in batches] == [2, 2, 1]
    tried = [problem.cdr_id for batch in batches for problem in batch.not_rated]
    assert sorted(tried) == sorted(ids[name] for name in ("EARLY-1", "EARLY-2", "NEG", "US"))
    assert sum(batch.rated for batch in batches) == 1
    assert list(pending.rate_pending_batches(limit=3, batch_size=2)) != []  # the failures are pending still
    assert db.session.scalar(select(SessionCharge.cdr_id)) == ids["GOOD"]


def test_the_command_keeps_each_batch_it_rated(app, driver, monkeypatch):
    """The command commits batch by batch: a pass that dies half-way keeps what it rated before."""
    account, card = driver
    for number in range(3):
        _cdr(account.id, card.id, ocpi_id=f"B{number}", tariffs=[TARIFF], start=START + dt.timedelta(hours=number))
    db.session.commit()
    batches = pending.rate_pending_batches

    def dies_after_the_first_batch(limit=None, batch_size=pending.BATCH_SIZE):  # type: ignore[no-untyped-def]
        produced = batches(limit, batch_size=1)
        yield next(produced)
        raise RuntimeError("killed")

    monkeypatch.setattr(pending, "rate_pending_batches", dies_after_the_first_batch)
    result = app.test_cli_runner().invoke(args=["rating", "rate-pending"])
    assert isinstance(result.exception, RuntimeError)
    db.session.rollback()
    assert db.session.scalar(select(func.count(SessionCharge.id))) == 1


def test_the_walk_goes_past_windows_that_are_all_rated(driver):
    """Past a full first batch the pass walks the CDRs in rating order a window at a time: a window of CDRs that are
    all rated already yields nothing and the walk goes on to the pending ones after it."""
    account, card = driver
    cdrs = [
        _cdr(account.id, card.id, ocpi_id=f"W{number}", tariffs=[TARIFF], start=START + dt.timedelta(hours=number))
        for number in range(5)
    ]
    db.session.flush()
    for rated in cdrs[2:4]:
        services.rate_cdr(rated)
    db.session.commit()
    batches = list(pending.rate_pending_batches(batch_size=2))
    assert [batch.rated for batch in batches] == [2, 1]
    assert db.session.scalar(select(func.count(SessionCharge.id))) == 5


def test_a_cdr_charged_meanwhile_by_another_worker_is_not_a_problem(driver, monkeypatch):
    """The periodic pass (or a run's preview) and the per-CDR task can rate the same CDR at once: the loser's charge
    meets the unique key. That CDR is rated, by the other one; no problem is recorded. A unique-key refusal
    without a charge is still a problem."""
    account, card = driver
    raced = _cdr(account.id, card.id, ocpi_id="RACED", tariffs=[TARIFF])
    lonely = _cdr(account.id, card.id, ocpi_id="LONELY", tariffs=[TARIFF], start=START + dt.timedelta(hours=1))
    db.session.flush()
    services.rate_cdr(raced)  # the other worker's charge, committed before ours is written
    db.session.commit()

    def refused(cdr):  # type: ignore[no-untyped-def]
        raise IntegrityError("INSERT INTO rating_session_charges", {}, Exception("unique cdr_id"))

    monkeypatch.setattr(pending, "rate_cdr", refused)
    outcome = PendingOutcome()
    pending._rate_or_record(raced.id, "RACED", outcome)
    assert (outcome.rated, outcome.not_rated) == (0, [])
    pending._rate_or_record(lonely.id, "LONELY", outcome)
    assert [problem.ocpi_id for problem in outcome.not_rated] == ["LONELY"]
    assert db.session.scalars(select(RatingProblem.cdr_id)).all() == [lonely.id]
