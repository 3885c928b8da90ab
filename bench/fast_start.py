"""`python -m bench.fast_start`: API start to first answer, with and without a column
checkpoint (docs/PERFORMANCE.md, "Fast start"). Measured, never asserted.

It folds `--deals` deals' read models into a fresh Redis prefix (`services/simulate/
scaled.py`), then times, from spawning `salespulse api` to its first `GET /v1/funnel`
answer: an API that loads every record from Redis (checkpoints off); an API that does
the same and then writes its checkpoint (how long until the manifest appears); and an
API started from that checkpoint. Each one's resident memory after the answer is
reported beside it (mapped pages count as resident once touched).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from redis.asyncio import Redis
from rich.console import Console

from bench.pipeline import throwaway_schema
from bench.projector import forget_prefix
from bench.query import LOAD_TIMEOUT_S, UNLIMITED
from bench.replicas import Api
from services.bootstrap import issue_key
from services.readmodels.store import FactStore
from services.settings import Settings
from services.simulate.scaled import build

console = Console()


def _first_answer(env: dict[str, str], log: Path, headers: dict[str, str]
                  ) -> tuple[float, float, bytes, Api]:
    """Seconds from spawning an API to its first funnel answer, its RSS then, the answer."""
    begun = time.perf_counter()
    api = Api(env, log)
    healthy = time.perf_counter() - begun  # the process itself: imports, the app, /healthz
    with httpx.Client(base_url=api.url, headers=headers, timeout=None) as client:
        body = client.get("/v1/funnel").raise_for_status().content
    seconds = time.perf_counter() - begun
    console.print(f"{log.stem}: healthy after {healthy:.2f} s, first answer after "
                  f"{seconds:.2f} s")
    return seconds, api.memory()["VmRSS"], body, api


def _redis(env: dict[str, str]) -> Redis:
    return Redis.from_url(env.get("REDIS_URL", Settings().redis_url),
                          socket_timeout=float(LOAD_TIMEOUT_S))


async def _build(env: dict[str, str], prefix: str, deals: int, seed: int) -> int:
    redis = _redis(env)
    try:
        return (await build(FactStore(redis, prefix), deals, seed=seed)).events
    finally:
        await redis.aclose()


async def _forget(env: dict[str, str], prefix: str) -> None:
    redis = _redis(env)
    await forget_prefix(redis, prefix)
    await redis.aclose()


def run(deals: int, seed: int = 7) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="salespulse-bench-fast-start-"))
    prefix = f"benchfs-{uuid.uuid4().hex[:8]}"
    checkpoints = work / "columns"
    figures: dict[str, Any] = {"deals": deals}
    with throwaway_schema("benchfs", "bench-fast-start") as schema:
        env = {**os.environ, "DATABASE_URL": schema.database_url, "DATA_DIR": str(work),
               "RATE_LIMIT": UNLIMITED, "REDIS_SOCKET_TIMEOUT": LOAD_TIMEOUT_S,
               "REDIS_PREFIX": prefix, "COLUMNS_CHECKPOINT_DIR": str(checkpoints)}
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        key = issue_key(Settings(database_url=schema.database_url, data_dir=work), "default",
                        "admin", name="bench-fast-start")
        headers = {"Authorization": f"Bearer {key}"}
        try:
            console.print(f"{deals:,} deals: building the read models")
            figures["events"] = asyncio.run(_build(env, prefix, deals, seed))
            seconds, rss, plain, api = _first_answer({**env, "COLUMNS_CHECKPOINT": "false"},
                                                     work / "api-redis.log", headers)
            api.stop()
            figures.update(from_redis_s=seconds, from_redis_rss_mb=rss)
            begun = time.perf_counter()
            _, _, _, api = _first_answer(env, work / "api-writer.log", headers)
            manifest = checkpoints / "default" / "manifest.json"
            while not manifest.exists():
                time.sleep(0.05)
            figures["load_and_checkpoint_s"] = time.perf_counter() - begun
            api.stop()
            figures["checkpoint_mb"] = sum(p.stat().st_size for p in
                                           manifest.parent.iterdir()) / 1e6
            seconds, rss, mapped, api = _first_answer(env, work / "api-mapped.log", headers)
            api.stop()
            figures.update(from_checkpoint_s=seconds, from_checkpoint_rss_mb=rss,
                           same_answer=plain == mapped)
        finally:
            asyncio.run(_forget(env, prefix))
    for name, value in figures.items():
        console.print(f"{name}: {value:,.2f}" if isinstance(value, float) else
                      f"{name}: {value}")
    return figures


def main(deals: Annotated[int, typer.Option(help="deals to build")] = 100_000,
         json_path: Annotated[Path | None, typer.Option("--json")] = None) -> None:
    figures = run(deals)
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    typer.run(main)
