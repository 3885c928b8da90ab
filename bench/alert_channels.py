"""The alert bench's channels: one of each kind, routed by the running alerter to a real
receiver on loopback, and the delay from a condition becoming true to each receiver.

The receivers (`bench/loopback.py`) answer as each vendor does on success; email goes
through an aiosmtpd server the alerter is pointed at with `SMTP_HOST`/`SMTP_PORT`, so the
receivers start before the alerter does. A delivery is matched to its transition by the
key the outbox derives from (transition, recipient, channel): the `Idempotency-Key` of an
HTTP channel, the `Message-ID` made from it for email, whatever the message says.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from alerts.notify import CHANNEL_KINDS, Channel
from alerts.planning import idempotency_key
from bench.channels import ANSWERS, SECRET
from bench.loopback import HttpReceiver, SmtpReceiver
from projections.stats import quantile
from services.alerter.channels.email import message_id

MAILBOX = "owner@bench.local"
# transition id of a deal's `opened` alert, and when its condition became true (event time)
Opened = Callable[[str], tuple[str, datetime] | None]


def channel_id(kind: str) -> str:
    return f"bench-live-{kind}"


class Receivers:
    """A receiver per channel kind on loopback; a context manager (serve until exit)."""

    def __init__(self) -> None:
        self.http = {kind: HttpReceiver(ANSWERS[kind]) for kind in ANSWERS}
        self.smtp = SmtpReceiver()

    def env(self) -> dict[str, str]:
        """What the alerter needs to mail through the local SMTP server."""
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.smtp.port),
                "SMTP_STARTTLS": "false"}

    def __enter__(self) -> Receivers:
        for receiver in self.http.values():
            receiver.__enter__()
        self.smtp.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for receiver in self.http.values():
            receiver.__exit__(*exc)
        self.smtp.__exit__(*exc)

    def channels(self) -> tuple[Channel, ...]:
        signed = ("dingtalk", "feishu", "webhook")
        out = [Channel(channel_id(kind), kind,  # type: ignore[arg-type]
                       f"{receiver.url}/{kind}?key=bench",
                       secret=SECRET if kind in signed else None)
               for kind, receiver in self.http.items()]
        return (*out, Channel(channel_id("email"), "email", MAILBOX))

    def arrivals(self) -> dict[str, dict[str, float]]:
        """Per kind: the key each message came under -> when it first arrived (wall clock)."""
        out: dict[str, dict[str, float]] = {kind: {} for kind in CHANNEL_KINDS}
        for kind, receiver in self.http.items():
            for got in list(receiver.received):
                out[kind].setdefault(got.headers.get("idempotency-key", ""), got.wall)
        for mail in list(self.smtp.mails):
            out["email"].setdefault(str(mail.message["Message-ID"]), mail.wall)
        return out

    def delays_ms(self, deals: list[str], opened: Opened, owner: str
                  ) -> dict[str, list[float]]:
        """Per kind, the delay of each deal's message from its condition becoming true."""
        arrivals = self.arrivals()
        out: dict[str, list[float]] = {kind: [] for kind in CHANNEL_KINDS}
        for deal in deals:
            known = opened(deal)
            if known is None:
                continue
            transition, became_true = known
            for kind in CHANNEL_KINDS:
                key = idempotency_key(transition, owner, channel_id(kind))
                at = arrivals[kind].get(message_id(key) if kind == "email" else key)
                if at is not None:
                    received = datetime.fromtimestamp(at, UTC)
                    out[kind].append((received - became_true).total_seconds() * 1000)
        return out

    def all_delivered(self, deals: list[str], opened: Opened, owner: str) -> bool:
        return all(len(d) == len(deals) for d in self.delays_ms(deals, opened, owner).values())


def figures(delays: dict[str, list[float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for kind, values in delays.items():
        out[f"alert_channel_{kind}_delivered"] = len(values)
        if values:
            out[f"alert_channel_{kind}_delay_p50_ms"] = quantile(values, 0.5) or 0
            out[f"alert_channel_{kind}_delay_p99_ms"] = quantile(values, 0.99) or 0
            out[f"alert_channel_{kind}_delay_max_ms"] = max(values)
    return out
