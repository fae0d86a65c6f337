"""``OutputFollower``: the output lines of the watchers pages are looking at, live.

circusd publishes a watcher's output lines on its event channel (``output.<watcher>.<wid>``)
only while someone holds a follow lease on it (the ``tail`` command with ``follow``; see
docs/circusctl.md), so output nobody looks at costs nothing. A page showing a watcher's output
renews the lease through the plugin every few seconds; the plugin reads the lines on a SUB socket
of its own (owned by one task, opened when the first page asks), and passes those of followed
watchers to the pages. The plugin's event subscription stays ``watcher.`` only, so output
lines never disturb the event sequence numbers it checks for gaps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from circus.wire.subscriber import open_subscriber

OUTPUT_PREFIX = "output."
#: seconds a lease lasts; pages renew it every ``LEASE / 3``
LEASE = 15.0

Deliver = Callable[[list[dict[str, Any]]], None]


def line_record(line: dict[str, Any]) -> dict[str, Any]:
    """A ``tail`` reply line or an ``output.`` message as pages receive it."""
    return {
        "watcher": line.get("watcher"), "seq": line.get("seq"), "pid": line.get("pid"),
        "wid": line.get("wid"), "stream": line.get("stream"), "time": line.get("time"),
        "text": line.get("text", line.get("line", "")),
    }


class OutputFollower:
    """Leases per watcher and the task that reads the published lines."""

    def __init__(self, endpoint: str, deliver: Deliver) -> None:
        self.endpoint = endpoint
        self._deliver = deliver
        self._until: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def follow(self, watcher: str) -> None:
        """Pass ``watcher``'s lines to the pages for the next ``LEASE`` seconds."""
        self._until[watcher] = time.monotonic() + LEASE
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._read(),
                                                                name="web-output")

    def following(self, watcher: str) -> bool:
        return self._until.get(watcher, 0.0) > time.monotonic()

    async def _read(self) -> None:
        subscriber = open_subscriber(self.endpoint, topics=(OUTPUT_PREFIX,), hwm=1000)
        subscriber.connect()
        try:
            while True:
                lines = []
                for _topic, payload in await subscriber.recv_batch():
                    with contextlib.suppress(ValueError):
                        message = json.loads(payload)
                        if isinstance(message, dict) and self.following(
                                str(message.get("watcher"))):
                            lines.append(line_record(message))
                if lines:
                    self._deliver(lines)
        finally:
            subscriber.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
