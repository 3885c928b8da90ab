"""Train a zstd dictionary for the read models' records from simulated years:
`python -m bench.records_dictionary services/readmodels/records-N.zdict` from every kind's
records, or `... services/readmodels/deal-N.zdict deal` from one kind's (then list the new
file last in `services/readmodels/codec.py`; never remove an older one)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.readmodels.codec import train
from services.simulate.world import simulate
from tests.history import fold

START = datetime(2017, 1, 1, tzinfo=UTC)


def main(out: Path, kind: str | None = None) -> None:
    samples: list[object] = []
    for seed in (3, 5, 8):
        records = fold(list(simulate(seed, START, START + timedelta(days=365))))
        samples.extend(r for name, by_key in records.items() if kind in (None, name)
                       for r in by_key.values())
    out.write_bytes(train(samples))
    print(f"{out}: a dictionary from {len(samples):,} records")  # noqa: T201


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(Path(sys.argv[1]), *sys.argv[2:])
