"""What the alerter reads from Redis of a tenant's alert settings, kept from the event store.

- `{prefix}:alerting:{tenant}:routing`: orjson of the routing document, secrets sealed (the
  alerter plans deliveries from it); written with every change, and re-derived from the
  settings log (services/alerter/settings_log.py) when missing: after a restore, a lost Redis;
- `{prefix}:alerting:{tenant}:deliveries:{alert id}`: a list, one JSON entry per delivery
  attempt's outcome `{recipient, channel, kind, at, outcome}` (the alerter's worker appends;
  the history reads);
- `{prefix}:{tenant}:alerts:user`: the acknowledgement and snooze fields the API keeps
  (services/alerter/store.py), refilled from the log where missing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis

from services.alerter.settings_log import AlertActions, AlertRouting


def routing_key(prefix: str, tenant: str) -> str:
    return f"{prefix}:alerting:{tenant}:routing"


async def publish_routing(redis: Redis, prefix: str, tenant: str,
                          document: dict[str, Any]) -> None:
    await redis.set(routing_key(prefix, tenant), orjson.dumps(document))


async def republish_if_stale(redis: Redis, prefix: str, tenant: str,
                             document: dict[str, Any]) -> bool:
    """Write the log's routing to Redis unless Redis holds exactly it (a write lost after the
    log's, a restore, a flush); whether it wrote."""
    wanted = orjson.dumps(document)
    if await redis.get(routing_key(prefix, tenant)) == wanted:
        return False
    await redis.set(routing_key(prefix, tenant), wanted)
    return True


def user_fields(actions: list[dict[str, Any]]) -> dict[str, Any]:
    """The user fields of services/alerter/store.py after these actions, in order (as the API set
    them: the latest acknowledgement, the latest snooze)."""
    fields: dict[str, Any] = {}
    for action in actions:
        if action["kind"] == "acknowledged":
            fields.update(acknowledged_at=action["at"], acknowledged_by=action["by"])
        elif action["kind"] == "snoozed":
            fields.update(snoozed_until=action["until"], snoozed_at=action["at"])
    return fields


async def rederive(redis: Redis, prefix: str,
                   aggregates: list[AlertRouting | AlertActions]) -> int:
    """Write to Redis what the log holds and Redis lacks; how many keys were written. The
    routing is the log's (written there first, it is never older than Redis's); user fields
    only where Redis has none (it may hold an acknowledgement older than the log)."""
    written = 0
    for aggregate in aggregates:
        if isinstance(aggregate, AlertRouting) and aggregate.document is not None:
            written += await republish_if_stale(redis, prefix, aggregate.tenant,
                                                aggregate.document)
        elif isinstance(aggregate, AlertActions) and aggregate.actions:
            written += await redis.hsetnx(f"{prefix}:{aggregate.tenant}:alerts:user",
                                          aggregate.alert_id,
                                          orjson.dumps(user_fields(aggregate.actions)))
    return written


def action(kind: str, by: str | None, via: str, at: datetime, *,
           until: datetime | None = None, link: str | None = None,
           credential: str | None = None) -> dict[str, Any]:
    """An action as the log stores it: `by` as shown (the link's recipient, or the name
    the API caller gave), `credential` the API key id or token subject that acted, `link`
    the one-tap link's nonce (spent)."""
    return {"kind": kind, "by": by, "via": via, "at": at.isoformat(),
            "until": until.isoformat() if until else None, "link": link,
            "credential": credential}
