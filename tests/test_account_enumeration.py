"""Pen test, issue 12 (2): sign-up and reset do the same work for a known and an unknown address, and mail goes
through the job queue (a known address was answered in 8 ms, a new one in 192 ms; a reset mailed inline).

Counted, not timed (no timing assertion in a unit test): password hashes and queued mail tasks per request.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from argon2 import PasswordHasher

from app import mail
from tests.factories import make_user
from tests.helpers import submit_form
from tests.test_accounts import SIGNUP


@dataclass
class Work:
    hashes: int = 0
    queued: list[tuple[str, str]] = field(default_factory=list)  # (to, subject) of each queued mail task

    def reset(self) -> None:
        self.hashes = 0
        self.queued.clear()


@pytest.fixture
def work(monkeypatch) -> Iterator[Work]:  # type: ignore[no-untyped-def]
    """Counts argon2 hashes, and records mail tasks instead of running them (as a broker would take them)."""
    counted = Work()
    real_hash = PasswordHasher.hash

    def counting_hash(self, password, *args, **kwargs):  # type: ignore[no-untyped-def]
        counted.hashes += 1
        return real_hash(self, password, *args, **kwargs)

    def queue(to: str, subject: str, text: str) -> None:
        counted.queued.append((to, subject))

    monkeypatch.setattr(PasswordHasher, "hash", counting_hash)
    monkeypatch.setattr(mail.send_rendered_mail, "delay", queue)
    yield counted


def test_signup_of_a_new_and_a_known_address_answer_and_work_alike(client, mailbox, work):
    data = {**SIGNUP, "email": "someone@example.com", "language": "en"}
    work.reset()
    new = submit_form(client, "/signup", data)
    new_work = (work.hashes, list(work.queued))
    work.reset()
    known = submit_form(client, "/signup", data)  # the same address again: now a known one
    known_work = (work.hashes, list(work.queued))

    assert new.status_code == known.status_code == 200
    assert new.get_data() == known.get_data()
    assert new_work[0] == known_work[0] == 1  # one password hash each
    assert new_work[1] == [("someone@example.com", "Confirm your email address")]
    assert known_work[1] == [("someone@example.com", "You already have an account")]
    assert mailbox.messages() == []  # nothing was sent inside the request: both went to the queue


def test_password_reset_queues_its_mail(client, mailbox, work):
    make_user(email="known@example.com")
    known = submit_form(client, "/password/reset", {"email": "known@example.com"})
    assert work.queued == [("known@example.com", "Reset your password")]
    unknown = submit_form(client, "/password/reset", {"email": "unknown@example.com"})
    assert work.queued == [("known@example.com", "Reset your password")]
    assert known.status_code == unknown.status_code == 302
    assert known.headers["Location"] == unknown.headers["Location"]
    assert mailbox.messages() == []


def test_without_a_broker_the_queued_mail_is_sent_inline(client, mailbox):
    make_user(email="known@example.com")
    submit_form(client, "/password/reset", {"email": "known@example.com"})
    [message] = mailbox.to("known@example.com")
    assert message["Subject"] == "Reset your password"
