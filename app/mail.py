"""The one mail service: SMTP when ``MAIL_SERVER`` is configured, else an outbox folder and the log.

Mail is a side effect: callers send it after their unit of work has committed, so a rolled-back sign-up
never emails anybody. A web request queues its mail (:func:`queue_template`, a Celery task; inline when no
broker is configured) instead of talking SMTP itself: an answer that waits for a mail server takes longer when
there is somebody to write to, which tells an attacker whether an address has an account.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import uuid
from email.message import EmailMessage
from pathlib import Path

from celery import current_task
from flask import current_app, render_template
from flask_babel import force_locale

from app.jobs import task

log = logging.getLogger(__name__)

MAX_SEND_RETRIES = 5  # a minute, then 2, 4, 8 and 16: a mail server down for half an hour loses nothing


def build_message(to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    message["Message-ID"] = f"<{uuid.uuid4()}@{current_app.config['COMPANY_PARTY_ID'].lower()}.emsp>"
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def send_message(message: EmailMessage) -> None:
    config = current_app.config
    if config.get("MAIL_SERVER"):
        with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30) as smtp:
            if config.get("MAIL_USE_TLS"):
                smtp.starttls()
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
            smtp.send_message(message)
        log.info("mail sent via SMTP to %s: %s", message["To"], message["Subject"])
        return
    outbox = Path(config["MAIL_OUTBOX_DIR"])
    outbox.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    path = outbox / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
    path.write_bytes(bytes(message))
    body = message.get_body(("plain",))
    log.info(
        "mail to %s written to %s: %s\n%s",
        message["To"],
        path,
        message["Subject"],
        body.get_content() if body is not None else "",
    )


def send_template(
    to: str,
    template: str,
    language: str,
    subject: str,
    *,
    attachments: list[tuple[str, bytes, str]] | None = None,
    **context: object,
) -> None:
    """Render ``templates/emails/<template>.txt`` (and ``.html`` if present) in ``language`` and send it.

    ``subject`` is a msgid; it is translated in the recipient's language, not the current request's.
    ``attachments`` are (file name, bytes, MIME type), e.g. the invoice PDF.
    """
    translated_subject, text = render_template_mail(template, language, subject, **context)
    message = build_message(to, translated_subject, text)
    for filename, content, mimetype in attachments or []:
        maintype, _, subtype = mimetype.partition("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    send_message(message)


def render_template_mail(template: str, language: str, subject: str, **context: object) -> tuple[str, str]:
    """The subject (a msgid) and text of ``templates/emails/<template>.txt``, both in ``language``."""
    from flask_babel import gettext

    with force_locale(language):
        return gettext(subject), render_template(f"emails/{template}.txt", **context)


def queue_template(to: str, template: str, language: str, subject: str, **context: object) -> None:
    """Like :func:`send_template`, but the sending is a job: rendered here (the context may hold dates and
    amounts a queue cannot carry), sent by a worker (inline when there is no broker)."""
    translated_subject, text = render_template_mail(template, language, subject, **context)
    send_rendered_mail.delay(to, translated_subject, text)


@task(name="mail.send_rendered", max_retries=MAX_SEND_RETRIES)
def send_rendered_mail(to: str, subject: str, text: str) -> None:
    """Send a rendered mail. On a worker, an unreachable or refusing mail server is retried with backoff; inline
    (no broker) the caller sees the failure, as when it sent the mail itself."""
    try:
        send_message(build_message(to, subject, text))
    except (OSError, smtplib.SMTPException) as error:
        job = current_task
        if job is None or job.request.is_eager:
            raise
        raise job.retry(exc=error, countdown=60 * 2**job.request.retries) from error
