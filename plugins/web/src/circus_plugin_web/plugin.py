"""``WebDashboard``: circusd's live web dashboard, an ``AsyncCircusPlugin``.

One loop runs everything: the plugin runtime's sockets, the event handler, the uvicorn server
and its Starlette application, so a command from a page is one ``await self.call(...)`` on the
loop's DEALER and an event reaches the pages without crossing a thread. Events update the
:class:`~circus_plugin_web.board.Board` at once and mark their watcher for a refresh (one
``processes`` call for all of them, at most every ``refresh_interval``); a refresh also runs
every ``FULL_REFRESH`` seconds as a safety net, and after missed events.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import uvicorn

from circus.errors import CallError, ConfigError
from circus.plugins import AsyncCircusPlugin
from circus.plugins.sequence import Gap
from circus_plugin_web.app import create_app
from circus_plugin_web.board import Board
from circus_plugin_web.output import OutputFollower, line_record
from circus_plugin_web.settings import OPTIONS, WebSettings
from circus_plugin_web.stream import Broadcast

#: seconds between two refreshes when no event asks for one
FULL_REFRESH = 5.0
#: seconds the HTTP server may take to start listening
SERVER_START = 10.0


class WebDashboard(AsyncCircusPlugin):
    """Options: host (127.0.0.1), port (8080), token / token_file, history (300 s),
    refresh_interval (0.5 s)."""

    name = "web"
    #: the options it reads: circusd warns about any other key of its section (typos)
    config_options: ClassVar[frozenset[str]] = OPTIONS.names
    required_commands: ClassVar[frozenset[str] | None] = frozenset({
        "processes", "tail", "start", "stop", "restart", "reload", "incr", "decr", "signal",
    })

    def __init__(self, *args: Any, **config: Any) -> None:
        super().__init__(*args, **config)
        self.settings = WebSettings.from_config(self.config)
        self.board = Board(self.settings.history)
        self.broadcast: Broadcast | None = None
        self.follower: OutputFollower | None = None
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._server: uvicorn.Server | None = None
        self._failure: str | None = None

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        """Refuse bad option values when circusd loads its configuration."""
        WebSettings.from_config(config)

    async def handle_init(self) -> None:
        self.broadcast = Broadcast(self._view_of)
        self.follower = OutputFollower(self.pubsub_endpoint, self.broadcast.output)
        await self.refresh()
        listener = self._listen()
        config = uvicorn.Config(create_app(self.settings, self), log_config=None,
                                access_log=False, lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._server.serve(sockets=[listener]), name="web-http"),
            loop.create_task(self.broadcast.run(), name="web-broadcast"),
            loop.create_task(self._refresher(), name="web-refresh"),
        ]
        deadline = loop.time() + SERVER_START
        while not self._server.started:  # bounded: serve() sets it once it listens
            if self._tasks[0].done() or loop.time() > deadline:
                raise RuntimeError("the HTTP server did not start")
            await asyncio.sleep(0.01)
        self.log.info(f"dashboard on http://{self._url_host()}:{self.settings.port}/"
                      + (" (commands need the access token)" if self.settings.token else ""))

    def _listen(self) -> socket.socket:
        """Bind here, so a busy port is a one-line error naming it (uvicorn would exit)."""
        host, port = self.settings.host, self.settings.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}",
                              key="port") from None
        sock.listen(128)
        sock.setblocking(False)
        return sock

    def _url_host(self) -> str:
        return f"[{self.settings.host}]" if ":" in self.settings.host else self.settings.host

    # -- events and statistics --------------------------------------------------------------

    async def handle_recv(self, data: tuple[str, str]) -> None:
        event = self.parse_event(data)
        if event is None:
            return
        watcher, action, payload = event
        record = self.board.event(watcher, action, payload)
        if self.broadcast is not None:
            self.broadcast.event(record)
            self.broadcast.watcher(watcher)
        self._dirty.set()

    def handle_gap(self, gap: Gap) -> None:
        super().handle_gap(gap)
        self._dirty.set()  # what was missed is read back by the next refresh

    def handle_stats(self, watcher: str, pid: int | None, stats: dict[str, Any]) -> None:
        """The stats stream (``statsd = true``): cpu/memory figures every second."""
        if self.board.stats(watcher, pid, stats) and self.broadcast is not None:
            self.broadcast.watcher(watcher)

    # -- refreshing from circusd ------------------------------------------------------------

    async def _refresher(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), FULL_REFRESH)
            self._dirty.clear()
            started = time.monotonic()
            await self.refresh()
            # a slow daemon is asked less often: never more than half the time spent asking
            spent = time.monotonic() - started
            await asyncio.sleep(max(self.settings.refresh_interval, spent))

    async def refresh(self) -> None:
        """One ``processes`` call installed on the board; a failure is logged, not fatal."""
        try:
            reply = await self.call("processes", timeout=10.0)
        except CallError as exc:
            self._refresh_failed(f"cannot refresh the dashboard: {exc}")
            return
        if reply.get("status") != "ok":
            self._refresh_failed(f"circusd refused 'processes' (the page shows what events "
                                 f"say): {reply.get('reason')}")
            return
        if self._failure is not None:
            self.log.info("the dashboard refreshes again")
            self._failure = None
        changed = self.board.refresh(list(reply.get("watchers", [])), complete=True)
        points = self.board.sample_history()
        if self.broadcast is not None:
            for name in changed:
                self.broadcast.watcher(name)
            self.broadcast.history(points)

    def _view_of(self, name: str) -> dict[str, Any] | None:
        view = self.board.watchers.get(name)
        return view.as_dict() if view is not None else None

    def _refresh_failed(self, message: str) -> None:
        """Log a failing refresh once per streak (it is retried after every event)."""
        if message != self._failure:
            self.log.warning(message)
        self._failure = message

    # -- what the application asks (Backend) ------------------------------------------------

    def view(self) -> dict[str, Any]:
        snap = self.board.snapshot()
        snap["token_required"] = self.settings.token is not None
        return snap

    def page_stream(self) -> AsyncIterator[str]:
        assert self.broadcast is not None
        return self.broadcast.page(self.view)

    async def command(self, command: str, timeout: float, **props: Any) -> dict[str, Any]:
        reply = await self.call(command, timeout=timeout, **props)
        self._dirty.set()
        return reply

    async def output(self, watcher: str, lines: int) -> dict[str, Any]:
        """The last ``lines`` lines of ``watcher`` and, for the lease, its new ones live."""
        reply = await self.call("tail", names=[watcher], lines=lines, follow=15)
        if reply.get("status") != "ok":
            return reply
        if self.follower is not None:
            self.follower.follow(watcher)
        return {"status": "ok", "lines": [line_record(line) for line in reply.get("lines", [])]}

    async def handle_stop(self) -> None:
        if self.broadcast is not None:
            self.broadcast.close()
        if self._server is not None:
            self._server.should_exit = True
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks[:1], timeout=3)
            for task in [*pending, *self._tasks[1:]]:
                task.cancel()
            await asyncio.wait(self._tasks, timeout=3)
        if self.follower is not None:
            await self.follower.close()
