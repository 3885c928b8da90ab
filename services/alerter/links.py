"""One-tap acknowledge and snooze links: signed, expiring, single-use, per alert and recipient.

A token is `<payload>.<tag>`, both base64url: the payload names tenant, alert, recipient,
action and expiry, plus a nonce; the tag is HMAC-SHA256 over the payload with a key derived
from ALERT_SECRETS_KEY. Checking a token is pure; spending it once is the caller's (the API
records the nonce with the action, so a second use is refused).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import quote

import orjson

from alerts.notify import Links

Action = Literal["acknowledge", "snooze"]
ACTIONS: tuple[Action, ...] = ("acknowledge", "snooze")


class LinkInvalid(ValueError):
    """Not a token this key signed, or one whose time is up."""


@dataclass(frozen=True)
class Grant:
    tenant: str
    alert_id: str
    recipient: str
    action: Action
    expires_at: datetime
    nonce: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    def __init__(self, key: bytes, public_url: str, lifetime: timedelta) -> None:
        # A key of its own, derived, so a link's tag never doubles as a sealed secret's.
        self._key = hmac.new(key, b"salespulse one-tap links", hashlib.sha256).digest()
        self._base = public_url.rstrip("/")
        self._lifetime = lifetime

    def token(self, tenant: str, alert_id: str, recipient: str, action: Action,
              now: datetime) -> str:
        payload = orjson.dumps({"t": tenant, "a": alert_id, "r": recipient, "x": action,
                                "e": int((now + self._lifetime).timestamp()),
                                "n": secrets.token_urlsafe(12)})
        tag = hmac.new(self._key, payload, hashlib.sha256).digest()
        return f"{_b64(payload)}.{_b64(tag)}"

    def check(self, token: str, now: datetime) -> Grant:
        try:
            head, tag = token.split(".")
            payload = _unb64(head)
            good = hmac.compare_digest(hmac.new(self._key, payload, hashlib.sha256).digest(),
                                       _unb64(tag))
            doc = orjson.loads(payload) if good else None
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise LinkInvalid("not a salespulse link") from exc
        if not isinstance(doc, dict) or doc.get("x") not in ACTIONS:
            raise LinkInvalid("not a salespulse link")
        expires = datetime.fromtimestamp(int(doc["e"]), UTC)
        if now >= expires:
            raise LinkInvalid("this link has expired")
        return Grant(str(doc["t"]), str(doc["a"]), str(doc["r"]), doc["x"], expires,
                     str(doc["n"]))

    def links(self, tenant: str, alert_id: str, recipient: str, view_path: str,
              now: datetime) -> Links:
        """The message's links: the subject's dashboard view, and one-tap actions."""
        def act(action: Action) -> str:
            token = self.token(tenant, alert_id, recipient, action, now)
            return f"{self._base}/v1/alerts/act/{quote(token)}"

        return Links(view=f"{self._base}{view_path}", acknowledge=act("acknowledge"),
                     snooze=act("snooze"))
