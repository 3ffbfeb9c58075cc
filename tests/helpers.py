"""Test helpers: reading the mail outbox, submitting forms with their CSRF token like a browser."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

from flask.testing import FlaskClient


class Mailbox:
    """Reads the messages the mail service wrote to the outbox folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def messages(self) -> list[email.message.EmailMessage]:
        if not self.folder.exists():
            return []
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for path in sorted(self.folder.glob("*.eml"))
        ]

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [message for message in self.messages() if message["To"] == address]

    def last_link(self, address: str) -> str:
        """The path of the last http link in the last message to ``address``."""
        body = self.to(address)[-1].get_body(("plain",)).get_content()
        urls = re.findall(r"https?://[^\s]+", body)
        assert urls, f"no link in the mail to {address}: {body}"
        return re.sub(r"^https?://[^/]+", "", urls[0])


CSRF_PATTERN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_token_from(html: str) -> str:
    match = CSRF_PATTERN.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1) or match.group(2)


def submit_form(
    client: FlaskClient,
    url: str,
    data: dict[str, object],
    *,
    form_url: str | None = None,
    follow_redirects: bool = False,
    prefix: str = "",
):  # type: ignore[no-untyped-def]
    """GET the page holding the form, then POST ``data`` with the page's CSRF token, like a browser."""
    page = client.get(form_url or url)
    token = csrf_token_from(page.get_data(as_text=True))
    payload = {f"{prefix}csrf_token": token, **data}
    return client.post(url, data=payload, follow_redirects=follow_redirects)


def listens(url: str, default_port: int = 6379) -> bool:
    """Whether something accepts TCP connections at ``url``'s host and port (a Redis broker, say)."""
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False
