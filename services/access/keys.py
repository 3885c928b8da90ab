"""API keys: `sp_<id>_<secret>`. Only the secret's SHA-256 is stored. The secret is 256
random bits, so a fast hash is enough: a slow password hash guards low-entropy secrets
against guessing, and these cannot be guessed; it would only slow every request."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "sp"


@dataclass(frozen=True)
class MintedKey:
    id: str
    secret: str

    @property
    def token(self) -> str:
        return f"{PREFIX}_{self.id}_{self.secret}"


def mint() -> MintedKey:
    return MintedKey(secrets.token_hex(8), secrets.token_urlsafe(32))


def parse(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key, else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)
