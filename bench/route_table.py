"""Every GET view on a loaded API, one request at a time: what a manager's click costs.

Each view is asked `SAMPLES` questions it was not asked before (a different date window,
or a different `as_of` where the view takes no window), one after another with nothing
else running, so each is computed, not answered from the cache; the views that take no
question (filter lists, alert listings) are asked the same one. Beside each, the HTTP
ceiling: the same server stack sending that view's last answer as fixed bytes, asked the
same way, so what the view adds over the bytes it sends shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import httpx

from bench import http_ceiling
from projections.stats import quantile

SAMPLES = 20
Question = Callable[[int], dict[str, str]]


def window(**fixed: str) -> Question:
    """The n-th of many different 30-day-or-longer windows in the simulated year."""
    def nth(n: int) -> dict[str, str]:
        start = date(2017, 1, 1) + timedelta(days=(7 * n) % 335)
        end = start + timedelta(days=30 + n // 48)
        return {**fixed, "from": start.isoformat(), "to": end.isoformat()}
    return nth


def as_of(**fixed: str) -> Question:
    """The n-th of many different moments in the simulated year."""
    def nth(n: int) -> dict[str, str]:
        day = date(2017, 1, 15) + timedelta(days=(11 * n) % 340)
        return {**fixed, "as_of": f"{day.isoformat()}T18:00:00+08:00"}
    return nth


def same(**fixed: str) -> Question:
    return lambda _n: dict(fixed)


def views(rep: str) -> dict[str, tuple[str, Question]]:
    """Every GET view of the API: its name in the table, its path, its questions."""
    return {
        "funnel": ("/v1/funnel", window()),
        "breakdown by team": ("/v1/breakdown", window(by="team")),
        "breakdown by month": ("/v1/breakdown", window(by="month")),
        "leads by month": ("/v1/leads", window(by="month")),
        "activities": ("/v1/activities", window()),
        "cycle": ("/v1/cycle", window()),
        "revenue by month": ("/v1/revenue", window(by="month")),
        "customers by month": ("/v1/customers", window(by="month")),
        "customers RFM": ("/v1/customers/rfm", window()),
        "forecast": ("/v1/forecast", as_of()),
        "forecast accuracy": ("/v1/forecast/accuracy", as_of(period="month")),
        "targets": ("/v1/targets", as_of()),
        "leaderboard": ("/v1/leaderboard", window()),
        "rep page": (f"/v1/reps/{rep}", window()),
        "export (CSV)": ("/v1/export/deals", window()),
        "dimensions": ("/v1/dimensions", same()),
        "stalled deals": ("/v1/deals/stalled", same()),
        "customers at risk": ("/v1/customers/at-risk", same()),
        "alerts": ("/v1/alerts", same()),
    }


def _alone(client: httpx.Client, path: str, question: Question, offset: int
           ) -> tuple[list[float], int, bytes]:
    """Latencies (ms) of `SAMPLES` requests one after another, the non-200 count, and the
    last answer's bytes."""
    latencies, errors, body = [], 0, b""
    for n in range(SAMPLES):
        begun = time.perf_counter()
        answer = client.get(path, params=question(offset + n))
        latencies.append((time.perf_counter() - begun) * 1000)
        errors += answer.status_code != 200
        body = answer.content
    return latencies, errors, body


def measure(url: str, headers: dict[str, str], work: Path, offset: int = 0
            ) -> dict[str, float]:
    """`route NAME p50_ms|p99_ms|errors|bytes|ceiling_p50_ms` for every view."""
    with httpx.Client(base_url=url, headers=headers, timeout=None) as client:
        reps = client.get("/v1/dimensions").raise_for_status().json().get("reps") or []
        rep = reps[0]["id"] if reps else "nobody"
        figures: dict[str, float] = {}
        bodies: dict[str, bytes] = {}
        for name, (path, question) in views(rep).items():
            latencies, errors, body = _alone(client, path, question, offset)
            bodies[name] = body
            figures |= {f"route {name} p50_ms": quantile(latencies, 0.5) or 0.0,
                        f"route {name} p99_ms": quantile(latencies, 0.99) or 0.0,
                        f"route {name} errors": float(errors),
                        f"route {name} bytes": float(len(body))}
    for name, body in bodies.items():
        with http_ceiling.serve(body, work) as [(ceiling, _)], \
                httpx.Client(base_url=ceiling, timeout=None) as client:
            latencies, _, _ = _alone(client, "/", same(), 0)
        figures[f"route {name} ceiling_p50_ms"] = quantile(latencies, 0.5) or 0.0
    return figures
