"""How every long-running process of the CLI starts and stops: one place, not one a command."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

from services.settings import Settings


def started(log_level: str = "warning") -> Settings:
    """A process's first steps: logs configured, settings read, /metrics served."""
    from services import logs, observability

    logs.configure(log_level)
    settings = Settings()
    observability.serve_metrics(settings)
    return settings


def until_signalled(serve: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `serve(stop)`; SIGINT or SIGTERM sets `stop`, and the process ends when it returns."""

    async def run() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await serve(stop)

    asyncio.run(run())
