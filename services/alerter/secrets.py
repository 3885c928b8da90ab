"""Channel secrets sealed with a key kept apart from the data (Fernet: AES-128-CBC with an
HMAC-SHA256 tag), so neither Redis nor a backup of the event store alone reveals them."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from services.settings import Settings


class SecretUnreadable(ValueError):
    """A sealed secret this key did not seal (a different key, or tampered with)."""


def _key(settings: Settings) -> bytes:
    """ALERT_SECRETS_KEY if set (any text: stretched to a Fernet key); else a key made once
    and kept in the data directory, for the embedded stack."""
    if settings.alert_secrets_key:
        digest = hashlib.sha256(settings.alert_secrets_key.encode()).digest()
        return base64.urlsafe_b64encode(digest)
    path = Path(settings.data_dir) / "alert-secrets.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key())
    return path.read_bytes().strip()


class Sealer:
    def __init__(self, settings: Settings) -> None:
        self._fernet = Fernet(_key(settings))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def unseal(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable("a channel secret sealed with another key") from exc


def link_key(settings: Settings) -> bytes:
    """The key one-tap links are signed with (services/alerter/links.py derives its own)."""
    return _key(settings)
