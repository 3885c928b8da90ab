"""Channel senders: one module per kind, and `send`, the one entry the outbox calls.

Each renders the message as its vendor documents (`alerts/formats`), signs it where the
vendor asks, posts it, and reads the vendor's answer: success returns, anything else raises
`DeliveryError(reason, retryable)`.
"""

from __future__ import annotations

import httpx

from alerts.notify import Channel, Message, Recipient
from services.alerter.channels import dingtalk, email, feishu, slack, teams, webhook, wecom
from services.alerter.channels.email import SmtpConfig
from services.alerter.channels.errors import DeliveryError
from services.alerter.channels.limiter import RobotLimiter
from services.settings import Settings

__all__ = ["DeliveryError", "RobotLimiter", "SmtpConfig", "send"]

# WeCom counts per robot across everything this process sends: one limiter for the process.
WECOM_LIMITER = wecom.default_limiter()


async def send(channel: Channel, message: Message, recipient: Recipient, *,
               http: httpx.AsyncClient, idempotency_key: str,
               smtp: SmtpConfig | None = None, wecom_limiter: RobotLimiter | None = None) -> None:
    """Deliver `message` to `recipient` through `channel`, or raise `DeliveryError`.
    `smtp` defaults to the environment's settings, `wecom_limiter` to the process's."""
    kind = channel.kind
    if kind == "email":
        await email.send(channel, message, recipient, idempotency_key=idempotency_key,
                         smtp=smtp or SmtpConfig.from_settings(Settings()))
    elif kind == "wecom":
        await wecom.send(channel, message, http=http, idempotency_key=idempotency_key,
                         limiter=wecom_limiter or WECOM_LIMITER)
    elif kind == "dingtalk":
        await dingtalk.send(channel, message, http=http, idempotency_key=idempotency_key)
    elif kind == "feishu":
        await feishu.send(channel, message, http=http, idempotency_key=idempotency_key)
    elif kind == "slack":
        await slack.send(channel, message, http=http, idempotency_key=idempotency_key)
    elif kind == "teams":
        await teams.send(channel, message, http=http, idempotency_key=idempotency_key)
    elif kind == "webhook":
        await webhook.send(channel, message, http=http, idempotency_key=idempotency_key)
    else:
        raise DeliveryError(f"unknown channel kind {kind!r}", retryable=False)
