"""Answers shared between API replicas through Redis.

Each replica keeps its own columns and caches its own answers (`services/api/columns.py`),
so M replicas behind a balancer used to compute every new question M times. An answer is
now also put in Redis under the place in the change stream its columns reflected (the read
models' build and revision) and the question, so a replica at the same place takes it
instead of computing it. Two replicas at one place hold the same records, and the views are
pure functions of records and question: the answer is the same.

Answers are pickled, since they hold `Decimal`s and `datetime`s that JSON would not give
back. Unpickling runs code named by the bytes, so both ways admit only plain data: the
builtin containers and scalars and the few value types below. Anything else (a view's
intermediate part, such as the forecast's stage history) is not shared; bytes naming any
other class are refused, so whoever can write to Redis still cannot run code in the API.

Sharing is an optimisation: a failed Redis call or a refused answer is a miss.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Hashable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.readmodels.store import Changes

log = structlog.get_logger("api.shared_answers")
SHARED = Counter("salespulse_shared_answers_total",
                 "Answers taken from or given to the other API replicas", ["outcome"])
TTL_SECONDS = 300  # an answer of a place left behind is never asked again: let it expire
MOST_BYTES = 2 << 20  # larger answers are cheaper to compute again than to ship around

# Answers write instants with fixed offsets (a `ZoneInfo`'s pickle names a function: an
# answer holding one is not shared).
_VALUE_TYPES = (Decimal, datetime, date, timedelta, timezone)
_ADMITTED = frozenset({("decimal", "Decimal"), ("datetime", "datetime"), ("datetime", "date"),
                       ("datetime", "timedelta"), ("datetime", "timezone")})


class NotShareable(Exception):
    """The answer holds something other than plain data."""


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        # Called for every object but None, bools and exact ints, floats, strs, bytes,
        # lists, tuples, dicts, sets and frozensets; for the classes and functions a value
        # is rebuilt by too.
        if type(obj) not in _VALUE_TYPES and obj not in _VALUE_TYPES:
            raise NotShareable(type(obj).__qualname__)
        return NotImplemented  # pickled the usual way


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ADMITTED:
            raise pickle.UnpicklingError(f"{module}.{name} is not an answer's type")
        return super().find_class(module, name)


def dumps(answer: Any) -> bytes:
    """The answer's bytes; NotShareable if it holds anything but plain data."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(answer)
    return buffer.getvalue()


def loads(raw: bytes) -> Any:
    """An answer back; pickle.UnpicklingError if the bytes name any other class."""
    return _Unpickler(io.BytesIO(raw)).load()


@cache
def code_version() -> str:
    """A digest of the code that computes answers: during a rolling upgrade, replicas of
    different versions never take each other's answers."""
    digest = hashlib.blake2b(digest_size=8)
    root = Path(__file__).resolve().parents[2]
    for package in ("projections", "services/api", "events"):
        for path in sorted((root / package).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


class SharedAnswers:
    def __init__(self, redis: Redis, prefix: str, tz: str,
                 ttl_seconds: int = TTL_SECONDS, most_bytes: int = MOST_BYTES) -> None:
        self.redis, self.prefix, self.tz = redis, prefix, tz
        self.ttl_seconds, self.most_bytes = ttl_seconds, most_bytes

    def key(self, tenant: str, place: Changes, question: Hashable) -> str:
        # A question's repr names all it is made of (strings, dates, filters, windows);
        # one whose repr is not stable across processes is only ever a miss.
        asked = hashlib.blake2b(repr((code_version(), self.tz, question)).encode(),
                                digest_size=16).hexdigest()
        return f"{self.prefix}:{tenant}:answer:{place.build}:{place.revision}:{asked}"

    async def get(self, tenant: str, place: Changes, question: Hashable) -> tuple[bool, Any]:
        """(True, the answer) if another replica gave it at this place, else (False, None)."""
        try:
            raw = await self.redis.get(self.key(tenant, place, question))
        except (RedisError, OSError) as exc:
            SHARED.labels("failed").inc()
            log.debug("shared_answers.get_failed", error=str(exc))
            return False, None
        if raw is None:
            SHARED.labels("miss").inc()
            return False, None
        try:
            if not isinstance(raw, bytes):
                raise TypeError("Redis gave text: its client must not decode responses")
            answer = loads(raw)
        except Exception as exc:  # noqa: BLE001 - damaged or foreign bytes raise any kind
            SHARED.labels("refused").inc()
            log.warning("shared_answers.refused", tenant=tenant, error=repr(exc))
            return False, None
        SHARED.labels("hit").inc()
        return True, answer

    async def put(self, tenant: str, place: Changes, question: Hashable, answer: Any) -> None:
        try:
            raw = dumps(answer)
        except NotShareable:
            SHARED.labels("not_shareable").inc()
            return
        if len(raw) > self.most_bytes:
            SHARED.labels("too_large").inc()
            return
        try:
            await self.redis.set(self.key(tenant, place, question), raw, ex=self.ttl_seconds)
        except (RedisError, OSError) as exc:
            SHARED.labels("failed").inc()
            log.debug("shared_answers.put_failed", error=str(exc))
            return
        SHARED.labels("given").inc()
