"""Alerts in Redis: the alerter writes, the API reads, acknowledges and snoozes.

Layout under `{prefix}:{tenant}:`
- `alerts` hash: alert id -> the alert as the alerter last wrote it (only the alerter writes);
- `alerts:user` hash: alert id -> acknowledgement and snooze (only the API writes), so the
  two writers never race on one value;
- `alerts:stream` stream: every transition in order (SSE reads it with XREAD BLOCK);
- `alerts:delivered` set: transition ids already delivered, so a replay or restart that
  recomputes the same transitions delivers none of them twice;
- `webhooks`: the tenant's webhook endpoints (JSON list); `webhooks:dead`: failed deliveries.

Webhook configuration lives here rather than in the event log: it holds a signing
secret, which must be replaceable and erasable, and it is an operational setting, not
a business fact anyone reports on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis

from alerts.lifecycle import Transition
from alerts.rules import RuleSettings

STREAM_MAXLEN = 100_000


def rule_settings(settings: Any) -> RuleSettings:
    """A tenant's rule thresholds from the service settings (per stage: the pipeline)."""
    return RuleSettings(stall_days=settings.alert_stall_days,
                        inactive_days=settings.alert_inactive_days,
                        lead_sla_hours=settings.lead_sla_hours, tz=settings.tenant_timezone)


class AlertStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis, self.prefix = redis, prefix

    def key(self, tenant: str, name: str) -> str:
        return f"{self.prefix}:{tenant}:{name}"

    async def record(self, transitions: list[tuple[Transition, dict[str, Any]]]
                     ) -> list[tuple[Transition, dict[str, Any]]]:
        """Store transitions not delivered before (with their delivery fields); returns them."""
        if not transitions:
            return []
        check = self.redis.pipeline(transaction=False)
        for transition, _ in transitions:
            check.sismember(self.key(transition.alert.tenant, "alerts:delivered"), transition.id)
        seen = await check.execute()
        fresh = [t for t, done in zip(transitions, seen, strict=True) if not done]
        if not fresh:
            return []
        write = self.redis.pipeline(transaction=True)
        for transition, extra in fresh:
            tenant = transition.alert.tenant
            body = {**transition.as_json(), **extra}
            alert = {**body["alert"], **extra}
            write.sadd(self.key(tenant, "alerts:delivered"), transition.id)
            write.hset(self.key(tenant, "alerts"), transition.alert.id, orjson.dumps(alert))
            write.xadd(self.key(tenant, "alerts:stream"), {"data": orjson.dumps(body)},
                       maxlen=STREAM_MAXLEN, approximate=True)
        await write.execute()
        return fresh

    async def append_user_transition(self, tenant: str, alert: dict[str, Any],
                                     user: dict[str, Any], transition: dict[str, Any]) -> None:
        write = self.redis.pipeline(transaction=True)
        write.hset(self.key(tenant, "alerts:user"), alert["id"], orjson.dumps(user))
        write.xadd(self.key(tenant, "alerts:stream"),
                   {"data": orjson.dumps({**transition, "alert": {**alert, **user}})},
                   maxlen=STREAM_MAXLEN, approximate=True)
        await write.execute()

    async def alerts(self, tenant: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Every alert with its user fields."""
        read = self.redis.pipeline(transaction=True)
        read.hgetall(self.key(tenant, "alerts"))
        read.hgetall(self.key(tenant, "alerts:user"))
        stored, users = await read.execute()
        user = {k.decode(): orjson.loads(v) for k, v in users.items()}
        return [(orjson.loads(v), user.get(k.decode(), {})) for k, v in stored.items()]

    async def alert(self, tenant: str, alert_id: str
                    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        raw = await self.redis.hget(self.key(tenant, "alerts"), alert_id)
        if raw is None:
            return None
        user = await self.redis.hget(self.key(tenant, "alerts:user"), alert_id)
        return orjson.loads(raw), orjson.loads(user) if user else {}

    async def read_stream(self, tenant: str, after: str, block_ms: int
                          ) -> list[tuple[str, dict[str, Any]]]:
        answer: Any = await self.redis.xread({self.key(tenant, "alerts:stream"): after},
                                        count=500, block=block_ms)
        out = []
        for _stream, entries in answer or ():
            for entry_id, fields in entries:
                eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                out.append((eid, orjson.loads(fields[b"data"])))
        return out

    async def last_stream_id(self, tenant: str) -> str:
        entries = await self.redis.xrevrange(self.key(tenant, "alerts:stream"), count=1)
        if not entries:
            return "0-0"
        entry_id = entries[0][0]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def webhooks(self, tenant: str) -> list[dict[str, str]]:
        raw = await self.redis.get(self.key(tenant, "webhooks"))
        return orjson.loads(raw) if raw else []

    async def set_webhooks(self, tenant: str, endpoints: list[dict[str, str]]) -> None:
        await self.redis.set(self.key(tenant, "webhooks"), orjson.dumps(endpoints))

    async def dead_letter(self, tenant: str, entry: dict[str, Any]) -> None:
        await self.redis.rpush(self.key(tenant, "webhooks:dead"), orjson.dumps(entry))

    async def dead_letters(self, tenant: str) -> list[dict[str, Any]]:
        return [orjson.loads(v) for v in
                await self.redis.lrange(self.key(tenant, "webhooks:dead"), 0, -1)]


def effective_fields(alert: dict[str, Any], user: dict[str, Any], now: datetime
                     ) -> dict[str, Any]:
    from alerts.lifecycle import effective_state

    return {**alert, **user, "state": effective_state(alert, user, now)}
