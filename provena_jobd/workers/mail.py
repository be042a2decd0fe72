"""SEND_EMAIL: over SMTP when a server is configured, otherwise into an outbox folder."""

from __future__ import annotations

import re
import uuid
from email.message import EmailMessage

import aiosmtplib
import anyio

from ..config import EmailSettings
from ..errors import JobFailed, RetryLater
from .handlers import Handler, JobContext, Payload, Result

# The reference validates addresses with a regex before sending anything.
EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


def build_message(settings: EmailSettings, payload: Payload, session_id: str) -> EmailMessage:
    """The message for a SEND_EMAIL payload."""
    message = EmailMessage()
    message["From"] = settings.from_address
    message["To"] = payload["email_to"]
    message["Subject"] = payload["subject"]
    message["X-Jobd-Session-Id"] = session_id
    message["X-Jobd-Reason"] = payload["reason"]
    message.set_content(payload["body"])
    return message


def send_email_handler(settings: EmailSettings) -> Handler:
    """A handler that sends with these settings."""

    async def send_email(context: JobContext, payload: Payload) -> Result:
        """Check the address, then send (SMTP) or file (outbox) the message."""
        address = payload["email_to"]
        if not EMAIL_PATTERN.fullmatch(address):
            raise JobFailed(
                f"Email failed validation against regex: {EMAIL_PATTERN.pattern} "
                f"({address!r}). No email sent"
            )
        message = build_message(settings, payload, context.session_id)
        if settings.smtp_host is None:
            outbox = anyio.Path(settings.outbox)
            await outbox.mkdir(parents=True, exist_ok=True)
            name = f"{context.clock.now():.0f}-{context.session_id}-{uuid.uuid4().hex[:8]}.eml"
            await (outbox / name).write_bytes(bytes(message))
            return {}
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                start_tls=settings.starttls,
                username=settings.username,
                password=settings.password,
                timeout=30,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise JobFailed(f"the mail server refused {address}: {exc}") from None
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, OSError) as exc:
            raise RetryLater(f"cannot reach the mail server: {exc}") from None
        except aiosmtplib.SMTPException as exc:
            raise JobFailed(f"the mail server did not accept the message: {exc}") from None
        return {}

    return send_email
