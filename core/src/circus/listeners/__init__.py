"""How the control channel receives requests: what a listener hands the controller.

Two listeners serve the same contract (ROUTER semantics: every request comes with a routing id,
every reply goes back through it):

* :mod:`circus.listeners.native` reads ZMTP itself on TCP and ``ipc://`` endpoints, so a
  request's memory is bounded while it arrives (the default, used whenever CURVE is off);
* :mod:`circus.listeners.router` is a libzmq ROUTER socket, used with CURVE (libzmq does the
  handshake and encryption, and an unauthenticated peer never gets to send a frame) and for the
  rare endpoints the native listener does not parse (interface names, host names, abstract
  sockets).

:func:`open_listener` picks one. The controller only calls the :class:`Listener` methods.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket as stdsocket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import zmq

#: Most frames a request may have: routing id, empty delimiter (REQ), payload.
MAX_FRAMES = 3
#: Largest message accepted at all; a bigger one ends the sender's connection unanswered.
#: Between the request size limit and this, the sender gets an errno 3 reply instead.
HARD_FRAME_LIMIT = 32 << 20


class Incoming:
    """One message as received: its routing id, then the kept frames, plus what was counted.

    ``frames`` holds at most :data:`MAX_FRAMES` entries; a frame that would have taken the
    total over the size limit is kept as ``None`` (its bytes were never copied).
    """

    __slots__ = ("count", "frames", "size", "user")

    def __init__(self, identity: bytes, user: str | None = None) -> None:
        self.frames: list[bytes | None] = [identity]
        self.count = 1
        self.size = 0
        #: with CURVE, the z85 public key that authenticated the sender (ZeroMQ's User-Id)
        self.user = user


class Listener(Protocol):
    """What the controller's socket task drives; every method is called from that task."""

    #: where it listens, for log lines
    endpoint: str

    async def open(self) -> None:
        """Bind; errors (address in use, bad endpoint) raise ``zmq.ZMQError``."""

    def receive(self) -> Incoming | None:
        """The next request, or ``None`` when none is waiting (never blocks)."""

    def send(self, frames: list[bytes]) -> None:
        """Send a reply; ``frames[0]`` is the routing id. Dropped when that peer is gone."""

    async def service(self) -> None:
        """Housekeeping between requests (the libzmq listener re-binds here)."""

    async def close(self, linger: float) -> None:
        """Stop listening; replies already sent get up to ``linger`` seconds to go out."""


@dataclass(frozen=True)
class Address:
    """An endpoint the native listener can bind: a TCP host and port, or a Unix socket path."""

    host: str | None = None
    port: int = 0
    path: str | None = None


def native_address(endpoint: str) -> Address | None:
    """Where to bind ``endpoint`` natively, or ``None`` when only libzmq understands it.

    ``*`` means every IPv4 address and ``localhost`` means 127.0.0.1, as in libzmq (which
    leaves IPv6 off unless asked); a port of ``*`` or ``!`` is an ephemeral port.
    """
    if endpoint.startswith("ipc://"):
        path = endpoint[len("ipc://") :]
        return Address(path=path) if path and not path.startswith("@") else None
    if not endpoint.startswith("tcp://") or ";" in endpoint:
        return None
    host, sep, port = endpoint[len("tcp://") :].rpartition(":")
    if not sep:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = {"*": "0.0.0.0", "localhost": "127.0.0.1"}.get(host, host)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    if port in ("*", "!"):
        return Address(host=host)
    if not port.isdigit() or int(port) > 65535:
        return None
    return Address(host=host, port=int(port))


def refuse_live_ipc(endpoint: str) -> None:
    """Binding an ``ipc://`` path replaces whatever socket file is there, so a second circusd
    started by mistake would silently take the control channel away from a running one.
    Refuse when something still accepts connections on that path (a stale file is fine)."""
    if not endpoint.startswith("ipc://"):
        return
    path = endpoint[len("ipc://") :]
    if not os.path.exists(path):
        return
    probe = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:
        return  # a stale file left by a dead daemon: binding replaces it
    finally:
        probe.close()
    raise zmq.ZMQError(
        errno.EADDRINUSE, f"Address already in use: another process listens on {endpoint}"
    )


Wakeup = Callable[[], None]

__all__ = [
    "HARD_FRAME_LIMIT",
    "MAX_FRAMES",
    "Address",
    "Incoming",
    "Listener",
    "Wakeup",
    "native_address",
    "refuse_live_ipc",
]
