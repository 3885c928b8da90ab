"""The client: batching, retries with backoff, typed answers, RFC 9457 problems as errors."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

import httpx

from events.vocabulary import Grouping

MAX_BATCH = 10_000  # the API's limit per request
RETRIED_STATUSES = {429, 502, 503, 504}



class StageRow(TypedDict):
    stage: str
    open_deals: int
    open_amount: str
    entered: int
    advanced: int
    conversion: float | None
    dwell_days_median: float | None
    dwell_days_p90: float | None


class Funnel(TypedDict, total=False):
    stages: list[StageRow]
    won: int
    lost: int
    won_value: str
    win_rate: float | None


class BreakdownRow(TypedDict):
    key: str | None
    deals: int
    open: int
    won: int
    lost: int
    win_rate: float | None
    won_value: str
    avg_won_value: str | None
    cycle_days_mean: float | None
    cycle_days_median: float | None
    activities: int
    leads: int
    lead_conversion: float | None


class Breakdown(TypedDict):
    by: str
    rows: list[BreakdownRow]


class Refused(Exception):
    """The API refused the request (4xx): nothing of the batch was stored."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status, self.problem = status, problem
        self.errors: list[dict[str, Any]] = problem.get("errors", [])
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}")


class Unavailable(Exception):
    """The API could not be reached, or kept answering 429/5xx, through every retry."""


@dataclass
class SendResult:
    accepted: int = 0
    duplicate: int = 0
    held: int = 0  # waiting for a subject not known yet (answered `held`)
    retries: int = 0
    ids: list[str] = field(default_factory=list)


def event(type_: str, data: dict[str, Any], *, occurred_at: datetime | str | None = None,
          id: str | None = None, actor: str | None = None) -> dict[str, Any]:
    """A contract event: a fresh id and the current time unless given."""
    when = occurred_at or datetime.now(UTC)
    body: dict[str, Any] = {"id": id or str(uuid.uuid4()), "type": type_,
                            "occurred_at": when if isinstance(when, str) else when.isoformat(),
                            "data": data}
    if actor:
        body["actor"] = actor
    return body


class Client:
    def __init__(self, base_url: str, *, api_key: str | None = None,
                 timeout: float = 30.0, retries: int = 5, backoff: float = 0.2,
                 transport: httpx.BaseTransport | None = None) -> None:
        """`api_key`: the credential; it also names the tenant (the API takes it from there
        only)."""
        headers = {"User-Agent": "salespulse-client/1"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout,
                                 transport=transport)
        self.retries, self.backoff = retries, backoff
        self._retried = 0

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # --- writing ---------------------------------------------------------------

    def send(self, one: dict[str, Any], *, unknown: str = "hold") -> str:
        """Send one event; its status, `accepted`, `duplicate` or `held`. An event naming a
        subject not known yet is held until it arrives, or refused with `unknown="refuse"`."""
        return str(self._request("POST", "/v1/events", json=one,
                                 params={"unknown": unknown})["status"])

    def send_many(self, events: Iterable[dict[str, Any]], *, batch_size: int = 1000,
                  unknown: str = "hold") -> SendResult:
        """Send events, `batch_size` per request (each batch all or nothing), in any order:
        what names a subject not known yet is held (or refused: `unknown="refuse"`)."""
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
        result = SendResult()
        self._retried = 0
        for batch in _chunks(events, batch_size):
            answer = self._request("POST", "/v1/events/batch", json=batch,
                                   params={"unknown": unknown})
            for outcome in answer["results"]:
                result.ids.append(outcome["id"])
                if outcome["status"] == "accepted":
                    result.accepted += 1
                elif outcome["status"] == "held":
                    result.held += 1
                else:
                    result.duplicate += 1
        result.retries = self._retried
        return result

    # --- reading ---------------------------------------------------------------

    def funnel(self, **filters: str) -> Funnel:
        return self._request("GET", "/v1/funnel", params=filters)  # type: ignore[return-value]

    def breakdown(self, by: Grouping, **filters: str) -> Breakdown:
        return self._request(  # type: ignore[return-value]
            "GET", "/v1/breakdown", params={"by": by, **filters})

    def get(self, path: str, **params: Any) -> Any:
        """Any other read endpoint, e.g. `get("/v1/revenue", by="month")`."""
        return self._request("GET", path, params=params)

    # --- transport ---------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if last:
                    raise Unavailable(f"{method} {path}: {exc}") from exc
                self._sleep(attempt, None)
                continue
            if response.status_code in RETRIED_STATUSES and not last:
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            if response.status_code >= 500 or response.status_code in RETRIED_STATUSES:
                raise Unavailable(f"{method} {path}: {response.status_code} {response.text[:200]}")
            if response.status_code >= 400:
                try:
                    problem = response.json()
                except ValueError:
                    problem = {"title": response.reason_phrase, "detail": response.text}
                raise Refused(response.status_code, problem)
            return response.json()
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        self._retried += 1
        delay = self.backoff * 2 ** attempt
        if retry_after and retry_after.replace(".", "", 1).isdigit():
            delay = max(delay, float(retry_after))
        time.sleep(delay)


def _chunks(events: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for one in events:
        batch.append(one)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
