"""The API's Redis read timeout is a setting: loading a large tenant's read models (the first
request after a new revision) takes longer than the 5 s default past ~100k deals."""

from __future__ import annotations

from services import bootstrap
from services.settings import Settings


def test_the_redis_read_timeout_defaults_to_5_s_and_follows_the_setting() -> None:
    assert bootstrap.redis(Settings()).connection_pool.connection_kwargs["socket_timeout"] == 5
    slow = bootstrap.redis(Settings(redis_socket_timeout=600))
    assert slow.connection_pool.connection_kwargs["socket_timeout"] == 600
