"""The one mail service: SMTP when ``MAIL_SERVER`` is configured, else an outbox folder and the log.

Mail is a side effect: callers send it after their unit of work has committed, so a rolled-back sign-up
never emails anybody.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import uuid
from email.message import EmailMessage
from pathlib import Path

from flask import current_app, render_template
from flask_babel import force_locale

log = logging.getLogger(__name__)


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
    log.info("mail to %s written to %s: %s\n%s", message["To"], path, message["Subject"],
             body.get_content() if body is not None else "")


def send_template(to: str, template: str, language: str, subject: str, *,
                  attachments: list[tuple[str, bytes, str]] | None = None, **context: object) -> None:
    """Render ``templates/emails/<template>.txt`` (and ``.html`` if present) in ``language`` and send it.

    ``subject`` is a msgid; it is translated in the recipient's language, not the current request's.
    ``attachments`` are (file name, bytes, MIME type), e.g. the invoice PDF.
    """
    from flask_babel import gettext

    with force_locale(language):
        text = render_template(f"emails/{template}.txt", **context)
        translated_subject = gettext(subject)
    message = build_message(to, translated_subject, text)
    for filename, content, mimetype in attachments or []:
        maintype, _, subtype = mimetype.partition("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    send_message(message)
