"""The watchdog plugin: UDP heartbeats in, ``kill`` commands out (contract 7.3).

Everything runs on the plugin's loop thread (``AsyncCircusPlugin``): the UDP endpoint is an
asyncio datagram endpoint on ``self.loop``, events and timers share that thread, so the table
needs no lock. One timer is armed at the earliest deadline of :class:`HeartbeatTable`; a
heartbeat only moves deadlines later, so the timer may fire early, find nobody overdue, and
re-arm itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, ClassVar

from circus.errors import CallError, ConfigError
from circus.plugins import AsyncCircusPlugin
from circus.protocol import res_name, split_topic
from circus_plugin_watchdog.heartbeats import HeartbeatTable, Throttle, heartbeat_pid
from circus_plugin_watchdog.settings import OPTIONS, WatchdogSettings

#: Watchers the watchdog never monitors: plugins and circusd's own helpers send no heartbeats
#: (the original's default ``.*`` matched ``plugin:watchdog`` itself and killed it).
UNMONITORED_PREFIXES = ("plugin:", "circusd-stats")
MAX_DATAGRAM = 1024


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, plugin: WatchDog) -> None:
        self.plugin = plugin

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.plugin.heartbeat(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.plugin.log.warning(f"UDP receive error: {exc}")


class WatchDog(AsyncCircusPlugin):
    """Kills monitored processes that stop sending heartbeats (circusd respawns them)."""

    name = "watchdog"
    #: the options it reads: circusd warns about any other key of its section (typos)
    config_options: ClassVar[frozenset[str]] = OPTIONS.names
    required_commands: ClassVar[frozenset[str] | None] = frozenset({"list", "kill"})

    def __init__(self, *args: Any, **config: Any) -> None:
        # *args: the original positional form (endpoint, pubsub_endpoint, check_delay, ssh).
        super().__init__(*args, **config)
        self.settings = WatchdogSettings.from_config(self.config)
        self.table = HeartbeatTable(self.settings.limit)
        self.address: tuple[str, int] | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._names: dict[str, str] = {}  # res_name -> watcher name as circusd knows it
        self._throttle = Throttle()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        """Refuse bad option values when circusd loads its configuration."""
        WatchdogSettings.from_config(config)

    # -- lifecycle ------------------------------------------------------------------------------

    async def handle_init(self) -> None:
        ip, port = self.settings.ip, self.settings.port
        try:
            transport, _ = await self.loop.create_datagram_endpoint(
                lambda: _Receiver(self), local_addr=(ip, port)
            )
        except OSError as exc:
            raise ConfigError(f"cannot listen for heartbeats on {ip}:{port}: "
                              f"{exc.strerror or exc}", key="port") from None
        self._transport = transport
        self.address = transport.get_extra_info("sockname")[:2]
        self.log.info(f"listening for heartbeats on UDP {self.address[0]}:{self.address[1]}; "
                      f"a process silent for {self.settings.limit:g}s is killed")
        await self.discover()

    async def handle_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None:
            self._transport.close()
        for task in list(self._tasks):
            task.cancel()

    async def discover(self) -> None:
        """Monitor the processes already running (the events only tell about new ones)."""
        now = time.monotonic()
        try:
            names = (await self.call("list")).get("watchers", [])
            for name in names:
                if isinstance(name, str) and self.monitors(res_name(name)):
                    self._names[res_name(name)] = name
                    for pid in (await self.call("list", name=name)).get("pids", []):
                        self.table.track(int(pid), res_name(name), now)
        except CallError as exc:
            self.log.warning(f"cannot list the running processes: {exc}; "
                             "monitoring the ones spawned from now on")
        self.log.info(f"monitoring {len(self.table)} processes")
        self._arm()

    def monitors(self, watcher: str) -> bool:
        """Whether processes of ``watcher`` (its ``res_name``) must send heartbeats."""
        if watcher.startswith(UNMONITORED_PREFIXES):
            return False
        return self.settings.watchers_regex.match(watcher) is not None

    # -- events and heartbeats --------------------------------------------------------------

    async def handle_recv(self, data: tuple[str, str]) -> None:
        topic, message = data
        try:
            watcher, action = split_topic(topic)
            payload = json.loads(message)
        except ValueError:
            return
        if not isinstance(payload, dict) or not self.monitors(watcher):
            return
        pid = payload.get("process_pid")
        if action == "spawn" and isinstance(pid, int):
            self.table.track(pid, watcher, time.monotonic())
            self.log.debug(f"{watcher}: monitoring pid {pid}")
            self._arm()
        elif action == "reap" and isinstance(pid, int):
            self.table.forget(pid)
        elif action in ("stop", "remove"):
            self.table.forget_watcher(watcher)

    def heartbeat(self, data: bytes, addr: Any) -> None:
        try:
            pid = heartbeat_pid(self.settings.msg_regex, data[:MAX_DATAGRAM])
        except ValueError as exc:
            self._warn("bad", f"ignoring a heartbeat from {addr}: {exc}")
            return
        if not self.table.beat(pid, time.monotonic()):
            self._warn("unknown", f"heartbeat from pid {pid}, which is not monitored")

    def _warn(self, kind: str, message: str) -> None:
        count = self._throttle.hit(kind)
        if count is not None:
            self.log.warning(message if count == 1 else f"{message} ({count} such so far)")

    # -- killing ----------------------------------------------------------------------------

    def _arm(self) -> None:
        """(Re)arm the timer at the earliest deadline."""
        deadline = self.table.next_deadline()
        if self._timer is not None:
            if deadline is not None and self._timer.when() <= deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            delay = max(0.0, deadline - time.monotonic())
            self._timer = self.loop.call_at(self.loop.time() + delay, self._check)

    def _check(self) -> None:
        self._timer = None
        for pid, entry in self.table.overdue(time.monotonic()):
            task = self.loop.create_task(self._kill(pid, entry.watcher))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._arm()

    async def _kill(self, pid: int, watcher: str) -> None:
        name = self._names.get(watcher, watcher)
        self.log.warning(f"{name}: pid {pid} sent no heartbeat for {self.settings.limit:g}s: "
                         "killing it", watcher=name, pid=pid)
        props: dict[str, Any] = {"name": name, "pid": pid}
        if self.settings.stop_signal is not None:
            props["signum"] = self.settings.stop_signal
        if self.settings.graceful_timeout is not None:
            props["graceful_timeout"] = self.settings.graceful_timeout
        try:
            reply = await self.call("kill", **props)
        except CallError as exc:
            reply = {"status": "error", "reason": str(exc)}
        if reply.get("status") != "ok":
            # Watch it again: if it is still there and still silent, the next attempt comes
            # one full limit later (bounded, never a tight loop).
            self.log.error(f"{name}: could not kill pid {pid}: {reply.get('reason')}; "
                           f"trying again in {self.settings.limit:g}s", watcher=name, pid=pid)
            self.table.track(pid, watcher, time.monotonic())
            self._arm()
