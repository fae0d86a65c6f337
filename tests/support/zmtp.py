"""A hostile control-channel peer, spoken by hand: what libzmq clients cannot be made to do.

The control channel's limits (frame size, unfinished multipart messages, the per-peer budget)
are tested and benchmarked against a peer that sends ZMTP 3.0 frames itself, so it can start
a message and never finish it.
"""

from __future__ import annotations

import socket
import time

#: ZMTP 3.0 greeting, NULL mechanism, as-server = 0 (RFC 23)
_GREETING = b"\xff" + b"\x00" * 8 + b"\x7f\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" * 32


def _ready(socket_type: str) -> bytes:
    """The READY command of a peer of ``socket_type`` (``DEALER`` for the control ROUTER,
    ``SUB`` for the event and stats PUBs, which drop any other type at the handshake)."""
    name = socket_type.encode("ascii")
    return b"\x05READY\x0bSocket-Type" + len(name).to_bytes(4, "big") + name


def handshake(ipc_path: str, socket_type: str = "DEALER", timeout: float = 5.0
              ) -> socket.socket:
    """A Unix socket connected to ``ipc_path`` that has sent its ZMTP 3.0 greeting and
    READY as a ``socket_type`` peer (the server's greeting read, its READY left unread), ready
    for hand-made frames. Its operations time out after ``timeout`` seconds."""
    raw = socket.socket(socket.AF_UNIX)
    try:
        raw.settimeout(timeout)
        raw.connect(ipc_path)
        raw.sendall(_GREETING)
        greeting = b""
        while len(greeting) < len(_GREETING):
            chunk = raw.recv(len(_GREETING) - len(greeting))
            if not chunk:
                raise ConnectionError("closed during the ZMTP greeting")
            greeting += chunk
        ready = _ready(socket_type)
        raw.sendall(b"\x04" + bytes([len(ready)]) + ready)
    except BaseException:
        raw.close()
        raise
    return raw


def zmtp_unfinished(
    ipc_path: str, *, frame_size: int = 1 << 20, frames: int | None = None,
    seconds: float | None = None, socket_type: str = "DEALER",
) -> int:
    """Speak ZMTP 3.0 (NULL) on an ``ipc://`` socket as a ``socket_type`` peer and send frames
    with the MORE flag, never the last one, either ``frames`` of them (then disconnect) or for
    ``seconds`` (reconnecting whenever circusd drops the connection). Returns the bytes sent.
    Every socket operation is bounded (5 s)."""
    frame = b"\x03" + frame_size.to_bytes(8, "big") + b"u" * frame_size  # MORE | LONG
    deadline = None if seconds is None else time.monotonic() + seconds
    sent = 0
    while True:
        try:
            with handshake(ipc_path, socket_type) as raw:
                count = 0
                while (frames is None or count < frames) and (
                    deadline is None or time.monotonic() < deadline
                ):
                    raw.sendall(frame)
                    sent += len(frame)
                    count += 1
        except OSError:
            if deadline is None:
                raise
            time.sleep(0.01)
        if deadline is None or time.monotonic() >= deadline:
            return sent
