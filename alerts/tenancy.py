"""Which alerter owns a tenant, when K alerters share the work. Pure.

Every rule reads records of one tenant only (stall thresholds from its won deals, pace
through its reps and targets, churn through its customers' orders), so the tenant is
the unit that keeps each rule's inputs together. A tenant belongs to one of K alerters
by a stable hash of its name: the same on every host and in every run (Python's own
`hash` of a str is salted per process).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def owner_of(tenant: str, instances: int) -> int:
    """The index (0 to `instances` - 1) of the alerter that owns `tenant`."""
    digest = hashlib.blake2b(tenant.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % instances


@dataclass(frozen=True)
class TenantShare:
    """This alerter's share: it is alerter `index` of `instances`."""

    instances: int = 1
    index: int = 0

    def __post_init__(self) -> None:
        if self.instances < 1:
            raise ValueError(f"ALERTER_INSTANCES must be at least 1, not {self.instances}")
        if not 0 <= self.index < self.instances:
            raise ValueError(f"ALERTER_INDEX must be in 0..{self.instances - 1} "
                             f"(ALERTER_INSTANCES={self.instances}), not {self.index}")

    @property
    def whole(self) -> bool:
        return self.instances == 1

    def owns(self, tenant: str) -> bool:
        return self.whole or owner_of(tenant, self.instances) == self.index

    @property
    def unit(self) -> str:
        """Its name on the progress board (`alerter`, or `alerter:<index>` of several)."""
        return "alerter" if self.whole else f"alerter:{self.index}"
