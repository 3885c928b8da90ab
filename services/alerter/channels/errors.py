"""How a channel sender fails: a reason, and whether trying again later may succeed."""

from __future__ import annotations


class DeliveryError(Exception):
    """The channel did not take the message. `retryable`: a rate limit, a server error, the
    network (the outbox tries again later); not retryable: a bad signature, a refused
    keyword, an unknown robot, a malformed payload (trying again cannot help).
    `retry_after`: seconds the vendor asked to wait (HTTP `Retry-After`), when it said."""

    def __init__(self, reason: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"DeliveryError({self.reason!r}, retryable={self.retryable})"
