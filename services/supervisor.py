"""`salespulse up` keeps its children alive: a child that exits is started again after a
backoff, and the restart is logged (JSON lines) and counted; one that keeps crashing is
given up on, said plainly, and `up` stops with exit code 5 (docs/FAULTS.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from services.processes import spawn

Spawn = Callable[[list[str], dict[str, str], Path], "subprocess.Popen[bytes]"]


@dataclass(frozen=True)
class Child:
    name: str
    args: list[str]
    restart_args: list[str] | None = None  # a restart's, when they differ (relay: resume)


@dataclass
class RestartPolicy:
    """Backoff doubling from `first_delay` up to `max_delay` with each exit counted in the
    last `within` seconds; the `crashes`-th exit within them gives up. Pure: times passed in."""

    first_delay: float = 0.5
    max_delay: float = 10.0
    crashes: int = 5
    within: float = 60.0
    _exits: deque[float] = field(default_factory=deque)

    def exited(self, now: float) -> float | None:
        """The delay before starting the child again, or None: it keeps crashing."""
        self._exits.append(now)
        while self._exits and self._exits[0] <= now - self.within:
            self._exits.popleft()
        if len(self._exits) >= self.crashes:
            return None
        return min(self.first_delay * 2 ** (len(self._exits) - 1), self.max_delay)

    @property
    def recent(self) -> int:
        return len(self._exits)


@dataclass(frozen=True)
class CrashLoop:
    """A child given up on."""

    name: str
    exits: int
    within: float
    code: int | None
    log: Path

    def __str__(self) -> str:
        return (f"{self.name} exited {self.exits} times within {self.within:g} s (last exit "
                f"{_describe(self.code)}); not starting it again. Its log: {self.log}")


def _describe(code: int | None) -> str:
    if code is not None and code < 0:
        return f"by signal {signal.Signals(-code).name}"
    return f"code {code}"


class Supervisor:
    """Starts `children` and watches them from a thread until `stop()`."""

    def __init__(self, children: list[Child], env: dict[str, str], log_dir: Path, *,
                 policy: Callable[[], RestartPolicy] = RestartPolicy,
                 say: Callable[[str], None] = lambda _line: None,
                 gave_up: Callable[[CrashLoop], None] = lambda _loop: None,
                 start: Spawn = spawn, poll_seconds: float = 0.2) -> None:
        self.children = {c.name: c for c in children}
        self.env, self.log_dir = env, log_dir
        self.say, self.gave_up, self._spawn = say, gave_up, start
        self.poll_seconds = poll_seconds
        self.policies = {c.name: policy() for c in children}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: Counter[str] = Counter()
        self.failed: CrashLoop | None = None
        self._due: dict[str, float] = {}  # child -> when to start it again
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._journal = log_dir / "supervisor.log"

    def start(self) -> Supervisor:
        for child in self.children.values():
            self.processes[child.name] = self._spawn(child.args, self.env, self._log(child))
        self._thread.start()
        return self

    def _log(self, child: Child) -> Path:
        return self.log_dir / f"{child.name}.log"

    def _record(self, event: str, **fields: Any) -> None:
        line = {"at": datetime.now(UTC).isoformat(), "event": event, **fields}
        with self._journal.open("ab") as journal:
            journal.write(orjson.dumps(line) + b"\n")

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll_seconds):
            now = time.monotonic()
            for name, process in list(self.processes.items()):
                if name in self._due:
                    if now >= self._due[name]:
                        self._restart(name)
                    continue
                code = process.poll()
                if code is not None and not self._stopping.is_set():
                    self._exited(name, code, now)

    def _exited(self, name: str, code: int, now: float) -> None:
        policy = self.policies[name]
        delay = policy.exited(now)
        if delay is None:
            self.failed = CrashLoop(name, policy.recent, policy.within, code,
                                    self._log(self.children[name]))
            del self.processes[name]
            self._record("child.given_up", child=name, code=code, exits=policy.recent,
                         within_seconds=policy.within)
            self.say(f"[bold red]{self.failed}[/]")
            self.gave_up(self.failed)
            return
        self._due[name] = now + delay
        self._record("child.exited", child=name, code=code, restarts=self.restarts[name],
                     restart_in_seconds=delay)
        self.say(f"[yellow]{name} exited ({_describe(code)}); starting it again in "
                 f"{delay:g} s[/]")

    def _restart(self, name: str) -> None:
        del self._due[name]
        child = self.children[name]
        process = self._spawn(child.restart_args or child.args, self.env, self._log(child))
        self.processes[name] = process
        self.restarts[name] += 1
        total = sum(self.restarts.values())
        self._record("child.restarted", child=name, pid=process.pid,
                     restarts=self.restarts[name], restarts_total=total)
        self.say(f"{name} started again (pid {process.pid}; restart {self.restarts[name]} "
                 f"of {name}, {total} in all)")

    def stop(self, grace: float = 10) -> None:
        """Stop watching, then every child: SIGTERM, SIGKILL after `grace` seconds."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        live = [p for p in self.processes.values() if p.poll() is None]
        for process in live:
            os.killpg(process.pid, signal.SIGTERM)
        for process in live:
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
