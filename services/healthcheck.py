"""A container health check for a background process: `python -m services.healthcheck relay`.

The relay, projector and alerter serve no health endpoint of their own; they report their
progress to Redis, and the API's `/healthz` judges every unit (the relay, each projector
partition, the alerter: `ok`, `stalled` or `silent`). This asks it, and exits 0 when every
unit of the named process is `ok`, 1 otherwise (one that is stuck fails, so `docker compose
ps` shows it unhealthy), or when the API cannot be asked. `HEALTHCHECK_URL`: the API
(default `http://api:8000`, as in docker-compose.yml)."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any


def judge(answer: dict[str, Any], process: str) -> tuple[bool, str]:
    """Whether `process`'s units are `ok` in a `/healthz` answer, and what to say."""
    units = {name: unit for name, unit in (answer.get("progress") or {}).items()
             if name == process or name.startswith(f"{process}:")}
    stuck = [f"{name} {unit.get('state')}" for name, unit in sorted(units.items())
             if unit.get("state") != "ok"]
    if stuck:
        return False, f"{process}: {', '.join(stuck)}"
    if not units:  # starting, or an API that reports no progress: nothing says stuck
        return True, f"{process}: no progress reported"
    return True, f"{process}: {len(units)} unit(s) ok"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m services.healthcheck relay|projector|alerter",  # noqa: T201
              file=sys.stderr)
        return 2
    url = os.environ.get("HEALTHCHECK_URL", "http://api:8000").rstrip("/") + "/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own URL
            answer = json.load(response)
    except urllib.error.HTTPError as exc:  # 503: degraded, the body still says which unit
        answer = json.load(exc)
    except (OSError, ValueError) as exc:
        print(f"cannot ask {url}: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    healthy, said = judge(answer, argv[0])
    print(said)  # noqa: T201 - docker keeps it in the container's health log
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
