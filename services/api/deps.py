"""Request-scoped dependencies: the services wired at start-up."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from services.alerter.outbox import Outbox
from services.alerter.settings_log import AlertSettingsLog
from services.api.columns import CheckpointPolicy, ColumnStores, hung_up
from services.api.export_slots import ExportSlots
from services.api.shared_answers import SharedAnswers
from services.eventstore.ledger import SalesLedger
from services.readmodels.store import FactStore
from services.settings import Settings

if TYPE_CHECKING:
    from services.api.auth import Authenticator


@dataclass
class Services:
    settings: Settings
    ledger: SalesLedger
    redis: Redis
    facts: FactStore
    auth: Authenticator
    # One writer thread: batches are decided and stored one at a time per process.
    writer: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1))
    columns: ColumnStores = field(init=False)
    exports: ExportSlots = field(init=False)
    alert_log: AlertSettingsLog | None = None  # routing and people's actions on alerts
    outbox: Outbox | None = None  # the alerter's deliveries, read for alert history

    def __post_init__(self) -> None:
        # Every view reads columns kept current from the change stream (the alert listings
        # read the alerter's alerts).
        settings = self.settings
        shared = (SharedAnswers(self.facts.redis, self.facts.prefix, settings.tenant_timezone)
                  if settings.shared_answers else None)
        self.columns = ColumnStores(self.facts, settings.tenant_timezone, CheckpointPolicy(
            settings.columns_checkpoint_path, settings.columns_checkpoint_seconds,
            settings.columns_checkpoint_changes), shared)
        self.exports = ExportSlots(settings.exports_at_once)


async def get_services(request: Request) -> Services:
    # async: FastAPI runs a plain def dependency in a worker thread, a hop per request,
    # and sets the context variable in the request's own task, where the route reads it.
    hung_up.set(request.is_disconnected)
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]
