"""The three asyncio tasks that keep a :class:`~circus.top.model.TopModel` current.

Each task owns its own socket (stats SUB, events SUB, control DEALER) from creation to close.
A daemon that is down or restarting is not an error: the SUB sockets reconnect by themselves
and the snapshot task retries every :data:`SNAPSHOT_EVERY` seconds, saying so in ``status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from circus.curve import ClientKeys
from circus.errors import CallError
from circus.protocol import EVENT_PREFIX, STAT_PREFIX
from circus.top.model import TopModel
from circus.transports import AsyncCommandClient, EventSubscriber

#: seconds between two snapshots (an event asks for one sooner)
SNAPSHOT_EVERY = 2.0
#: a burst of events is folded into one snapshot after this pause
EVENT_SETTLE = 0.1
CALL_TIMEOUT = 3.0


def _decode(payload: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class Feeds:
    """Runs the feeds; ``changed`` is called (on the loop) whenever the model changed."""

    def __init__(self, model: TopModel, changed: Callable[[], None], *, stats_endpoint: str,
                 control_endpoint: str | None, pubsub_endpoint: str | None,
                 curve: ClientKeys | None = None) -> None:
        self.model = model
        #: CURVE keys of every socket (circusd's three channels are CURVE servers, or none is)
        self.curve = curve
        self.changed = changed
        self.stats_endpoint = stats_endpoint
        self.control_endpoint = control_endpoint
        self.pubsub_endpoint = pubsub_endpoint
        #: one line about the control channel, shown in the header
        self.status = "" if control_endpoint else "stats only (no control endpoint)"
        self._poke = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._stats(), name="top-stats"))
        if self.pubsub_endpoint:
            self._tasks.append(loop.create_task(self._events(), name="top-events"))
        if self.control_endpoint:
            self._tasks.append(loop.create_task(self._snapshots(), name="top-snapshots"))
        self._tasks.append(loop.create_task(self._expiry(), name="top-expiry"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _stats(self) -> None:
        async with EventSubscriber(self.stats_endpoint, [STAT_PREFIX], curve=self.curve) as sub:
            while True:
                batch = await sub.recv_batch()
                now = time.monotonic()
                for topic, payload in batch:
                    body = _decode(payload)
                    if body is not None:
                        self.model.on_stat(topic.decode("utf-8", "replace"), body, now)
                self.changed()

    async def _events(self) -> None:
        assert self.pubsub_endpoint is not None
        async with EventSubscriber(self.pubsub_endpoint, [EVENT_PREFIX], curve=self.curve) as sub:
            while True:
                for topic, payload in await sub.recv_batch():
                    body = _decode(payload)
                    if body is not None:
                        self.model.on_event(topic.decode("utf-8", "replace"), body)
                self._poke.set()
                self.changed()

    async def _snapshots(self) -> None:
        assert self.control_endpoint is not None
        client = AsyncCommandClient(self.control_endpoint, timeout=CALL_TIMEOUT, curve=self.curve)
        legacy = False
        try:
            while True:
                try:
                    legacy = await self._snapshot(client, legacy)
                    self.status = ""
                except CallError as exc:
                    self.status = f"control channel: {exc}"
                self.changed()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._poke.wait(), SNAPSHOT_EVERY)
                    await asyncio.sleep(EVENT_SETTLE)
                self._poke.clear()
        finally:
            await client.close()

    async def _snapshot(self, client: AsyncCommandClient, legacy: bool) -> bool:
        """One snapshot; returns whether the daemon lacks ``processes`` (Circus 0.19)."""
        if not legacy:
            reply = await client.call("processes")
            if reply.get("status") != "error":
                self.model.on_processes(reply, time.monotonic())
                return False
        reply = await client.call("status")
        statuses = reply.get("statuses")
        if isinstance(statuses, dict):
            self.model.on_statuses(statuses)
        return True

    async def _expiry(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.model.expire(time.monotonic())
            self.changed()


async def discover(control_endpoint: str, curve: ClientKeys | None = None) -> dict[str, Any]:
    """The daemon's ``globaloptions`` (endpoints of the event and stats channels)."""
    client = AsyncCommandClient(control_endpoint, timeout=CALL_TIMEOUT, curve=curve)
    try:
        reply = await client.call("globaloptions")
    finally:
        await client.close()
    options = reply.get("options")
    return options if isinstance(options, dict) else {}
