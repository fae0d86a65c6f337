"""A tiny HTTP worker for circus's shared sockets (demo/web.ini, docs/sockets.md).

    python web_app.py --fd 3        # serve on a listening socket inherited from circusd
    python web_app.py --port 8000   # or bind 127.0.0.1:PORT itself
    python web_app.py --port 8000 --reuse-port   # several copies on one port, no circusd
                                                 # (the benchmark's baseline)

Stdlib only. Every response says which process served it. SIGTERM (circus's stop signal) is a
graceful stop: the worker accepts nothing new and finishes the request in hand, then exits; the
connections still queued on the socket stay there for the other (or the new) workers, which is
what makes ``circusctl reload web`` lose no request.
"""

from __future__ import annotations

import argparse
import http.server
import os
import signal
import socket
import threading
from types import FrameType


class Handler(http.server.BaseHTTPRequestHandler):
    """``GET`` anything: ``200 hello from <pid>``; HTTP/1.0, so one request per connection."""

    def do_GET(self) -> None:
        body = f"hello from {os.getpid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a log line per request would cost more than the request."""


class Server(http.server.HTTPServer):
    """An HTTPServer that can adopt an already listening socket."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock.getsockname()[:2], Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        # circusd's sockets are non-blocking (blocking = false): several workers select() on the
        # same socket and the ones that lose the accept() race must not block in it

    def get_request(self) -> tuple[socket.socket, object]:
        conn, addr = self.socket.accept()
        conn.setblocking(True)  # the accepted connection is served with plain blocking I/O
        return conn, addr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--fd", type=int, help="an inherited listening socket")
    where.add_argument("--port", type=int, help="bind 127.0.0.1:PORT instead")
    parser.add_argument("--reuse-port", action="store_true",
                        help="with --port: SO_REUSEPORT, so several copies share the port")
    args = parser.parse_args()
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        sock = socket.create_server(("127.0.0.1", args.port), backlog=2048,
                                    reuse_port=args.reuse_port)
    sock.setblocking(False)
    server = Server(sock)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to return: it must run outside the loop's thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever(poll_interval=0.05)
    sock.close()


if __name__ == "__main__":
    main()
