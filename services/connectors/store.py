"""Each tenant's connector settings, status and dead letters, in Redis under the prefix.

Keys (`p` the REDIS_PREFIX, `c` the connector):
`p:connector:c:<tenant>:mapping` (JSON), `...:secret` (JSON, never served),
`...:status` (a hash of counts and the last notification's time), `...:dead` (a list,
newest first, at most DEAD_LETTERS_KEPT), and `p:connector:c:account:<id>` /
`p:connector:c:user:<name>` naming the tenant of a CRM account or a basic-auth user.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import Counter as PromCounter
from redis.asyncio import Redis

from services.connectors.intake import OUTCOMES, Result
from services.connectors.mapping import DEFAULTS, ConnectorMapping, MappingError, parse_mapping

DEAD_LETTERS_KEPT = 10_000
NOTIFICATIONS = PromCounter("salespulse_connector_notifications_total",
                            "CRM notifications received by a connector, by outcome",
                            ["connector", "outcome"])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def password_digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


class ConnectorStore:
    def __init__(self, client: Redis, prefix: str) -> None:
        self.redis, self.prefix = client, prefix

    def _key(self, connector: str, tenant: str, what: str) -> str:
        return f"{self.prefix}:connector:{connector}:{tenant}:{what}"

    def _index(self, connector: str, kind: str, name: str) -> str:
        return f"{self.prefix}:connector:{connector}:{kind}:{name}"

    async def mapping(self, connector: str, tenant: str) -> ConnectorMapping:
        raw = await self.redis.get(self._key(connector, tenant, "mapping"))
        return parse_mapping(connector, orjson.loads(raw)) if raw else DEFAULTS[connector]

    async def set_mapping(self, connector: str, tenant: str, raw: dict[str, Any]) -> \
            ConnectorMapping:
        mapping = parse_mapping(connector, raw)  # MappingError before anything is written
        if mapping.account and (await self.tenant_of(connector, "account", mapping.account)
                                not in (None, tenant)):
            raise MappingError("account", "this account is connected to another tenant")
        old = await self.mapping(connector, tenant)
        if old.account and old.account != mapping.account:
            await self.redis.delete(self._index(connector, "account", old.account))
        await self.redis.set(self._key(connector, tenant, "mapping"), orjson.dumps(raw))
        if mapping.account:
            await self.redis.set(self._index(connector, "account", mapping.account), tenant)
        return mapping

    async def tenant_of(self, connector: str, kind: str, name: str) -> str | None:
        value = await self.redis.get(self._index(connector, kind, name))
        return _text(value) if value is not None else None

    async def secret(self, connector: str, tenant: str) -> dict[str, str] | None:
        raw = await self.redis.get(self._key(connector, tenant, "secret"))
        return orjson.loads(raw) if raw else None

    async def set_secret(self, connector: str, tenant: str, secret: dict[str, str]) -> None:
        old = await self.secret(connector, tenant)
        if old and old.get("username"):
            await self.redis.delete(self._index(connector, "user", old["username"]))
        if "password" in secret:  # compared, never needed back
            secret = {**secret, "password": password_digest(secret["password"])}
        await self.redis.set(self._key(connector, tenant, "secret"), orjson.dumps(secret))
        if secret.get("username"):
            await self.redis.set(self._index(connector, "user", secret["username"]), tenant)

    @staticmethod
    def password_matches(secret: dict[str, str], password: str) -> bool:
        return hmac.compare_digest(secret.get("password", ""), password_digest(password))

    async def note(self, connector: str, tenant: str, results: list[Result],
                   payloads: list[Any], at: datetime | None = None) -> None:
        """Count the results (status and Prometheus) and keep the dead letters."""
        counts = Counter(r.outcome for r in results)
        at = at or datetime.now(UTC)
        status = self._key(connector, tenant, "status")
        async with self.redis.pipeline(transaction=True) as pipe:
            for outcome, n in counts.items():
                pipe.hincrby(status, outcome, n)
            pipe.hset(status, "last_notification_at", at.isoformat())
            dead = [orjson.dumps({"received_at": at.isoformat(), "key": r.key,
                                  "reason": r.reason, "payload": payload})
                    for r, payload in zip(results, payloads, strict=True)
                    if r.outcome == "dead_lettered"]
            if dead:
                pipe.lpush(self._key(connector, tenant, "dead"), *dead)
                pipe.ltrim(self._key(connector, tenant, "dead"), 0, DEAD_LETTERS_KEPT - 1)
            await pipe.execute()
        for outcome, n in counts.items():
            NOTIFICATIONS.labels(connector, outcome).inc(n)

    async def status(self, connector: str, tenant: str) -> dict[str, Any]:
        raw = {_text(k): _text(v) for k, v in
               (await self.redis.hgetall(self._key(connector, tenant, "status"))).items()}
        out: dict[str, Any] = {"connector": connector,
                               "last_notification_at": raw.get("last_notification_at")}
        out.update({o: int(raw.get(o, 0)) for o in OUTCOMES})
        # Salesforce CDC arrives over Kafka and takes no credentials.
        out["credentials_set"] = None if connector == "salesforce" else \
            await self.secret(connector, tenant) is not None
        return out

    async def dead_letters(self, connector: str, tenant: str, limit: int,
                           offset: int = 0) -> tuple[int, list[Any]]:
        key = self._key(connector, tenant, "dead")
        total = await self.redis.llen(key)
        items = await self.redis.lrange(key, offset, offset + limit - 1)
        return int(total), [orjson.loads(i) for i in items]
