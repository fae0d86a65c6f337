"""The bounded queue between a plugin's socket loop and its handlers.

The loop reads the SUB socket as fast as events come and appends them here; the handlers take
them at their own pace. A plugin that blocks (or is merely slow) under churn used to grow without
limit (170 MB a minute, issue 13); here the queue holds at most ``size`` events and, when full,
drops the *oldest* ones, so that what the plugin sees when it catches up is recent. Every drop is
counted; the consumer learns the count with its next batch (it becomes a :class:`Gap` report)
and the loop logs a warning at most every few seconds.

Two consumers exist: a thread (``CircusPlugin``, blocking handlers) waits on a
``threading.Condition``; a task (``AsyncCircusPlugin``) waits on an ``asyncio.Event`` of the
same loop that fills the queue. Both share the drop accounting below.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable

from circus.logs import get_logger
from circus.transports import Event

Job = Callable[[], None]

#: seconds between two "events dropped" warnings of one plugin
DROP_LOG_INTERVAL = 5.0


class _Bounded:
    def __init__(self, size: int, owner: str) -> None:
        if size < 1:
            raise ValueError("the queue size must be at least 1")
        self.size = size
        self._events: collections.deque[Event] = collections.deque(maxlen=size)
        self._dropped = 0
        self.dropped_total = 0
        self._last_log = 0.0
        self._log = get_logger(f"circus.plugins.{owner}")

    def _append(self, batch: list[Event]) -> None:
        events = self._events
        before = len(events)
        events.extend(batch)
        lost = before + len(batch) - len(events)
        if lost > 0:
            self._dropped += lost
            self.dropped_total += lost
            now = time.monotonic()
            if now - self._last_log >= DROP_LOG_INTERVAL:
                self._last_log = now
                self._log.warning("plugin is not keeping up: oldest events dropped",
                                  dropped=self.dropped_total, queue_size=self.size)

    def _take(self) -> tuple[list[Event], int]:
        events = list(self._events)
        self._events.clear()
        dropped, self._dropped = self._dropped, 0
        return events, dropped


class ThreadInbox(_Bounded):
    """Filled by the loop, emptied by the plugin's handler thread; also carries jobs (timers,
    reload) to that thread, so every handler of a blocking plugin runs in one thread."""

    def __init__(self, size: int, owner: str) -> None:
        super().__init__(size, owner)
        self._jobs: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, batch: list[Event]) -> None:
        with self._cond:
            self._append(batch)
            self._cond.notify()

    def submit(self, job: Job) -> None:
        """Run ``job`` in the handler thread (before the next events)."""
        with self._cond:
            self._jobs.append(job)
            self._cond.notify()

    def close(self) -> None:
        """Wake the consumer for good: :meth:`take` returns ``None`` from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def take(self) -> tuple[list[Job], list[Event], int] | None:
        """Block until jobs or events are there: ``(jobs, events, dropped)``; ``None`` once
        closed."""
        with self._cond:
            while not self._closed and not self._jobs and not self._events:
                self._cond.wait()
            if self._closed:
                return None
            jobs = list(self._jobs)
            self._jobs.clear()
            events, dropped = self._take()
            return jobs, events, dropped


class LoopInbox(_Bounded):
    """Filled and emptied on the same event loop (the async flavour)."""

    def __init__(self, size: int, owner: str) -> None:
        super().__init__(size, owner)
        self._ready = asyncio.Event()
        self._closed = False

    def put(self, batch: list[Event]) -> None:
        self._append(batch)
        self._ready.set()

    def close(self) -> None:
        """:meth:`take` returns ``None`` from now on."""
        self._closed = True
        self._ready.set()

    async def take(self) -> tuple[list[Event], int] | None:
        """Wait for events: ``(events, dropped)``; ``None`` once closed."""
        while not self._closed and not self._events:
            self._ready.clear()
            await self._ready.wait()
        if self._closed:
            return None
        return self._take()
