"""A starting API maps the columns another API checkpointed, follows the change stream from
the checkpoint's place, and answers every route byte for byte as an API that loaded every
record from Redis (docs/PERFORMANCE.md, "Fast start")."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from projections import columnar_views
from projections.columnar import Columns
from projections.snapshot import Filters
from services.api.columns import LOADS, CheckpointPolicy, ColumnStores
from services.broker import free_port
from services.processes import is_healthy, spawn
from services.readmodels import store as readmodel
from services.readmodels.store import FactStore
from services.simulate.scaled import template
from tests.conftest import Stack, _projected, wait_until
from tests.history import simulated
from tests.routes import assert_same_answers

pytestmark = pytest.mark.integration
TZ = "Asia/Shanghai"


def metric(url: str, token: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"},
                     timeout=10).text
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and all(w in line for w in wanted))


def manifest(stack: Stack) -> dict[str, Any] | None:
    path = Path(stack.env["DATA_DIR"]) / "columns" / "default" / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else None


def another_api(stack: Stack, name: str, **env: str) -> str:
    port = free_port()
    stack.processes[name] = spawn(["api", "--port", str(port), "--log-level", "info"],
                                  {**stack.env, **env}, stack.log_dir / f"{name}.log")
    url = f"http://127.0.0.1:{port}"
    wait_until(partial(is_healthy, url), timeout=90, message=f"{name} healthy\n{stack.logs()}")
    return url


def test_an_api_started_from_a_checkpoint_answers_as_one_that_loaded_everything(
        stack: Stack) -> None:
    stack.kill("alerter", signal.SIGTERM)  # not a projection
    events = simulated(seed=5, days=120)
    first = len(events) * 2 // 3
    token = stack.env["METRICS_TOKEN"]
    assert stack.post(events[:first], batch_size=500).accepted == first
    wait_until(partial(_projected, stack, first), timeout=120,
               message=f"the first events to reach the read models\n{stack.logs()}")
    with stack.client() as client:  # a whole load, then the checkpoint
        assert client.get("/v1/funnel").status_code == 200
    saved = wait_until(partial(manifest, stack), timeout=60,
                       message=f"the first API's checkpoint\n{stack.logs()}")
    assert metric(stack.url, token, "salespulse_column_checkpoints_total",
                  outcome="written") == 1

    assert stack.post(events[first:], batch_size=500).accepted == len(events) - first
    wait_until(partial(_projected, stack, len(events)), timeout=120,
               message=f"every event to reach the read models\n{stack.logs()}")

    from_checkpoint = another_api(stack, "api from checkpoint")
    from_redis = another_api(stack, "api from redis", COLUMNS_CHECKPOINT="false")
    with httpx.Client(base_url=from_redis, timeout=120, headers=stack.headers) as reference, \
            httpx.Client(base_url=from_checkpoint, timeout=120, headers=stack.headers) as mapped:
        compared = assert_same_answers(reference, mapped)
    # It mapped the checkpoint, then took only what changed after it: never loaded whole.
    assert metric(from_checkpoint, token, "salespulse_column_loads_total",
                  reason="checkpoint") == 1
    assert sum(metric(from_checkpoint, token, "salespulse_column_loads_total", reason=r)
               for r in ("start", "behind", "rebuilt", "pipeline")) == 0
    assert metric(from_redis, token, "salespulse_column_loads_total", reason="start") == 1
    assert metric(from_redis, token, "salespulse_column_checkpoints_total") == 0
    followed = f"{stack.log_dir / 'api from checkpoint.log'}"
    logged = [json.loads(line) for line in Path(followed).read_text().splitlines()
              if '"columns.from_checkpoint"' in line]
    assert logged and logged[0]["revision"] == saved["place"]["revision"]
    assert logged[0]["behind"] > 0  # events arrived after the checkpoint
    print(f"\n{len(events)} events, {first} before the checkpoint; {compared} answers alike")


async def checkpointed(directory: Path, revision: int) -> None:
    """Until the tenant's checkpoint reflects `revision` (written in the background)."""
    for _ in range(600):
        found = manifest_at(directory)
        if found is not None and found["place"]["revision"] >= revision:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no checkpoint of revision {revision} in {directory}")


def manifest_at(directory: Path) -> dict[str, Any] | None:
    path = directory / "t" / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else None


async def test_a_checkpoint_of_another_build_or_behind_a_trimmed_stream_loads_everything(
        containers: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = Redis.from_url(containers["redis"])
    facts = FactStore(client, f"test-checkpoints-{uuid.uuid4().hex[:8]}")
    policy = CheckpointPolicy(tmp_path)
    changes = template(200, seed=5, tenant="t").changes
    try:
        await facts.mark_built()
        await facts.apply(changes[:1_000])
        await ColumnStores(facts, TZ, policy).answer("t", "funnel", funnel_of)
        revision = (await facts.position("t")).revision  # type: ignore[union-attr]
        await checkpointed(tmp_path, revision)

        await facts.apply(changes[1_000:2_000])  # followed from the checkpoint's place
        before = {r: loads(r) for r in ("checkpoint", "start", "behind", "rebuilt")}
        from_checkpoint = await ColumnStores(facts, TZ, policy).answer("t", "f", funnel_of)
        assert from_checkpoint == await ColumnStores(facts, TZ).answer("t", "f", funnel_of)
        assert loads("checkpoint") == before["checkpoint"] + 1
        assert loads("start") == before["start"] + 1  # the one without checkpoints

        monkeypatch.setattr(readmodel, "CHANGES_KEPT", 1)
        for start in range(2_000, 3_000, 100):
            await facts.apply(changes[start:start + 100])
        await client.xtrim(f"{facts.prefix}:t:changes", maxlen=1)
        behind = loads("behind")
        trimmed = await ColumnStores(facts, TZ, policy).answer("t", "f", funnel_of)
        assert loads("behind") == behind + 1  # mapped, then found the stream trimmed past it
        assert trimmed == await ColumnStores(facts, TZ).answer("t", "f", funnel_of)

        await facts.mark_built()  # what a rebuild leaves: the checkpoint is of another build
        whole = loads("start")
        await ColumnStores(facts, TZ, policy).answer("t", "f", funnel_of)
        assert loads("start") == whole + 1
    finally:
        await facts.clear()
        await client.aclose()


def funnel_of(columns: Columns) -> Any:
    return columnar_views.funnel(columns, Filters())


def loads(reason: str) -> float:
    return LOADS.labels(reason)._value.get()  # noqa: SLF001 - the counter is the evidence
