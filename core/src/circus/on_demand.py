"""``on_demand`` watchers: started the moment one of their sockets becomes readable.

0.19 looked at its sockets once per ``check_delay`` tick (a first visitor waited up to 5 s).
Here each stopped on-demand watcher registers its sockets' fds with the event loop
(``loop.add_reader``): the kernel wakes the loop when a connection (or datagram) arrives, the
reader is removed (the socket stays readable until a worker accepts, and a level-triggered
reader would spin) and the watcher is started. The connection waits in the socket's backlog
meanwhile and is served by the first worker. When the watcher stops again it is re-armed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from circus.config.model import WatcherConfig
from circus.config.socket_use import used_sockets
from circus.events import requested_by
from circus.sockets import SocketSet

log = structlog.get_logger("circus.on_demand")

#: starts the watcher with this (lower-cased) name, if it still exists
Starter = Callable[[str], Coroutine[Any, Any, None]]


class OnDemand:
    """The readers of the sockets that stopped on-demand watchers wait on."""

    def __init__(self, sockets: SocketSet, start: Starter) -> None:
        self._sockets = sockets
        self._start = start
        #: fd -> names of the watchers waiting on it
        self._waiting: dict[int, set[str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def arm(self, key: str, cfg: WatcherConfig) -> None:
        """Wait for one of the sockets ``cfg`` uses; ``key`` is the watcher's lower-cased name."""
        loop = asyncio.get_running_loop()
        names = used_sockets(cfg, self._sockets)
        for name in names:
            sock = self._sockets.get(name)
            if sock is None or sock.sock is None:
                continue
            fd = sock.fd
            if fd not in self._waiting:
                self._waiting[fd] = set()
                loop.add_reader(fd, self._readable, fd)
            self._waiting[fd].add(key)
        log.debug("on-demand watcher waits for a connection", watcher=key, sockets=names)

    def disarm(self, key: str) -> None:
        loop = asyncio.get_running_loop()
        for fd in [fd for fd, keys in self._waiting.items() if key in keys]:
            keys = self._waiting[fd]
            keys.discard(key)
            if not keys:
                del self._waiting[fd]
                loop.remove_reader(fd)

    def close(self) -> None:
        """Remove every reader (before the sockets close)."""
        loop = asyncio.get_running_loop()
        for fd in self._waiting:
            loop.remove_reader(fd)
        self._waiting.clear()
        for task in self._tasks:
            task.cancel()

    def _readable(self, fd: int) -> None:
        for key in sorted(self._waiting.get(fd, set())):
            self.disarm(key)
            log.info("connection on an on-demand socket: starting the watcher", watcher=key)
            with requested_by(None):  # a connection starts it, not the command that armed it
                task = asyncio.get_running_loop().create_task(self._start(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
