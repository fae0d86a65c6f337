"""A real HTTP service for the tests: healthy until told otherwise through a marker file.

``python health_server.py PORT DIR``: ``GET /health`` answers ``200 ok`` while ``DIR/unhealthy``
does not exist; when it holds ``status`` the answer is ``503``, when it holds ``body`` it is
``200 degraded`` (healthy by status, wrong by body). A new process removes the marker (a restart
fixes it); SIGUSR1 removes it too and appends a line to ``DIR/signals`` (a signal fixes it).
Each start appends the pid to ``DIR/starts``.
"""

from __future__ import annotations

import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

PORT = int(sys.argv[1])
DIR = Path(sys.argv[2])
MARKER = DIR / "unhealthy"


def heal(signum: int, frame: FrameType | None) -> None:
    MARKER.unlink(missing_ok=True)
    with open(DIR / "signals", "a") as handle:
        handle.write(f"{os.getpid()} {signum}\n")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        try:
            state = MARKER.read_text().strip()
        except FileNotFoundError:
            state = ""
        code, body = (503, b"down") if state == "status" else (200, b"ok")
        if state == "body":
            body = b"degraded"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    MARKER.unlink(missing_ok=True)
    signal.signal(signal.SIGUSR1, heal)
    with open(DIR / "starts", "a") as handle:
        handle.write(f"{os.getpid()}\n")
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.allow_reuse_address = True
    server.serve_forever()
