"""``Broadcast``: changes batched into one server-sent event per page every ``FLUSH`` seconds.

At 1,000 events/s a message per event would cost a JSON encoding and a socket write per event
and per page; one batch every 50 ms costs one encoding whatever the rate, and stays well below
what a person can notice. Each page has a bounded queue: a page that cannot keep up (a stalled
tab, a slow link) is disconnected rather than growing the plugin's memory; its browser reconnects
on its own and starts again from a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

#: seconds between two batches
FLUSH = 0.05
#: batches a page may have waiting before it is disconnected
PAGE_QUEUE = 200
#: the browser waits this long before reconnecting after a disconnection (milliseconds)
RETRY_MS = 1000

Snapshot = Callable[[], dict[str, Any]]
#: a watcher's current view, ``None`` when it is gone
ViewOf = Callable[[str], dict[str, Any] | None]


class Broadcast:
    """Collects changes on the plugin's loop and hands each page its batches."""

    def __init__(self, view_of: ViewOf) -> None:
        self.pages: set[asyncio.Queue[str | None]] = set()
        self._view_of = view_of
        self._events: list[dict[str, Any]] = []
        self._watchers: set[str] = set()
        self._history: dict[str, list[float]] = {}
        self._output: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self.sent = 0

    # -- what changed (called on the loop) --------------------------------------------------

    def event(self, record: dict[str, Any]) -> None:
        self._events.append(record)
        self._wake.set()

    def watcher(self, name: str) -> None:
        """``name`` changed: its view is read once per batch, however many events touched it
        (at 1,000 events/s most batches carry several events of the same watcher)."""
        self._watchers.add(name)
        self._wake.set()

    def history(self, points: dict[str, list[float]]) -> None:
        self._history.update(points)
        if points:
            self._wake.set()

    def output(self, lines: list[dict[str, Any]]) -> None:
        self._output.extend(lines)
        self._wake.set()

    # -- delivery ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Send a batch whenever something changed, at most every ``FLUSH`` seconds."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.pages:
                self._send(self._batch())
            else:
                self._batch()  # nobody watches: forget it (a new page gets a snapshot)
            await asyncio.sleep(FLUSH)

    def _batch(self) -> dict[str, Any]:
        batch: dict[str, Any] = {}
        if self._events:
            batch["events"], self._events = self._events, []
        if self._watchers:
            batch["watchers"] = [self._view_of(name) or {"name": name, "gone": True}
                                 for name in sorted(self._watchers)]
            self._watchers = set()
        if self._history:
            batch["history"], self._history = self._history, {}
        if self._output:
            batch["output"], self._output = self._output, []
        return batch

    def _send(self, batch: dict[str, Any]) -> None:
        message = f"data: {json.dumps(batch, separators=(',', ':'))}\n\n"
        for page in list(self.pages):
            try:
                page.put_nowait(message)
            except asyncio.QueueFull:  # too slow: drop it, its browser reconnects
                self.pages.discard(page)
                page.get_nowait()
                page.put_nowait(None)
        self.sent += 1

    async def page(self, snapshot: Snapshot) -> AsyncIterator[str]:
        """One page's stream: the snapshot first, then every batch, until it disconnects."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(PAGE_QUEUE)
        self.pages.add(queue)
        try:
            yield f"retry: {RETRY_MS}\nevent: snapshot\ndata: {json.dumps(snapshot())}\n\n"
            while (message := await queue.get()) is not None:
                yield message
        finally:
            self.pages.discard(queue)

    def close(self) -> None:
        """End every page's stream (the plugin stops)."""
        for page in list(self.pages):
            while not page.empty():
                page.get_nowait()
            page.put_nowait(None)
        self.pages.clear()
