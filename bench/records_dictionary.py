"""Train the read models' zstd dictionary from simulated years:
`python -m bench.records_dictionary services/readmodels/records-N.zdict` (then list the
new file last in `services/readmodels/codec.py`; never remove an older one)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.readmodels.codec import train
from services.simulate.world import simulate
from tests.history import fold

START = datetime(2017, 1, 1, tzinfo=UTC)


def main(out: Path) -> None:
    samples: list[object] = []
    for seed in (3, 5, 8):
        records = fold(list(simulate(seed, START, START + timedelta(days=365))))
        samples.extend(r for kind in records.values() for r in kind.values())
    out.write_bytes(train(samples))
    print(f"{out}: a dictionary from {len(samples):,} records")  # noqa: T201


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
