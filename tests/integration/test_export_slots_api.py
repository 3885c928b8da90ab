"""An API process streams at most EXPORTS_AT_ONCE exports: one more is refused with a
503 problem and Retry-After, and a finished export gives its slot back. One API in this
process on the real PostgreSQL and Redis; the export in progress is a slot held through
the process's own `ExportSlots`."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from services.api.app import create_app
from services.api.export_slots import ExportSlots
from services.bootstrap import issue_key
from services.readmodels.store import FactStore
from services.settings import Settings
from tests.conftest import bearer
from tests.history import changes, simulated

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(pg_schema: str, containers: dict[str, str], tmp_path: Path) -> Iterator[Settings]:
    prefix = f"test-exports-{uuid.uuid4().hex[:8]}"
    yield Settings(database_url=pg_schema, redis_url=containers["redis"], redis_prefix=prefix,
                   data_dir=tmp_path, kafka_bootstrap_servers=None, exports_at_once=1)
    redis = Redis.from_url(containers["redis"])
    for key in redis.scan_iter(match=f"{prefix}:*"):
        redis.delete(key)


async def _fold(settings: Settings, events: list[dict[str, object]]) -> None:
    """The read models as the projector leaves them."""
    client = AsyncRedis.from_url(settings.redis_url)
    try:
        store = FactStore(client, settings.redis_prefix)
        await store.apply(changes(events))
        await store.mark_built()
    finally:
        await client.aclose()


def test_an_export_past_the_bound_is_refused_until_one_ends(settings: Settings) -> None:
    events = simulated(days=30)
    asyncio.run(_fold(settings, events))
    deals = {e["data"]["deal_id"] for e in events if e["type"] == "deal.created"}
    admin = bearer(issue_key(settings, "default", "admin"))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        slots: ExportSlots = client.app.state.services.exports  # type: ignore[attr-defined]
        streaming = slots.take()  # another client's export, still being read
        assert streaming is not None

        refused = client.get("/v1/export/deals", headers=admin)
        assert refused.status_code == 503
        assert refused.json()["type"].endswith("/exports-busy")
        assert "1 exports at once" in refused.json()["detail"]
        assert refused.headers["Retry-After"] == "5"

        streaming.give_back()
        for format in ("csv", "json"):
            answered = client.get("/v1/export/deals", params={"format": format}, headers=admin)
            assert answered.status_code == 200, answered.text
            assert slots.held == 0  # read to its end: the slot is back
        exported = csv.DictReader(io.StringIO(client.get("/v1/export/deals", headers=admin).text))
        assert deals and {row["deal_id"] for row in exported} == deals
