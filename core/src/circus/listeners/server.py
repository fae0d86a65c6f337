"""A listening TCP or Unix socket for circusd's own ZMTP servers (control and events).

Binding, serving and closing are the same for the native control listener and the native
publisher: the address as libzmq would understand it, ipc files owner-only through the same
:class:`~circus.binding.BindPolicy` as ZeroMQ sockets, bind errors raised as ``zmq.ZMQError``
(so callers handle both kinds of socket alike), and on close the socket file removed as libzmq
removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket as stdsocket
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import zmq

from circus.binding import BindPolicy
from circus.listeners import Address, refuse_live_ipc
from circus.logthrottle import Throttle

#: Pending TCP connections the kernel keeps (libzmq's default ``ZMQ_BACKLOG``).
BACKLOG = 100


class Closable(Protocol):
    """What :class:`StreamServer` needs of a connection to end it."""

    def close(self) -> None: ...

    def abort(self) -> None: ...


C = TypeVar("C", bound=Closable)


class StreamServer(Generic[C]):
    """One listening socket, the asyncio server accepting on it, and its connections (at
    most ``limit`` at once: more are refused on arrival with a throttled warning)."""

    def __init__(
        self, endpoint: str, address: Address, policy: BindPolicy, *, limit: int,
        warn: Throttle, refusal: str,
    ) -> None:
        #: the endpoint, with the real port once an ephemeral one was bound
        self.endpoint = endpoint
        self.address = address
        self.policy = policy
        self.limit = limit
        self.connections: set[C] = set()
        self._warn = warn
        self._refusal = refusal
        self._server: asyncio.Server | None = None
        self._ipc_inode: int | None = None

    async def open(self, factory: Callable[[], asyncio.Protocol]) -> None:
        loop = asyncio.get_running_loop()
        sock = self._bind()
        try:
            if self.address.path is not None:
                self._server = await loop.create_unix_server(factory, sock=sock)
            else:
                self._server = await loop.create_server(factory, sock=sock)
        except BaseException:
            sock.close()
            raise

    def _bind(self) -> stdsocket.socket:
        """A listening socket, with errors raised as ``zmq.ZMQError`` like libzmq's bind."""
        try:
            sock = self._bind_unix() if self.address.path is not None else self._bind_tcp()
            try:
                sock.listen(BACKLOG)
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
        except OSError as exc:
            code = exc.errno or errno.EINVAL
            raise zmq.ZMQError(code, f"{os.strerror(code)} (addr='{self.endpoint}')") from None
        return sock

    def _bind_unix(self) -> stdsocket.socket:
        path = self.address.path
        assert path is not None
        refuse_live_ipc(self.endpoint)
        sock = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # a stale file (refuse_live_ipc found nobody there)
            self.policy.bind_unix(sock, path)
            self._ipc_inode = os.stat(path).st_ino
        except BaseException:
            sock.close()
            raise
        return sock

    def _bind_tcp(self) -> stdsocket.socket:
        host = self.address.host
        assert host is not None
        family = stdsocket.AF_INET6 if ":" in host else stdsocket.AF_INET
        sock = stdsocket.socket(family, stdsocket.SOCK_STREAM)
        try:
            sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_REUSEADDR, 1)
            sock.bind((host, self.address.port))
        except BaseException:
            sock.close()
            raise
        if self.address.port == 0:
            shown = f"[{host}]" if ":" in host else host
            self.endpoint = f"tcp://{shown}:{sock.getsockname()[1]}"
        return sock

    def admit(self, connection: C) -> bool:
        """Count a new connection in, unless the limit is reached."""
        if len(self.connections) >= self.limit:
            self._warn.warning(self._refusal, limit=self.limit)
            return False
        self.connections.add(connection)
        return True

    async def close(self, linger: float) -> None:
        """Stop accepting, let the connections flush what was written (up to ``linger``
        seconds; they leave :attr:`connections` as they end), then abort the rest."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        connections = self.connections
        for connection in list(connections):
            connection.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + linger
        while connections and loop.time() < deadline:
            await asyncio.sleep(0.005)
        for connection in list(connections):
            connection.abort()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), linger)
        self._unlink_ipc()

    def _unlink_ipc(self) -> None:
        """Remove our socket file (as libzmq does), unless another daemon replaced it."""
        path = self.address.path
        if path is None or self._ipc_inode is None:
            return
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == self._ipc_inode:
                os.unlink(path)


__all__ = ["BACKLOG", "Closable", "StreamServer"]
