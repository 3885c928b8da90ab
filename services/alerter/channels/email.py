"""Email over SMTP (aiosmtplib): a multipart/alternative mail, plain text and HTML, to the
channel's addresses or else the recipient's own; `Message-ID` derived from the idempotency
key, so a mail sent twice after a crash is one thread and a receiver can drop the copy."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr

import aiosmtplib
import structlog

from alerts.formats import email as render
from alerts.notify import Channel, Message, Recipient
from services.alerter.channels.errors import DeliveryError
from services.settings import Settings

log = structlog.get_logger("alerter.email")


@dataclass(frozen=True)
class SmtpConfig:
    host: str | None
    port: int = 587
    sender: str = "salespulse@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        return cls(settings.smtp_host, settings.smtp_port, settings.smtp_from,
                   settings.smtp_username, settings.smtp_password, settings.smtp_starttls,
                   settings.smtp_timeout_seconds)


def message_id(idempotency_key: str) -> str:
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@salespulse>"


def mail(message: Message, recipient: Recipient, to: list[str], sender: str,
         idempotency_key: str) -> EmailMessage:
    content = render(message)
    mail = EmailMessage()
    mail["Subject"] = content.subject
    mail["From"] = sender
    mail["To"] = ", ".join(formataddr((recipient.name, a)) if a == recipient.email else a
                           for a in to)
    mail["Message-ID"] = message_id(idempotency_key)
    mail.set_content(content.text)
    mail.add_alternative(content.html, subtype="html")
    mail["Content-Language"] = message.language  # after: set_content drops Content-* headers
    return mail


async def send(channel: Channel, message: Message, recipient: Recipient, *,
               idempotency_key: str, smtp: SmtpConfig) -> None:
    to = [a.strip() for a in channel.target.split(",") if a.strip()] or (
        [recipient.email] if recipient.email else [])
    if not to:
        raise DeliveryError(f"email: no address for {recipient.id}", retryable=False)
    if not smtp.host:
        raise DeliveryError("email: SMTP_HOST is not set", retryable=False)
    mail_ = mail(message, recipient, to, smtp.sender, idempotency_key)
    try:
        refused, _ = await aiosmtplib.send(
            mail_, hostname=smtp.host, port=smtp.port, username=smtp.username,
            password=smtp.password, start_tls=smtp.starttls, timeout=smtp.timeout)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        raise DeliveryError(f"email: recipients refused {codes}",
                            all(400 <= c < 500 for c in codes)) from None
    except aiosmtplib.SMTPResponseException as exc:
        # 4xx is the server's "try again later"; 5xx (auth, refused sender) is final.
        raise DeliveryError(f"email: SMTP {exc.code} {exc.message}",
                            400 <= exc.code < 500) from None
    except aiosmtplib.SMTPException as exc:
        # A server without STARTTLS when SMTP_STARTTLS asks for it: a setting to fix, not
        # a moment to wait out (aiosmtplib tells it only in words).
        final = "STARTTLS extension not supported" in str(exc)
        raise DeliveryError(f"email: {type(exc).__name__}: {exc}", not final) from None
    except OSError as exc:
        raise DeliveryError(f"email: {type(exc).__name__}: {exc}", retryable=True) from None
    if refused:  # some addresses took it: sending again would repeat it to them
        log.warning("email.partly_refused", channel=channel.id,
                    refused={a: r.code for a, r in refused.items()})
