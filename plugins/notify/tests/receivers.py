"""Real servers that receive the alerts in the tests: an HTTP server (webhook) and an SMTP server
(aiosmtpd), both on 127.0.0.1, each in a thread of the test process."""

from __future__ import annotations

import json
import threading
import time
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from circus.testing import free_port


def _wait(items: list[Any], count: int, timeout: float, what: str) -> list[Any]:
    deadline = time.monotonic() + timeout
    while len(items) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(items)}/{count} {what} within {timeout} s: {items!r}")
        time.sleep(0.02)
    return list(items)


class WebhookReceiver:
    """Collects the JSON bodies POSTed to it; answers 204."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        bodies, paths = self.bodies, self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                assert self.headers.get("Content-Type") == "application/json"
                paths.append(self.path)
                bodies.append(body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/circus"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        return _wait(self.bodies, count, timeout, "webhook calls")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)


class MailReceiver:
    """An aiosmtpd SMTP server keeping every message (with its envelope recipients)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.recipients: list[list[str]] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                receiver.recipients.append(list(envelope.rcpt_tos))
                receiver.messages.append(message_from_bytes(envelope.content))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def wait(self, count: int, timeout: float = 30.0) -> list[Message]:
        return _wait(self.messages, count, timeout, "e-mails")

    def close(self) -> None:
        self.controller.stop()
