"""Issue 12, "Fuzzing in the suite": every OCPI receiver under hostile input generated from valid objects.

FUZZ_EXAMPLES cases per receiver (30 in `make test`, 1000 in `make fuzz`); the oracle is in harness.py; the
number of cases run is printed at the end of the session.
"""

from __future__ import annotations

import pytest
from flask import Flask
from hypothesis import given

from tests.fuzz.harness import FUZZ_SETTINGS, Case, Runner, cases
from tests.fuzz.receivers import RECEIVERS, FuzzEnv


@pytest.mark.parametrize("name", list(RECEIVERS))
def test_a_receiver_never_fails_and_refuses_cleanly(app: Flask, fuzz_env: FuzzEnv, name: str) -> None:
    receiver = RECEIVERS[name]
    bases = receiver.bases(fuzz_env)
    runner = Runner(fuzz_env.client, receiver, fuzz_env.callers[receiver.caller].headers())

    @FUZZ_SETTINGS
    @given(case=cases(receiver, bases, app.config["OCPI_MAX_BODY_BYTES"]))
    def fuzz(case: Case) -> None:
        runner.run(case)

    fuzz()
