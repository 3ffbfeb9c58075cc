"""Mail from a request goes through the job queue (app.mail.queue_template): rendered in the recipient's
language by the caller, sent by the task (inline without a broker)."""

from __future__ import annotations

import smtplib

import pytest

from app import mail


def test_queued_mail_is_rendered_in_the_recipients_language(app, db_session, mailbox):
    mail.queue_template(
        "driver@example.com",
        "reset_password",
        "fr",
        "Reset your password",
        reset_url="http://localhost/password/reset/t",
    )
    [message] = mailbox.to("driver@example.com")
    assert message["Subject"] == "Réinitialiser votre mot de passe"
    assert "http://localhost/password/reset/t" in message.get_body(("plain",)).get_content()


def test_without_a_broker_a_mail_server_failure_reaches_the_caller(app, db_session, monkeypatch):
    def refuse(message):  # type: ignore[no-untyped-def]
        raise smtplib.SMTPServerDisconnected("try later")

    monkeypatch.setattr(mail, "send_message", refuse)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        mail.queue_template("driver@example.com", "reset_password", "en", "Reset your password", reset_url="x")
