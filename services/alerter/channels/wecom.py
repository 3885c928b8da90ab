"""WeCom (企业微信) group robot: POST the rendered message to the robot's key URL,
`https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...`. No signature: the key is the
secret. A robot takes 20 messages a minute: a limiter per robot URL spaces them."""

from __future__ import annotations

import httpx

from alerts.formats import wecom as render
from alerts.notify import Channel, Message
from services.alerter.channels.errors import DeliveryError
from services.alerter.channels.http import body_code, post_json
from services.alerter.channels.limiter import RobotLimiter

PER_MINUTE = 20
# -1 system busy, 45009 frequency over the limit: later may work. Others (93000 invalid
# webhook URL, 40008 invalid message type, 44004 empty content, ...) will not.
RETRYABLE = frozenset({-1, 45009})


def default_limiter() -> RobotLimiter:
    return RobotLimiter(PER_MINUTE, 60.0)


async def send(channel: Channel, message: Message, *, http: httpx.AsyncClient,
               idempotency_key: str, limiter: RobotLimiter) -> None:
    await limiter.acquire(channel.target)
    response = await post_json(http, channel.target, render(message),
                               idempotency_key=idempotency_key, vendor="wecom")
    code, text = body_code(response, "errcode", "wecom")
    if code != 0:
        raise DeliveryError(f"wecom: errcode {code} {text}".strip(), code in RETRYABLE)
