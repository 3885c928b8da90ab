"""Child processes of `up` and `bench`: each salespulse service as its own process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx


def spawn(args: list[str], env: dict[str, str], log: Path,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start `salespulse ARGS…` in its own session (so a signal reaches its children too).
    `cwd`: the checkout to run it from (`-m` imports from there before anything else)."""
    handle = open(log, "ab")  # noqa: SIM115 - the child keeps it for its lifetime
    return subprocess.Popen([sys.executable, "-m", "services.cli", *args], env=env, cwd=cwd,
                            stdout=handle, stderr=handle, start_new_session=True)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used (utime, stime of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def is_healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Poll `url`'s /healthz until it answers 200; False if `process` exits or `timeout`
    seconds pass first."""
    deadline = time.monotonic() + timeout
    while not is_healthy(url):
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
