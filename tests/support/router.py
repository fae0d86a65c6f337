"""A libzmq ROUTER in a thread, answering as a handler says: the control channel's other side
as the original circusd 0.19 has it, minimal so that clients' id matching, timeouts, stale
replies and reconnection can be provoked deterministically (``core/tests/test_transports.py``,
``core/tests/test_wire_dealer.py``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import zmq

Handler = Callable[[dict[str, Any]], list[dict[str, Any]] | None]


class RouterPeer:
    """A ROUTER in its own thread; ``handler(request)`` returns the replies to send (or None)."""

    def __init__(self, endpoint: str, handler: Handler) -> None:
        self.endpoint = endpoint
        self.handler = handler
        self.requests: list[dict[str, Any]] = []
        self.raw: list[list[bytes]] = []
        #: the routing id of each request's sender
        self.identities: list[bytes] = []
        self._stop = threading.Event()
        self._bound = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RouterPeer:
        self._thread.start()
        assert self._bound.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive()

    def _run(self) -> None:
        sock = zmq.Context.instance().socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(self.endpoint)
        self._bound.set()
        try:
            while not self._stop.is_set():
                if not sock.poll(50):
                    continue
                frames = sock.recv_multipart()
                self.raw.append(frames[1:])
                self.identities.append(frames[0])
                try:
                    request = json.loads(frames[-1])
                except ValueError:
                    sock.send_multipart([frames[0], b'{"status": "error", "id": null}'])
                    continue
                self.requests.append(request)
                for reply in self.handler(request) or []:
                    sock.send_multipart([frames[0], json.dumps(reply).encode()])
        finally:
            sock.close(linger=0)


def echo(request: dict[str, Any]) -> list[dict[str, Any]]:
    if request.get("msg_type") == "cast":
        return []
    return [{"status": "ok", "command": request["command"], "id": request.get("id"),
             "properties": request.get("properties")}]
