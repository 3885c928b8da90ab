"""The I/O edge of the simulator: post events to the HTTP API, or write them to JSONL."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.progress import Progress

from services.simulate.world import TZ, live

log = logging.getLogger(__name__)
BATCH_PATH = "/v1/events/batch"


@dataclass
class FeedResult:
    sent: int = 0
    accepted: int = 0
    duplicate: int = 0
    held: int = 0  # waiting for a subject not known yet (CONTRACT.md, "Order of arrival")

    def add(self, body: dict[str, Any], sent: int) -> None:
        statuses = [r.get("status") for r in body.get("results", [])]
        self.sent += sent
        self.accepted += statuses.count("accepted")
        self.duplicate += statuses.count("duplicate")
        self.held += statuses.count("held")


class FeedError(RuntimeError):
    """The API refused a batch; `body` is its problem document (RFC 9457) or raw text."""

    def __init__(self, status_code: int, body: Any) -> None:
        super().__init__(f"batch refused with HTTP {status_code}: {body}")
        self.status_code, self.body = status_code, body


def _batches(events: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(events)
    while batch := list(islice(it, size)):
        yield batch


def _checked(response: httpx.Response) -> dict[str, Any]:
    if not response.is_success:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        raise FeedError(response.status_code, body)
    return orjson.loads(response.content)  # type: ignore[no-any-return]


def _as_json(headers: dict[str, str] | None) -> dict[str, str]:
    # The batch goes as orjson's bytes: httpx's `json=` encodes with the stdlib, whose CPU
    # the poster takes from the cores the API shares.
    return {"Content-Type": "application/json", **(headers or {})}


def post_events(base_url: str, events: Iterable[dict[str, Any]], *, batch_size: int = 500,
                headers: dict[str, str] | None = None, progress: bool = False,
                client: httpx.Client | None = None) -> FeedResult:
    """POST `events` in order, `batch_size` per request; raise `FeedError` on a refusal."""
    result = FeedResult()
    total = len(events) if isinstance(events, list | tuple) else None
    own = client is None
    http = client or httpx.Client(timeout=60)
    url = base_url.rstrip("/") + BATCH_PATH
    try:
        with Progress(disable=not progress) as bar:
            task = bar.add_task("posting events", total=total)
            for batch in _batches(events, batch_size):
                result.add(_checked(http.post(url, content=orjson.dumps(batch),
                                             headers=_as_json(headers))), len(batch))
                bar.advance(task, len(batch))
    finally:
        if own:
            http.close()
    log.info("posted %d events: %d accepted, %d duplicate", result.sent, result.accepted,
             result.duplicate)
    return result


async def feed_live(base_url: str, seed: int, *, speed: float,
                    headers: dict[str, str] | None = None, stop: asyncio.Event | None = None,
                    start: datetime | None = None, max_batch: int = 200,
                    client: httpx.AsyncClient | None = None, **world: Any) -> FeedResult:
    """Post the live world as its events come due in wall time, until `stop` is set.

    `world` passes through to `live` (teams, leads_per_day, …).
    """
    stop = stop or asyncio.Event()
    start = start or datetime.now(TZ)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    stream = live(seed, start, speed=speed, **world)
    upcoming = next(stream, None)
    result = FeedResult()
    url = base_url.rstrip("/") + BATCH_PATH
    http = client or httpx.AsyncClient(timeout=60)
    try:
        while upcoming is not None and not stop.is_set():
            due: list[dict[str, Any]] = []
            now = loop.time() - t0
            while upcoming is not None and upcoming[0] <= now and len(due) < max_batch:
                due.append(upcoming[1])
                upcoming = next(stream, None)
            if due:
                result.add(_checked(await http.post(url, content=orjson.dumps(due),
                                                   headers=_as_json(headers))), len(due))
                continue
            if upcoming is not None:
                try:  # sleep until the next event is due, waking early on stop
                    await asyncio.wait_for(stop.wait(), timeout=upcoming[0] - now)
                except TimeoutError:
                    pass
    finally:
        if client is None:
            await http.aclose()
    return result


def write_jsonl(path: str | Path, events: Iterable[dict[str, Any]]) -> int:
    """Write one event per line; returns how many."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as out:
        for ev in events:
            out.write(json.dumps(ev, ensure_ascii=False, separators=(",", ":")) + "\n")
            n += 1
    return n
