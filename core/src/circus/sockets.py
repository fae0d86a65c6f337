"""The listening sockets of ``[socket:NAME]`` sections: bound by circusd, inherited by workers.

circusd binds every socket before any watcher starts and closes them after the last watcher
stopped, so a worker can be replaced (``reload``, ``restart``, a crash) while the kernel keeps
queueing connections on the socket: nothing is refused in between. Children get the fds of the
sockets they use through ``pass_fds`` (:func:`circus.config.socket_use.used_sockets`); circusd's
own copies stay close-on-exec.

``so_reuseport`` sockets: each spawn gets a socket of its own, bound with ``SO_REUSEPORT`` to the
same address and listening, so the kernel spreads connections over the workers; circusd keeps
one bound but *not listening* socket to hold the port (a listening socket nobody accepts on
would get its share of connections and leave them hanging). Its ``fd`` in ``listsockets`` is
that holder's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import stat
from collections.abc import Iterator, Mapping
from typing import Any

import structlog

from circus.config.socket_section import SocketConfig
from circus.errors import ConfigError

log = structlog.get_logger("circus.sockets")

_LISTENING_TYPES = (socket.SOCK_STREAM, socket.SOCK_SEQPACKET)


class CircusSocket:
    """One ``[socket:NAME]``: its configuration and, once bound, the socket circusd holds."""

    def __init__(self, config: SocketConfig) -> None:
        self.config = config
        self.sock: socket.socket | None = None
        #: the address actually bound (host, port) for inet sockets: ``port = 0`` resolved
        self.bound: tuple[Any, ...] | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def fd(self) -> int:
        if self.sock is None:
            raise RuntimeError(f"socket {self.name!r} is not bound")
        return self.sock.fileno()

    @property
    def port(self) -> int:
        return int(self.bound[1]) if self.bound else self.config.port

    def address(self) -> str:
        """``host:port`` or the Unix path (listsockets, ``stat.sockets``)."""
        if self.config.is_unix:
            return self.config.path or ""
        return f"{self.config.host}:{self.port}"

    def bind(self) -> None:
        """Create, bind and listen; :class:`ConfigError` naming the section when the OS refuses."""
        cfg = self.config
        try:
            if cfg.is_unix:
                self.sock = self._bind_unix()
            else:
                self.sock = self._bind_inet(cfg.port, listen=not cfg.so_reuseport)
                self.bound = self.sock.getsockname()
        except OSError as exc:
            self.close()
            reason = exc.strerror or str(exc)
            raise ConfigError(
                f"cannot bind {self.address()}: {reason}", section=f"socket:{self.name}"
            ) from None
        log.info("socket bound", socket=self.name, address=self.address(), fd=self.fd)

    def _new(self, family: int) -> socket.socket:
        cfg = self.config
        sock = socket.socket(family, cfg.type, cfg.proto)
        try:
            if family != socket.AF_UNIX:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if cfg.so_reuseport:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if cfg.interface:
                option = getattr(socket, "SO_BINDTODEVICE", None)
                if option is None:
                    log.warning("interface is not supported on this system", socket=self.name)
                else:
                    sock.setsockopt(socket.SOL_SOCKET, option, cfg.interface.encode() + b"\0")
        except BaseException:
            sock.close()
            raise
        return sock

    def _bind_inet(self, port: int, *, listen: bool) -> socket.socket:
        cfg = self.config
        infos = socket.getaddrinfo(cfg.host, port, cfg.family, cfg.type, cfg.proto,
                                   socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        sock = self._new(family)
        try:
            sock.bind(address)
            self._ready(sock, listen=listen)
        except BaseException:
            sock.close()
            raise
        return sock

    def _bind_unix(self) -> socket.socket:
        cfg = self.config
        path = cfg.path or ""
        if cfg.replace:
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    os.unlink(path)
                else:
                    raise FileExistsError(17, "exists and is not a socket: not replaced", path)
        sock = self._new(socket.AF_UNIX)
        previous = os.umask(cfg.umask)
        try:
            sock.bind(path)
        except BaseException:
            sock.close()
            raise
        finally:
            os.umask(previous)
        try:
            self._ready(sock, listen=True)
        except BaseException:
            sock.close()
            raise
        return sock

    def _ready(self, sock: socket.socket, *, listen: bool) -> None:
        if listen and self.config.type in _LISTENING_TYPES:
            sock.listen(self.config.backlog)
        sock.setblocking(self.config.blocking)

    def for_child(self) -> socket.socket | None:
        """A per-spawn ``SO_REUSEPORT`` socket (the caller closes it after the spawn), or None
        when children share circusd's socket."""
        if not self.config.so_reuseport or self.config.is_unix:
            return None
        return self._bind_inet(self.port, listen=True)

    def info(self) -> dict[str, Any]:
        """The ``listsockets`` entry (contract 3.3)."""
        entry: dict[str, Any] = {"fd": self.fd, "name": self.name, "backlog": self.config.backlog}
        if self.config.is_unix:
            entry["path"] = self.config.path
        else:
            entry["host"] = self.config.host
            entry["port"] = self.port
        return entry

    def close(self) -> None:
        if self.sock is None:
            return
        self.sock.close()
        self.sock = None
        if self.config.is_unix and self.config.path:
            with contextlib.suppress(OSError):
                os.unlink(self.config.path)
        log.info("socket closed", socket=self.name)


class SocketSet(Mapping[str, CircusSocket]):
    """circusd's sockets by (lower-cased) name."""

    def __init__(self, configs: list[SocketConfig] | None = None) -> None:
        self._sockets: dict[str, CircusSocket] = {c.name: CircusSocket(c) for c in configs or []}

    def __getitem__(self, name: str) -> CircusSocket:
        return self._sockets[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sockets)

    def __len__(self) -> int:
        return len(self._sockets)

    def bind_all(self) -> None:
        """Bind every socket; on a failure the ones already bound are closed again."""
        try:
            for sock in self._sockets.values():
                sock.bind()
        except ConfigError:
            self.close_all()
            raise

    def close_all(self) -> None:
        for sock in self._sockets.values():
            sock.close()

    def add(self, config: SocketConfig) -> CircusSocket:
        """Bind a new socket (reloadconfig); replaces nothing."""
        sock = CircusSocket(config)
        sock.bind()
        self._sockets[config.name] = sock
        return sock

    def remove(self, name: str) -> None:
        sock = self._sockets.pop(name.lower(), None)
        if sock is not None:
            sock.close()

    def listing(self) -> list[dict[str, Any]]:
        """``listsockets``: bound sockets sorted by fd."""
        return sorted((s.info() for s in self._sockets.values() if s.sock), key=lambda i: i["fd"])

    def for_spawn(self, names: list[str]) -> tuple[dict[str, int], list[socket.socket]]:
        """The fds one child gets (name -> fd), and the per-spawn sockets to close once the child
        is started (``so_reuseport``)."""
        fds: dict[str, int] = {}
        temporary: list[socket.socket] = []
        try:
            for name in names:
                sock = self._sockets.get(name)
                if sock is None or sock.sock is None:
                    continue
                own = sock.for_child()
                if own is not None:
                    temporary.append(own)
                fds[name] = own.fileno() if own is not None else sock.fd
        except BaseException:
            for own in temporary:
                own.close()
            raise
        return fds, temporary


class ReadCounter:
    """How often each socket was seen readable, for the ``stat.sockets`` topics (contract 5).

    0.19's circusd-stats watched the inherited sockets with a level-triggered IOLoop, which
    fires again and again while a connection waits to be accepted. Here the sockets sit in an
    edge-triggered epoll of their own whose fd is registered with the event loop: one wake-up
    per arrival, and nothing more while it waits. epoll re-checks readiness when the loop
    collects the event, so a connection a worker accepted first is not counted: the figure
    measures connections that had to wait (queueing), not traffic. Arrivals between two loop
    iterations count once. Without epoll (not Linux) the counts stay 0.
    """

    def __init__(self, sockets: SocketSet) -> None:
        self._sockets = sockets
        self._epoll: Any = None
        #: fd -> the socket object registered under it (a re-bound socket may reuse a number)
        self._registered: dict[int, socket.socket] = {}
        self._counts: dict[int, int] = {}

    def start(self) -> None:
        if not hasattr(select, "epoll"):
            return
        self._epoll = select.epoll()
        asyncio.get_running_loop().add_reader(self._epoll.fileno(), self._ready)
        self._sync()

    def _sync(self) -> None:
        """Follow the bound sockets (reloadconfig closes and binds some)."""
        if self._epoll is None:
            return
        current = {s.fd: s.sock for s in self._sockets.values() if s.sock is not None}
        for fd, sock in list(self._registered.items()):
            if current.get(fd) is not sock:
                with contextlib.suppress(OSError):  # closed: epoll dropped it already
                    self._epoll.unregister(fd)
                del self._registered[fd]
                self._counts.pop(fd, None)
        for fd, sock in current.items():
            if fd not in self._registered and sock is not None:
                self._epoll.register(fd, select.EPOLLIN | select.EPOLLET)
                self._registered[fd] = sock

    def _ready(self) -> None:
        for fd, _ in self._epoll.poll(0):
            self._counts[fd] = self._counts.get(fd, 0) + 1

    def take(self) -> list[tuple[int, str, int]]:
        """``(fd, address, reads since the last call)`` per bound socket, sorted by fd."""
        self._sync()
        found = sorted((s.fd, s.address()) for s in self._sockets.values() if s.sock is not None)
        taken = [(fd, address, self._counts.get(fd, 0)) for fd, address in found]
        self._counts.clear()
        return taken

    def close(self) -> None:
        if self._epoll is None:
            return
        asyncio.get_running_loop().remove_reader(self._epoll.fileno())
        self._epoll.close()
        self._epoll = None
        self._registered.clear()
