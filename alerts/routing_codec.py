"""A tenant's `Routing` to and from plain JSON, checked field by field. Pure.

The one form in which routing is stored (as an event's payload) and read back (by the
alerter, by the API). Secrets of channels never travel in clear: `dump` passes each through
`seal` and `load` through `unseal`, both supplied by the caller (the key lives in settings,
not beside the data).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import time
from typing import Any

from alerts.notify import CHANNEL_KINDS, LANGUAGES, Channel, Recipient
from alerts.routing import TARGETS, Escalation, QuietHours, Route, Routing

Seal = Callable[[str], str]


class RoutingInvalid(ValueError):
    """A routing document that cannot be read; `field` names where, as a dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def dump(routing: Routing, seal: Seal) -> dict[str, Any]:
    return {
        "channels": [{"id": c.id, "kind": c.kind, "target": c.target,
                      "secret": seal(c.secret) if c.secret else None,
                      "language": c.language} for c in routing.channels],
        "routes": [{"channel": r.channel, "to": list(r.to), "rules": list(r.rules),
                    "severities": list(r.severities)} for r in routing.routes],
        "escalations": [{"after_minutes": e.after_minutes, "rule": e.rule,
                         "severity": e.severity} for e in routing.escalations],
        "quiet": None if routing.quiet is None else {
            "start": routing.quiet.start.strftime("%H:%M"),
            "end": routing.quiet.end.strftime("%H:%M"),
            "working_days": list(routing.quiet.working_days),
            "let_through": list(routing.quiet.let_through)},
        "daily_cap": routing.daily_cap,
        "key_customers_to_manager": routing.key_customers_to_manager,
        "contacts": {key: {"id": p.id, "name": p.name, "language": p.language,
                           "email": p.email, "mobile": p.mobile}
                     for key, p in sorted(routing.contacts.items())},
    }


def load(doc: Mapping[str, Any], unseal: Seal) -> Routing:
    """The routing `doc` describes; `RoutingInvalid` naming the first field that is wrong.
    Routes must name channels the document declares."""
    channels = tuple(_channel(c, f"channels[{i}]", unseal)
                     for i, c in enumerate(_list(doc, "channels", "")))
    ids = [c.id for c in channels]
    if len(set(ids)) != len(ids):
        raise RoutingInvalid("channels", "channel ids must be unique")
    routes = tuple(_route(r, f"routes[{i}]", set(ids))
                   for i, r in enumerate(_list(doc, "routes", "")))
    escalations = tuple(_escalation(e, f"escalations[{i}]")
                        for i, e in enumerate(_list(doc, "escalations", "")))
    quiet = doc.get("quiet")
    cap = doc.get("daily_cap")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
        raise RoutingInvalid("daily_cap", "a whole number of at least 1, or null")
    to_manager = doc.get("key_customers_to_manager", True)
    if not isinstance(to_manager, bool):
        raise RoutingInvalid("key_customers_to_manager", "true or false")
    contacts = doc.get("contacts") or {}
    if not isinstance(contacts, Mapping):
        raise RoutingInvalid("contacts", "an object of people by id")
    return Routing(channels=channels, routes=routes, escalations=escalations,
                   quiet=None if quiet is None else _quiet(quiet, "quiet"),
                   daily_cap=cap, key_customers_to_manager=to_manager,
                   contacts={str(k): _person(v, f"contacts.{k}") for k, v in contacts.items()})


def _list(doc: Mapping[str, Any], key: str, at: str) -> list[Any]:
    value = doc.get(key) or []
    if not isinstance(value, list):
        raise RoutingInvalid(f"{at}{key}", "a list")
    return value


def _text(doc: Mapping[str, Any], key: str, at: str, *, required: bool = True) -> str | None:
    value = doc.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise RoutingInvalid(f"{at}.{key}", "a non-empty string")
    return value


def _object(value: Any, at: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RoutingInvalid(at, "an object")
    return value


def _channel(value: Any, at: str, unseal: Seal) -> Channel:
    doc = _object(value, at)
    kind = doc.get("kind")
    if kind not in CHANNEL_KINDS:
        raise RoutingInvalid(f"{at}.kind", f"one of {', '.join(CHANNEL_KINDS)}")
    language = doc.get("language")
    if language is not None and language not in LANGUAGES:
        raise RoutingInvalid(f"{at}.language", f"one of {', '.join(LANGUAGES)}")
    sealed = _text(doc, "secret", at, required=False)
    return Channel(id=str(_text(doc, "id", at)), kind=kind,
                   target=_text(doc, "target", at, required=kind != "email") or "",
                   secret=unseal(sealed) if sealed else None, language=language)


def _strings(doc: Mapping[str, Any], key: str, at: str,
             allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    values = _list(doc, key, f"{at}.")
    for value in values:
        if not isinstance(value, str) or (allowed is not None and value not in allowed):
            expected = f"one of {', '.join(allowed)}" if allowed else "strings"
            raise RoutingInvalid(f"{at}.{key}", f"a list of {expected}")
    return tuple(values)


def _route(value: Any, at: str, channels: set[str]) -> Route:
    doc = _object(value, at)
    channel = str(_text(doc, "channel", at))
    if channel not in channels:
        raise RoutingInvalid(f"{at}.channel", f"no channel {channel!r} is declared")
    to = tuple(t for t in TARGETS for chosen in _strings(doc, "to", at, TARGETS) if t == chosen)
    if not to:
        raise RoutingInvalid(f"{at}.to", f"at least one of {', '.join(TARGETS)}")
    return Route(channel=channel, to=to, rules=_strings(doc, "rules", at),
                 severities=_strings(doc, "severities", at))


def _escalation(value: Any, at: str) -> Escalation:
    doc = _object(value, at)
    minutes = doc.get("after_minutes")
    if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes < 1:
        raise RoutingInvalid(f"{at}.after_minutes", "a whole number of at least 1")
    return Escalation(after_minutes=minutes, rule=_text(doc, "rule", at, required=False),
                      severity=_text(doc, "severity", at, required=False))


def _clock(doc: Mapping[str, Any], key: str, at: str, default: time) -> time:
    value = doc.get(key)
    if value is None:
        return default
    try:
        if isinstance(value, str):
            return time.fromisoformat(value)
    except ValueError:
        pass
    raise RoutingInvalid(f"{at}.{key}", "a time of day, HH:MM")


def _quiet(value: Any, at: str) -> QuietHours:
    doc = _object(value, at)
    plain = QuietHours()
    days = doc.get("working_days", list(plain.working_days))
    if not isinstance(days, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in days):
        raise RoutingInvalid(f"{at}.working_days", "a list of weekdays, 0 (Monday) to 6")
    let_through = (_strings(doc, "let_through", at) if "let_through" in doc
                   else plain.let_through)
    return QuietHours(start=_clock(doc, "start", at, plain.start),
                      end=_clock(doc, "end", at, plain.end),
                      working_days=tuple(days), let_through=let_through)


def _person(value: Any, at: str) -> Recipient:
    doc = _object(value, at)
    language = doc.get("language", "en")
    if language not in LANGUAGES:
        raise RoutingInvalid(f"{at}.language", f"one of {', '.join(LANGUAGES)}")
    return Recipient(id=str(_text(doc, "id", at)), name=str(_text(doc, "name", at)),
                     language=language, email=_text(doc, "email", at, required=False),
                     mobile=_text(doc, "mobile", at, required=False))
