"""Stand-ins for the message composer and the channel senders until those land: plain
messages, and the signed webhook (the one channel kind the alerter already speaks).
`alerts/service.py`'s `main` takes the real ones in their place."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import orjson

from alerts.lifecycle import Transition
from alerts.notify import Channel, Links, Message, Recipient
from alerts.webhooks import sign


class SendFailed(Exception):
    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


class PlainComposer:
    """One line per transition: what happened, to what, and the evidence."""

    def compose(self, transition: Transition, recipient: Recipient, links: Links) -> Message:
        alert = transition.alert
        return Message(f"{alert.rule} {transition.kind}: {alert.subject_kind} {alert.subject}",
                       transition.id, [alert.evidence], links, alert.severity,
                       recipient.language)

    def compose_digest(self, transitions: list[Transition], recipient: Recipient,
                       links_for: Callable[[Transition], Links]) -> Message:
        lines = [f"{t.alert.rule} {t.kind}: {t.alert.subject} ({t.id})" for t in transitions]
        first = links_for(transitions[0])
        return Message(f"{len(transitions)} alerts", "digest", lines, first,
                       max((t.alert.severity for t in transitions), default="medium"),
                       recipient.language)


def message_json(message: Message, recipient: Recipient) -> bytes:
    return orjson.dumps({"title": message.title, "summary": message.summary,
                         "evidence": message.evidence, "severity": message.severity,
                         "language": message.language, "recipient": recipient.id,
                         "links": {"view": message.links.view,
                                   "acknowledge": message.links.acknowledge,
                                   "snooze": message.links.snooze}})


async def send(channel: Channel, message: Message, recipient: Recipient, *,
               http: httpx.AsyncClient, idempotency_key: str) -> None:
    """The signed webhook (alerts/webhooks.py's headers); other kinds are not spoken yet."""
    if channel.kind != "webhook":
        raise SendFailed(f"no sender for {channel.kind} channels yet", retryable=False)
    body = message_json(message, recipient)
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Salespulse-Timestamp": timestamp,
               "X-Salespulse-Signature": sign(channel.secret or "", timestamp, body),
               "Idempotency-Key": idempotency_key}
    try:
        response = await http.post(channel.target, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise SendFailed(f"{type(exc).__name__}: {exc}", retryable=True) from exc
    if not 200 <= response.status_code < 300:
        raise SendFailed(f"HTTP {response.status_code}",
                         retryable=response.status_code >= 500 or response.status_code == 429)
