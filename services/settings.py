"""Every setting, read once from the environment. With none set, the embedded default runs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from pydantic import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from pydantic_settings import BaseSettings, SettingsConfigDict

from events.vocabulary import DEFAULT_TIMEZONE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    kafka_bootstrap_servers: str | None = None  # None: `salespulse up` spawns Tansu
    redis_url: str = "redis://127.0.0.1:6379/0"
    # The API's first read of a tenant loads all its records: past this, a 500 (BENCHMARKS.md).
    redis_socket_timeout: float = 5.0
    # Connections per process; a request finding none free waits (up to the socket timeout)
    # rather than failing: 200 concurrent requests ran a non-blocking pool dry.
    redis_max_connections: int = 64
    # A view asked without `as_of` answers as of now floored to this many seconds (0: the
    # exact moment): dashboards asking the same question within one step share one
    # computation instead of each asking about its own microsecond (docs/PERFORMANCE.md).
    as_of_step_seconds: NonNegativeFloat = 5.0
    database_url: str | None = None  # None: an SQLite file under data_dir
    data_dir: Path = Path(".salespulse")
    # The API checkpoints each tenant's columns here (None: DATA_DIR/columns) after a whole
    # load, then when this many seconds have passed with changes or this many slots
    # changed; a starting API maps them and follows the change stream from their place.
    columns_checkpoint: bool = True
    columns_checkpoint_dir: Path | None = None
    columns_checkpoint_seconds: PositiveFloat = 300.0
    columns_checkpoint_changes: PositiveInt = 100_000
    # API replicas give each other the answers they compute, in Redis by the change stream
    # place and question (services/api/shared_answers.py): M replicas compute a question
    # once, not M times.
    shared_answers: bool = True
    # Exports one API process streams at once; more answer 503 (services/api/export_slots.py):
    # each holds copies of its deals' columns until read, ~100 MB for 1M deals.
    exports_at_once: PositiveInt = 4
    events_topic: str = "salespulse.events"
    dead_letter_topic: str = "salespulse.events.dlq"
    alerts_topic: str = "salespulse.alerts"
    # Contract events produced by front ends that speak Kafka (`salespulse connectors`),
    # and where it puts the ones refused, with the problem.
    ingest_topic: str = "salespulse.ingest"
    ingest_refused_topic: str = "salespulse.ingest.refused"
    connectors_group: str = "salespulse-connectors"
    # Salesforce CDC topics a Kafka Connect source fills, each with its tenant:
    # `topic=tenant[,topic=tenant]`.
    salesforce_cdc_topics: str = ""
    kafka_partitions: int = 4
    redis_prefix: str = "sp"  # namespaces read models, so tests can share one Redis
    default_tenant: str = "default"
    tenant_timezone: str = DEFAULT_TIMEZONE
    currency: str = "CNY"  # ISO 4217: what amounts are in, for display (GET /v1/settings/display)
    projector_group: str = "salespulse-projector"
    # Processes a rebuild replays the partitions with (services/rebuild.py); 0: one per CPU.
    rebuild_processes: int = 0
    # Shared by the relay (signs each message) and the projector (folds signed messages
    # without checking them against the contract again): services/signing.py. Unset: no
    # signatures, every message checked. `salespulse up` makes one per run.
    events_signing_key: str | None = None
    max_batch_events: int = 10_000
    subject_cache_maxsize: int = 50_000  # subjects the ledger keeps between batches (~2 kB each)
    # Alerts (docs/ALERTS.md): rule defaults, history cut-off, webhook delivery.
    alert_stall_days: float = 21.0
    alert_inactive_days: float = 14.0
    alert_history_grace_seconds: float = 300.0  # fired later than this after: history
    # K alerters share the tenants (alerts/tenancy.py): this one is ALERTER_INDEX of
    # ALERTER_INSTANCES. Each checkpoints its state with its offsets (services/alerter/).
    alerter_instances: PositiveInt = 1
    alerter_index: NonNegativeInt = 0
    alerter_checkpoint: bool = True  # off: every start replays the log from offset zero
    alerter_checkpoint_seconds: PositiveFloat = 30.0
    alerter_checkpoint_events: PositiveInt = 200_000
    webhook_attempts: int = 5
    webhook_backoff_seconds: float = 1.0
    # Seals channel secrets (services/alerter/secrets.py) and signs one-tap links; unset: a
    # key made once in DATA_DIR (embedded). Every process of a deployment needs the same.
    alert_secrets_key: str | None = None
    public_url: str = "http://127.0.0.1:8000"  # where links in messages lead (the dashboard)
    alert_link_hours: PositiveFloat = 72.0  # a one-tap acknowledge or snooze link expires
    metrics_port: int | None = None  # relay, projector, alerter: /metrics here (the API: /metrics)
    metrics_host: str = "0.0.0.0"  # noqa: S104 - containers are scraped from outside
    # A relay, projector partition or alerter behind without moving (or not reporting) for
    # this long makes /healthz answer 503 (services/progress.py).
    progress_stall_seconds: float = 15.0
    # Access (docs/SECURITY.md): API keys live in the event store's database; signed tokens
    # are accepted when a JWT key is configured.
    rate_limit: str = "6000/minute"  # per credential, `limits` syntax; a key may override it
    # Authenticated API keys each API process keeps, trusted only until a revocation is
    # announced (services/access/keycache.py); 0 seconds or 0 keys: the database every time.
    key_cache_seconds: float = 30.0
    key_cache_size: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024  # larger request bodies get 413
    body_read_timeout_seconds: float = 30.0  # for each part of a request body; then 408
    jwt_algorithm: str = "HS256"  # HS256 (jwt_secret) or RS256 (jwt_public_key, PEM)
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    metrics_token: str | None = None  # the API's /metrics wants `Bearer <this>`; unset: 404
    lead_sla_hours: float = 24.0  # first response to a new or reassigned lead (GET /v1/leads)
    # Events for a subject not known yet wait this long, then are dropped (CONTRACT.md)
    hold_days: PositiveFloat = 7.0
    hold_sweep_seconds: PositiveFloat = 600.0  # how often the API drops expired holds
    # Email alerts (docs/ALERTS.md, "Channels"): the SMTP server they go through; unset, an
    # email channel fails its deliveries (not retried) and the other channels carry on.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_from: str = "salespulse@localhost"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True  # upgrade with STARTTLS (port 587); false for a local relay
    smtp_timeout_seconds: float = 30.0

    @property
    def columns_checkpoint_path(self) -> Path | None:
        if not self.columns_checkpoint:
            return None
        return self.columns_checkpoint_dir or self.data_dir / "columns"

    @property
    def hold_for(self) -> timedelta:
        return timedelta(days=self.hold_days)

    def event_store_env(self) -> dict[str, str]:
        """The `eventsourcing` library's own settings, derived from DATABASE_URL."""
        cache = {"SUBJECT_CACHE_MAXSIZE": str(self.subject_cache_maxsize)}
        if not self.database_url or self.database_url.startswith("sqlite"):
            path = (urlparse(self.database_url).path.lstrip("/") if self.database_url
                    else str(self.data_dir / "events.sqlite"))
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path,
                    "SQLITE_LOCK_TIMEOUT": "10", **cache}
        url = urlparse(self.database_url)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_POOL_SIZE": "5",
            # eventsourcing's recorder, each batch sent in binary (services/eventstore/recorder.py)
            "APPLICATION_RECORDER_TOPIC": "services.eventstore.recorder:BinaryBatchRecorder",
            **cache,
        }
        schema = parse_qs(url.query).get("schema")
        if schema:
            env["POSTGRES_SCHEMA"] = schema[0]
        return env
