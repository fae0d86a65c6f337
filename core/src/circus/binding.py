"""How circusd binds the sockets others connect to: CURVE and owner-only ipc files.

One :class:`BindPolicy` is made from the ``[circus]`` settings and used for the control ROUTER
and the event PUB (and any other daemon socket), so they cannot drift apart.

``ipc://`` socket files (issue 9, item 3): connecting to a Unix socket needs write permission
on its file, and libzmq creates it with the process umask (``srwxr-xr-x`` under 022, world
connectable under 000). The file is created under umask 0177, so it is owner-only from the first
instant (no window between bind and chmod), then set to 0600, or, with ``endpoint_owner``, handed
to that user and their primary group with 0660. The umask is process-wide for the few
microseconds of the ``bind`` call; circusd's other threads create no files meanwhile.
"""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from circus.config.convert import to_uid
from circus.curve import CurveServer

IPC_PREFIX = "ipc://"
#: umask while binding an ipc endpoint: the socket file starts as 0600.
BIND_UMASK = 0o177


def ipc_path(endpoint: str) -> str | None:
    """The file of an ``ipc://`` endpoint, ``None`` for other transports and for Linux
    abstract sockets (``ipc://@name``), which have no file to protect."""
    if not endpoint.startswith(IPC_PREFIX) or endpoint.startswith(IPC_PREFIX + "@"):
        return None
    return endpoint[len(IPC_PREFIX) :]


@dataclass(frozen=True)
class BindPolicy:
    """CURVE (when configured) and ipc permissions applied to every socket circusd binds."""

    curve: CurveServer | None = None
    owner: str | None = None

    def bind(self, socket: zmq.Socket[Any], endpoint: str) -> None:
        if self.curve is not None:
            self.curve.configure_server(socket)
        path = ipc_path(endpoint)
        if path is None:
            socket.bind(endpoint)
            return
        self._bind_file(lambda: socket.bind(endpoint), path)

    def bind_unix(self, sock: socket.socket, path: str) -> None:
        """Bind a Unix stream socket of circusd's own (the native control listener) with the
        same permissions as an ``ipc://`` ZeroMQ socket."""
        self._bind_file(lambda: sock.bind(path), path)

    def _bind_file(self, bind: Callable[[], object], path: str) -> None:
        previous = os.umask(BIND_UMASK)
        try:
            bind()
        finally:
            os.umask(previous)
        self._restrict(path)

    def _restrict(self, path: str) -> None:
        if self.owner is None:
            os.chmod(path, 0o600)
            return
        uid = to_uid(self.owner)
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            gid = -1
        os.chown(path, uid, gid)
        os.chmod(path, 0o660 if gid != -1 else 0o600)


__all__ = ["BIND_UMASK", "BindPolicy", "ipc_path"]
