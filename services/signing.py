"""Relayed messages signed by the relay: proof that an event came from the event store.

The ledger checks every event against the contract before storing it, so a message the
relay signed needs no second check on the read side. Anything else on the topic (unsigned,
signed with another key, or altered on the way) is checked in full and dead-lettered if it
fails. The signature is a keyed BLAKE2b of the message's value, in a header: far cheaper to
verify than the contract check it replaces (docs/PERFORMANCE.md, "Projection").
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from services.settings import Settings

HEADER = "salespulse-signature"
_compare_digest = hmac.compare_digest
Headers = Sequence[tuple[str, bytes]]


class Signer:
    """Signs and verifies message values with a secret shared by the relay and its readers."""

    def __init__(self, secret: str) -> None:
        key = hashlib.sha256(secret.encode()).digest()  # any length in, 32 bytes out
        # The key is BLAKE2b's first block: hashed once here, its state copied per message.
        self._keyed = hashlib.blake2b(key=key, digest_size=16)

    def sign(self, value: bytes) -> bytes:
        state = self._keyed.copy()
        state.update(value)
        return state.digest()

    def headers(self, value: bytes) -> list[tuple[str, bytes]]:
        return [(HEADER, self.sign(value))]

    def signed(self, value: bytes, headers: Headers | None) -> bool:
        """True when `headers` carry this key's signature of exactly `value`."""
        for name, signature in headers or ():
            if name == HEADER:  # a header may carry anything, None included: never raise
                if not isinstance(signature, bytes):
                    return False
                state = self._keyed.copy()  # `sign`, written out: once per message read
                state.update(value)
                return _compare_digest(signature, state.digest())
        return False


def signer(settings: Settings) -> Signer | None:
    """The deployment's signer; None when no key is set (every message is then checked)."""
    key = settings.events_signing_key
    return Signer(key) if key else None
