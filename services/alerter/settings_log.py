"""Alert settings and people's actions on alerts, as events in the event store.

A tenant's routing (`AlertRouting`: the whole document each time, secrets sealed) and what
people did to each alert (`AlertActions`: acknowledged or snoozed, who, when, through which
path, and the one-tap link spent) are event-sourced aggregates of their own application,
`AlertSettingsLog`, in the same database as the sales ledger but in a table of its own
(`alertsettings_events`; on SQLite a file beside the ledger's, as the library names every
SQLite table alike). Not relayed: nothing downstream of Kafka reads them, so the public
contract and the projections are untouched; a backup carries them as the section
`alert_settings` (services/backup/sections.py). Docs: docs/ALERTS.md, "Settings and actions".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

from services.eventstore.ledger import SalesLedger
from services.settings import Settings

_NAMESPACE = uuid5(NAMESPACE_URL, "https://salespulse.dev/alert-settings")
Via = Literal["api", "link"]
T = TypeVar("T")


class LinkSpent(Exception):
    """A one-tap link used before: it acts once."""


class AlertRouting(Aggregate):
    """A tenant's routing: the document as last set (secrets sealed), and who set it when."""

    @staticmethod
    def create_id(tenant: str) -> UUID:
        return uuid5(_NAMESPACE, f"routing\x1f{tenant}")

    @event("Created")
    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.document: dict[str, Any] | None = None
        self.set_by: str | None = None
        self.set_at: str | None = None

    @event("RoutingSet")
    def set(self, document: dict[str, Any], by: str, at: str) -> None:
        self.document, self.set_by, self.set_at = document, by, at


class AlertActions(Aggregate):
    """What people did to one alert, in order, and the one-tap links spent on it."""

    @staticmethod
    def create_id(tenant: str, alert_id: str) -> UUID:
        return uuid5(_NAMESPACE, f"actions\x1f{tenant}\x1f{alert_id}")

    @event("Created")
    def __init__(self, tenant: str, alert_id: str) -> None:
        self.tenant, self.alert_id = tenant, alert_id
        self.actions: list[dict[str, Any]] = []
        self.spent: set[str] = set()

    @event("Acted")
    def act(self, action: dict[str, Any]) -> None:
        self.actions.append(action)
        if action.get("link"):
            self.spent.add(action["link"])


class AlertSettingsLog(Application):
    name = "alertsettings"
    # The ledger's transcoder, named by the ledger (it moves with it).
    env = {"TRANSCODER_TOPIC": SalesLedger.env["TRANSCODER_TOPIC"]}

    def set_routing(self, tenant: str, document: dict[str, Any], by: str, at: datetime) -> None:
        def change() -> list[Aggregate]:
            routing = self._get(AlertRouting.create_id(tenant)) or AlertRouting(tenant)
            routing.set(document, by, at.isoformat())
            return [routing]

        self._save(change)

    def routing(self, tenant: str) -> AlertRouting | None:
        return self._get(AlertRouting.create_id(tenant))  # type: ignore[return-value]

    def act(self, tenant: str, alert_id: str, action: dict[str, Any]) -> None:
        """Record `action` (`kind`, `by`, `via`, `at`, maybe `until` and the `link` nonce);
        `LinkSpent` if its link acted before."""
        def change() -> list[Aggregate]:
            actions = self.actions(tenant, alert_id) or AlertActions(tenant, alert_id)
            if action.get("link") in actions.spent:
                raise LinkSpent(action["link"])
            actions.act(dict(action))
            return [actions]

        self._save(change)

    def actions(self, tenant: str, alert_id: str) -> AlertActions | None:
        return self._get(AlertActions.create_id(tenant, alert_id))  # type: ignore[return-value]

    def link_spent(self, tenant: str, alert_id: str, nonce: str) -> bool:
        actions = self.actions(tenant, alert_id)
        return actions is not None and nonce in actions.spent

    def everything(self, *, routing_only: bool = False
                   ) -> Iterator[AlertRouting | AlertActions]:
        """Every aggregate of the log (or every tenant's routing), as it stands, for
        re-deriving Redis after a restore or a lost Redis: found through the notification
        log, a small table (an event's topic names its aggregate's class)."""
        seen: set[UUID | str] = set()
        for notification in self.recorder.select_notifications(None, 100_000_000):
            if routing_only and f":{AlertRouting.__qualname__}." not in notification.topic:
                continue
            if notification.originator_id not in seen:
                seen.add(notification.originator_id)
                found = self._get(UUID(str(notification.originator_id)))
                if found is not None:
                    yield found

    def _get(self, aggregate_id: UUID) -> Any:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def _save(self, change: Callable[[], list[Aggregate]]) -> None:
        # Another API process may have written the same aggregate: decide again on its news.
        for _attempt in range(5):
            try:
                self.save(*change())
                return
            except IntegrityError:
                continue
        raise IntegrityError("alert settings: concurrent writers kept conflicting")


def log_env(settings: Settings) -> Mapping[str, str]:
    """The ledger's store settings, with a table (or SQLite file) and a small pool of its own:
    settings are written a few times a day."""
    env = dict(settings.event_store_env())
    env.pop("SUBJECT_CACHE_MAXSIZE", None)
    if env["PERSISTENCE_MODULE"].endswith("sqlite"):
        ledger_file = Path(env["SQLITE_DBNAME"])
        env["SQLITE_DBNAME"] = str(ledger_file.with_name(f"{ledger_file.stem}-alertsettings"
                                                         f"{ledger_file.suffix}"))
    else:
        env.update({"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "2"})
    return env


def open_log(settings: Settings) -> AlertSettingsLog:
    return AlertSettingsLog(env=log_env(settings))
