"""Request-scoped dependencies: the services wired at start-up."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from projections.snapshot import Snapshot
from services.alerter.outbox import Outbox
from services.alerter.settings_log import AlertSettingsLog
from services.api.columns import CheckpointPolicy, ColumnStores, hung_up
from services.eventstore.ledger import SalesLedger
from services.readmodels.store import FactStore, NotBuilt
from services.settings import Settings

if TYPE_CHECKING:
    from services.api.auth import Authenticator


class TooLargeForSnapshot(Exception):
    """The tenant has more deals than a view joining every record may hold in memory."""

    def __init__(self, deals: int, limit: int) -> None:
        super().__init__(deals, limit)
        self.deals, self.limit = deals, limit


@dataclass
class Services:
    settings: Settings
    ledger: SalesLedger
    redis: Redis
    facts: FactStore
    auth: Authenticator
    # One writer thread: batches are decided and stored one at a time per process.
    writer: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1))
    _snapshots: dict[str, tuple[tuple[str, int], Snapshot]] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    columns: ColumnStores = field(init=False)
    alert_log: AlertSettingsLog | None = None  # routing and people's actions on alerts
    outbox: Outbox | None = None  # the alerter's deliveries, read for alert history

    def __post_init__(self) -> None:
        # Every view reads columns kept current from the change stream; only the alert
        # listings of a tenant below SNAPSHOT_MAX_DEALS judge a whole Snapshot per change.
        settings = self.settings
        self.columns = ColumnStores(self.facts, settings.tenant_timezone, CheckpointPolicy(
            settings.columns_checkpoint_path, settings.columns_checkpoint_seconds,
            settings.columns_checkpoint_changes))

    async def snapshot(self, tenant: str) -> Snapshot:
        """The tenant's joined facts, rebuilt only when the read models changed. Raises
        NotBuilt while the read models are being rebuilt from the log (never a partial
        answer), TooLargeForSnapshot past SNAPSHOT_MAX_DEALS."""
        async with self._lock:
            version = await self.facts.version(tenant)
            if version is None:
                raise NotBuilt
            cached = self._snapshots.get(tenant)
            if cached and cached[0] == version:
                return cached[1]
            deals = await self.facts.count(tenant, "deal")
            if deals > self.settings.snapshot_max_deals:
                raise TooLargeForSnapshot(deals, self.settings.snapshot_max_deals)
            records = await self.facts.load(tenant)
            if await self.facts.version(tenant) is None:
                raise NotBuilt  # lost while loading
            snapshot = await asyncio.to_thread(Snapshot, records, self.settings.tenant_timezone)
            self._snapshots[tenant] = (version, snapshot)
            return snapshot


async def get_services(request: Request) -> Services:
    # async: FastAPI runs a plain def dependency in a worker thread, a hop per request,
    # and sets the context variable in the request's own task, where the route reads it.
    hung_up.set(request.is_disconnected)
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]
