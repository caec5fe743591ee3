"""Delivering sign-in codes: SMTP when configured, otherwise the server log (local use)."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Protocol

import aiosmtplib

from backend.auth.email_codes import IssuedCode
from backend.http.errors import ServiceUnavailable
from backend.settings import Settings

logger = logging.getLogger("killa.auth.mail")

SMTP_TIMEOUT_SECONDS = 20


class EmailDeliveryFailed(ServiceUnavailable):
    code = "EMAIL_DELIVERY_FAILED"


class Mailer(Protocol):
    async def send_code(self, issued: IssuedCode) -> None: ...


def sign_in_message(issued: IssuedCode, *, sender: str, service_url: str) -> EmailMessage:
    minutes = max(1, round(issued.valid_for.total_seconds() / 60))
    message = EmailMessage()
    message["Subject"] = f"Your Killa Tamata sign-in code: {issued.code}"
    message["From"] = sender
    message["To"] = issued.email
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].partition("@")[2] or None)
    message.set_content(
        f"Your sign-in code is {issued.code}\n\n"
        f"Enter it on the Killa Tamata sign-in page ({service_url}). "
        f"It works once and expires in {minutes} minutes.\n\n"
        "If you did not ask to sign in, ignore this email: nobody can sign in without the code.\n"
    )
    return message


class SmtpMailer:
    def __init__(self, settings: Settings) -> None:
        if not settings.smtp_host:
            raise ValueError("SmtpMailer needs smtp_host")
        self.settings = settings

    async def send_code(self, issued: IssuedCode) -> None:
        s = self.settings
        message = sign_in_message(issued, sender=s.smtp_from, service_url=s.base_url)
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                use_tls=s.smtp_security == "tls",
                start_tls=s.smtp_security == "starttls",
                timeout=SMTP_TIMEOUT_SECONDS,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            logger.error("sign-in mail to %s failed: %s", issued.email, exc)
            raise EmailDeliveryFailed(
                "The sign-in email could not be sent. Try again in a minute."
            ) from exc


class LogMailer:
    """For a local `killa serve` without SMTP: the operator reads the code from the log."""

    async def send_code(self, issued: IssuedCode) -> None:
        logger.warning(
            "SMTP is not configured (KILLA_SMTP_HOST); sign-in code for %s is %s",
            issued.email,
            issued.code,
            extra={"email": issued.email},
        )


def mailer_for(settings: Settings) -> Mailer:
    return SmtpMailer(settings) if settings.smtp_host else LogMailer()
