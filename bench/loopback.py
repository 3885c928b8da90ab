"""Real receivers on loopback for the channel tests and the channels benchmark: an HTTP
server that records each request as it arrived and answers what it is told to, and an
SMTP server (aiosmtpd) that records each mail. They check nothing themselves: the tests
verify payloads and signatures with the vendors' algorithms, written out in the tests."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from services.broker import free_port


@dataclass(frozen=True)
class Received:
    path: str  # with its query string
    headers: dict[str, str]
    body: bytes
    at: float  # time.perf_counter() when the body had been read
    wall: float = 0.0  # time.time() then: against event times (the live alert bench)


class HttpReceiver:
    """`url` takes POSTs; each is recorded, then answered with the next scripted answer
    (`script`), else `answer`. A context manager: serves in a thread until exit."""

    def __init__(self, answer: tuple[int, bytes] = (200, b"ok")) -> None:
        self.answer = answer
        self.script: deque[tuple[int, bytes]] = deque()
        self.headers: dict[str, str] = {}  # sent with every answer (e.g. Retry-After)
        self.received: list[Received] = []
        self._arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                got = Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                               body, time.perf_counter(), time.time())
                with receiver._arrived:
                    status, reply = (receiver.script.popleft() if receiver.script
                                     else receiver.answer)
                    receiver.received.append(got)
                    receiver._arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The first `count` requests, once they have arrived."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise TimeoutError(f"{len(self.received)} of {count} requests arrived")
            return self.received[:count]


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage
    at: float
    wall: float = 0.0  # time.time() when the DATA had been accepted


@dataclass
class _MailHandler:
    mails: list[Mail] = field(default_factory=list)
    refuse_data: deque[str] = field(default_factory=deque)  # e.g. "451 4.3.0 try later"
    refuse_rcpt: dict[str, str] = field(default_factory=dict)  # address -> "550 ..."
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refuse_data:
            return self.refuse_data.popleft()
        message: EmailMessage = message_from_bytes(envelope.content, policy=policy.default)
        with self.arrived:
            self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message,
                                   time.perf_counter(), time.time()))
            self.arrived.notify_all()
        return "250 Message accepted"


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on loopback that keeps every mail it accepts."""

    def __init__(self) -> None:
        self.handler = _MailHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def mails(self) -> list[Mail]:
        return self.handler.mails

    def __enter__(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Mail]:
        with self.handler.arrived:
            if not self.handler.arrived.wait_for(lambda: len(self.mails) >= count, timeout):
                raise TimeoutError(f"{len(self.mails)} of {count} mails arrived")
            return self.mails[:count]
