"""`salespulse-bench channels`: the delay from `send()` called to the receiver having the
message, per channel, measured, never asserted.

Each channel's sender (`services/alerter/channels`) posts to a real receiver on loopback
(`bench/loopback.py`: a threaded HTTP server answering as the vendor does, an aiosmtpd
SMTP server for email), one message at a time, `--count` times after a few warm-up sends.
The delay is the receiver's clock when it has read the whole body (or the mail's DATA)
minus the clock when `send()` was called: rendering, signing, JSON, the HTTP or SMTP
exchange up to the receiver; one process, one monotonic clock. WeCom goes through a
limiter wide open, so the figure is the sending path's: past 20 messages a minute a real
robot's limiter holds the next one for up to a minute, by design. A last row, a bare POST
to the same receiver, is the floor the HTTP channels stand on.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from alerts.lifecycle import Alert, Transition
from alerts.messages import compose
from alerts.notify import Channel, Language, Links, Message, Recipient
from bench.loopback import HttpReceiver, SmtpReceiver
from projections.stats import quantile
from services.alerter.channels import RobotLimiter, SmtpConfig, send

console = Console()
WARMUP = 5
SECRET = "SEC-bench-secret"
ANSWERS = {"wecom": (200, b'{"errcode":0,"errmsg":"ok"}'),
           "dingtalk": (200, b'{"errcode":0,"errmsg":"ok"}'),
           "feishu": (200, b'{"code":0,"data":{},"msg":"success"}'),
           "slack": (200, b"ok"), "teams": (202, b""), "webhook": (204, b"")}


def sample_message(language: Language) -> tuple[Message, Recipient]:
    """A stalled deal of a key customer, as a manager would get it."""
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    alert = Alert("a1b2c3", "default", "stalled_deal", "deal", "D-1009", at,
                  "in negotiation 25.0 days; threshold 21.0 (p80 of 12 won deals)", "high",
                  "rep-17", "mgr-3", "team-east",
                  {"stage": "negotiation", "entered_at": "2026-02-04T09:30:00+00:00",
                   "days_in_stage": 25.0, "threshold_days": 21.0, "customer": "C-88",
                   "amount": "480000", "customer_name": "华东精密制造", "owner_name": "李雷"})
    recipient = Recipient("mgr-3", "韩梅梅", language, email="han@example.com",
                          mobile="13800000000")
    links = Links("http://127.0.0.1:8000/dashboard#deal=D-1009",
                  "http://127.0.0.1:8000/v1/alerts/a1b2c3/ack?t=token",
                  "http://127.0.0.1:8000/v1/alerts/a1b2c3/snooze?t=token")
    return compose(Transition("a1b2c3:opened", "opened", at, alert), recipient, links), recipient


async def _measure_http(kind: str, count: int, message: Message,
                        recipient: Recipient) -> list[float]:
    with HttpReceiver(ANSWERS[kind]) as receiver:
        secret = SECRET if kind in ("dingtalk", "feishu", "webhook") else None
        channel = Channel(f"bench-{kind}", kind, f"{receiver.url}/{kind}?key=k",  # type: ignore[arg-type]
                          secret=secret)
        limiter = RobotLimiter(10**9, 60.0)
        delays = []
        async with httpx.AsyncClient(timeout=10) as http:
            for i in range(WARMUP + count):
                started = time.perf_counter()
                await send(channel, message, recipient, http=http,
                           idempotency_key=f"{kind}:{i}", wecom_limiter=limiter)
                got = receiver.wait_for(i + 1)[i]
                if i >= WARMUP:
                    delays.append(got.at - started)
    return delays


async def _measure_raw(count: int) -> list[float]:
    """The floor beside the channels: a bare POST of a small JSON body to the same kind of
    receiver, nothing rendered or signed."""
    with HttpReceiver() as receiver:
        delays = []
        async with httpx.AsyncClient(timeout=10) as http:
            for i in range(WARMUP + count):
                started = time.perf_counter()
                await http.post(f"{receiver.url}/raw", content=b'{"ok":true}')
                got = receiver.wait_for(i + 1)[i]
                if i >= WARMUP:
                    delays.append(got.at - started)
    return delays


async def _measure_email(count: int, message: Message, recipient: Recipient) -> list[float]:
    with SmtpReceiver() as server:
        smtp = SmtpConfig("127.0.0.1", server.port, "alerts@salespulse.local",
                          starttls=False, timeout=10)
        channel = Channel("bench-email", "email", "")
        delays = []
        async with httpx.AsyncClient() as http:
            for i in range(WARMUP + count):
                started = time.perf_counter()
                await send(channel, message, recipient, http=http,
                           idempotency_key=f"email:{i}", smtp=smtp)
                got = server.wait_for(i + 1)[i]
                if i >= WARMUP:
                    delays.append(got.at - started)
    return delays


def run(count: int, language: Language) -> dict[str, list[float]]:
    message, recipient = sample_message(language)

    async def all_channels() -> dict[str, list[float]]:
        out = {kind: await _measure_http(kind, count, message, recipient) for kind in ANSWERS}
        out["email"] = await _measure_email(count, message, recipient)
        out["bare POST (floor)"] = await _measure_raw(count)
        return out

    return asyncio.run(all_channels())


def report(delays: dict[str, list[float]], language: str) -> None:
    table = Table(title=f"send() to the receiver on loopback ({language}), milliseconds")
    for column in ("channel", "messages", "p50", "p99", "max"):
        table.add_column(column, justify="left" if column == "channel" else "right")
    for kind, values in delays.items():
        p50, p99 = quantile(values, 0.5) or 0.0, quantile(values, 0.99) or 0.0
        table.add_row(kind, str(len(values)), f"{p50 * 1000:.2f}", f"{p99 * 1000:.2f}",
                      f"{max(values) * 1000:.2f}")
    console.print(table)


def main(
    count: Annotated[int, typer.Option(min=1, help="Messages per channel")] = 200,
    language: Annotated[str, typer.Option(help="en or zh-CN")] = "zh-CN",
) -> None:
    """Measure each channel's delivery delay to a local receiver (reports only)."""
    if language not in ("en", "zh-CN"):
        raise typer.BadParameter("en or zh-CN", param_hint="--language")
    lang: Language = "en" if language == "en" else "zh-CN"
    report(run(count, lang), language)
