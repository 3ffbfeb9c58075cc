"""The localstripe emulator as a pytest fixture: a subprocess on a free loopback port.

Used by ``tests/payments`` (through its conftest) and by the browser test of the payment page.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from flask import Flask

from app.payments.stripe_client import reset_stripe_client

RUNNER = Path(__file__).resolve().parents[2] / "app" / "payments" / "emulator.py"
START_TIMEOUT_SECONDS = 20
API_KEY = "sk_test_localstripe"
PUBLISHABLE_KEY = "pk_test_localstripe"


@dataclass(frozen=True)
class LocalStripe:
    url: str

    @property
    def js_url(self) -> str:
        return f"{self.url}/js.stripe.com/v3/"

    def config(self) -> dict[str, object]:
        return {
            "STRIPE_API_BASE": self.url,
            "STRIPE_JS_URL": self.js_url,
            "STRIPE_API_KEY": API_KEY,
            "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
        }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/js.stripe.com/v3/", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, str(RUNNER), str(port)], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while not _answers(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    process.wait(timeout=5)
                    pytest.fail(
                        f"localstripe did not start on {url} within {START_TIMEOUT_SECONDS}s "
                        f"(exit code {process.returncode}); is `localstripe` installed "
                        f"(requirements-dev.txt)? Its output:\n{log_path.read_text(errors='replace')}",
                        pytrace=False,
                    )
                time.sleep(0.1)
            yield LocalStripe(url)
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


def point_app_at(app: Flask, emulator: LocalStripe) -> dict[str, object]:
    """Point ``app`` at the emulator; returns the previous values for :func:`restore_app`."""
    settings = emulator.config()
    previous = {key: app.config.get(key) for key in settings}
    app.config.update(settings)
    reset_stripe_client(app)
    return previous


def restore_app(app: Flask, previous: dict[str, object]) -> None:
    app.config.update(previous)
    reset_stripe_client(app)
