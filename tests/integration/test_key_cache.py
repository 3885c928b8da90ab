"""The API key cache through real API instances, PostgreSQL and Redis: a cached key costs no
database read, a revocation reaches every instance on its next request, and an outage of
Redis (or of PostgreSQL) never lets a revoked key through."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from typer.testing import CliRunner

from services.access.keystore import KeyRecord, KeyStore
from services.access.revocation import generation_key
from services.api.app import create_app
from services.bootstrap import issue_key
from services.broker import free_port
from services.settings import Settings
from tests.conftest import bearer
from tests.proxy import Proxy

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(pg_schema: str, containers: dict[str, str], tmp_path: Path) -> Iterator[Settings]:
    prefix = f"test-keys-{uuid.uuid4().hex[:8]}"
    yield Settings(database_url=pg_schema, redis_url=containers["redis"], redis_prefix=prefix,
                   data_dir=tmp_path, kafka_bootstrap_servers=None)
    redis = Redis.from_url(containers["redis"])
    for key in redis.scan_iter(match=f"{prefix}:*"):
        redis.delete(key)


def through(proxy: Proxy, url: str) -> str:
    """`url` with its host and port replaced by the proxy's."""
    parsed = urlparse(url)
    return urlunparse(parsed._replace(netloc=parsed.netloc.replace(
        f"{parsed.hostname}:{parsed.port}", f"127.0.0.1:{proxy.port}")))


def proxy_for(url: str, default_port: int) -> Proxy:
    parsed = urlparse(url)
    return Proxy((parsed.hostname or "127.0.0.1", parsed.port or default_port))


@contextmanager
def api(settings: Settings) -> Iterator[TestClient]:
    """One API instance in this process (its own key cache, pools and lifespan)."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@dataclass
class CountingKeys:
    """The real key store (PostgreSQL underneath), counting the reads that authenticate."""

    store: KeyStore
    reads: int = 0

    def authenticate(self, token: str) -> KeyRecord | None:
        self.reads += 1
        return self.store.authenticate(token)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def me(client: TestClient, key: str) -> int:
    return client.get("/v1/me", headers=bearer(key)).status_code


def new_rep_key(client: TestClient, admin: str) -> tuple[str, str]:
    made = client.post("/v1/keys", json={"role": "rep", "rep_id": "R-1"}, headers=bearer(admin))
    assert made.status_code == 201, made.text
    return made.json()["id"], made.json()["key"]


def test_a_cached_key_is_answered_without_reading_the_database(settings: Settings) -> None:
    admin = issue_key(settings, "default", "admin")
    with api(settings) as client:
        counting = CountingKeys(client.app.state.services.auth.keys)  # type: ignore[attr-defined]
        client.app.state.services.auth.keys = counting  # type: ignore[attr-defined]
        assert [me(client, admin) for _ in range(20)] == [200] * 20
        assert counting.reads == 1


def test_a_cached_key_works_while_postgresql_is_unreachable_and_a_new_one_gets_503(
        settings: Settings) -> None:
    proxy = proxy_for(str(settings.database_url), 5432)
    settings = settings.model_copy(update={"database_url": through(proxy,
                                                                   str(settings.database_url))})
    admin, other = issue_key(settings, "default", "admin"), issue_key(settings, "acme", "admin")
    with api(settings) as client:
        assert me(client, admin) == 200
        proxy.cut()
        try:
            assert [me(client, admin) for _ in range(5)] == [200] * 5  # from the cache
            refused = client.get("/v1/me", headers=bearer(other))
            assert refused.status_code == 503, refused.text
            assert refused.json()["type"].endswith("credential-store-unavailable")
        finally:
            proxy.restore()


def test_a_revoked_key_is_refused_at_once_by_another_instance_that_had_it_cached(
        settings: Settings) -> None:
    admin = issue_key(settings, "default", "admin")
    with api(settings) as first, api(settings) as second:
        key_id, rep = new_rep_key(first, admin)
        counting = CountingKeys(second.app.state.services.auth.keys)  # type: ignore[attr-defined]
        second.app.state.services.auth.keys = counting  # type: ignore[attr-defined]
        assert [me(second, rep) for _ in range(3)] == [200] * 3
        assert counting.reads == 1  # cached there
        revoked = first.delete(f"/v1/keys/{key_id}", headers=bearer(admin))
        assert revoked.status_code == 200 and revoked.json()["revoked_at"], revoked.text
        assert me(second, rep) == 401
        assert me(first, rep) == 401
        assert me(second, admin) == 200  # every key is checked again, the others still pass


def test_a_revocation_redis_cannot_announce_is_503_and_the_key_stays_refused(
        settings: Settings) -> None:
    proxy = proxy_for(settings.redis_url, 6379)
    cut_off = settings.model_copy(update={"redis_url": through(proxy, settings.redis_url),
                                          "redis_socket_timeout": 2.0})
    admin = issue_key(settings, "default", "admin")
    redis = Redis.from_url(settings.redis_url)
    with api(cut_off) as first, api(settings) as second:
        key_id, rep = new_rep_key(first, admin)
        assert me(first, rep) == 200 and me(second, rep) == 200  # cached in both
        generation = redis.get(generation_key(settings.redis_prefix))
        proxy.cut()
        try:
            answer = first.delete(f"/v1/keys/{key_id}", headers=bearer(admin))
            assert answer.status_code == 503, answer.text
            problem = answer.json()
            assert problem["type"].endswith("revocation-unannounced")
            assert f"key {key_id} IS revoked in the database" in problem["detail"]
            assert answer.headers["Retry-After"]
            assert me(first, rep) == 401  # no Redis: the database is asked, and says no
        finally:
            proxy.restore()
        assert me(first, rep) == 401  # Redis back, the old generation with it: still no
        assert redis.get(generation_key(settings.redis_prefix)) != generation  # announced late
        assert me(second, rep) == 401  # so the instance that never saw the outage knows too
        listed = second.get("/v1/keys", headers=bearer(admin)).json()["keys"]
        assert next(k for k in listed if k["id"] == key_id)["revoked_at"]


def test_the_keys_command_announces_a_revocation_or_says_it_could_not(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.cli import cli

    admin = issue_key(settings, "default", "admin")
    monkeypatch.setenv("DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("REDIS_PREFIX", settings.redis_prefix)
    with api(settings) as client:
        key_id, rep = new_rep_key(client, admin)
        assert me(client, rep) == 200
        monkeypatch.setenv("REDIS_URL", settings.redis_url)
        done = CliRunner().invoke(cli, ["keys", "revoke", key_id])
        assert done.exit_code == 0, done.output
        assert me(client, rep) == 401  # cached until the announcement

        other_id, other = new_rep_key(client, admin)
        assert me(client, other) == 200
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nobody there
        unannounced = CliRunner().invoke(cli, ["keys", "revoke", other_id])
        assert unannounced.exit_code == 4, unannounced.output
        said = " ".join(unannounced.output.split())
        assert f"key {other_id} IS revoked in the database" in said
        assert "Run this command again once Redis answers" in said
        monkeypatch.setenv("REDIS_URL", settings.redis_url)
        assert CliRunner().invoke(cli, ["keys", "revoke", other_id]).exit_code == 0
        assert me(client, other) == 401
