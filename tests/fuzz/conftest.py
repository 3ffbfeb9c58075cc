"""Fuzz fixtures (a partner environment with no way out to the network) and the summary of cases run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.roaming.ocpi import client as ocpi_client
from app.roaming.ocpi.transport import FetchError
from tests.fuzz.harness import FUZZ_EXAMPLES, STATS
from tests.fuzz.receivers import FuzzEnv
from tests.roaming.conftest import partner  # noqa: F401  (the registered CPO the fuzzer calls as)


def _no_outgoing_calls(*args: object, **kwargs: object) -> None:
    raise FetchError("outgoing calls are switched off in the fuzzer", "fuzz", retryable=False)


@pytest.fixture
def fuzz_env(client, partner, monkeypatch) -> Iterator[FuzzEnv]:  # type: ignore[no-untyped-def]  # noqa: F811
    """The callers and stored objects of the receivers. A credentials exchange would call the partner's
    versions URL back: every outgoing call fails at once instead (the body parsing is what is fuzzed)."""
    monkeypatch.setattr(ocpi_client, "fetch", _no_outgoing_calls)
    yield FuzzEnv(client, partner)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not STATS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fuzz")
    for name, tally in sorted(STATS.items()):
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(tally.statuses.items()))
        write(
            f"fuzz: {name}: {tally.cases} cases ({tally.accepted} accepted, {tally.refused} refused; "
            f"{statuses}), "
            f"{tally.server_errors} server errors"
        )
    total = sum(tally.cases for tally in STATS.values())
    errors = sum(tally.server_errors for tally in STATS.values())
    write(f"fuzz: {total} cases over {len(STATS)} receivers (FUZZ_EXAMPLES={FUZZ_EXAMPLES}), {errors} server errors")
