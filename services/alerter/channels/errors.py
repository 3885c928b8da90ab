"""How a channel sender fails: a reason, and whether trying again later may succeed."""

from __future__ import annotations


class DeliveryError(Exception):
    """The channel did not take the message. `retryable`: a rate limit, a server error, the
    network (the outbox tries again later); not retryable: a bad signature, a refused
    keyword, an unknown robot, a malformed payload (trying again cannot help)."""

    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable

    def __repr__(self) -> str:
        return f"DeliveryError({self.reason!r}, retryable={self.retryable})"
