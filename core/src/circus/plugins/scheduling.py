"""Timers on a plugin's event loop that any thread may arm and cancel.

Plugins need periodic work (statsd gauges) and one-shot retries (flapping). Running those on
the plugin's own loop keeps every callback in one thread, next to ``handle_recv``, instead of
on ad-hoc ``threading.Timer`` threads that race on shared state (contract F3).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from typing import Any

ErrorReporter = Callable[[BaseException], None]


class Scheduled:
    """A one-shot or periodic callback on a loop; :meth:`cancel` works from any thread."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        delay: float,
        callback: Callable[..., Any],
        args: tuple[Any, ...],
        *,
        interval: float | None,
        on_error: ErrorReporter,
    ) -> None:
        if delay < 0 or (interval is not None and interval <= 0):
            raise ValueError("delays must be >= 0 and intervals > 0")
        self._loop = loop
        self._callback = callback
        self._args = args
        self._interval = interval
        self._on_error = on_error
        self._handle: asyncio.TimerHandle | None = None
        self._cancelled = False
        self._lock = threading.Lock()
        self._arm_threadsafe(delay)

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def _in_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _arm_threadsafe(self, delay: float) -> None:
        if self._in_loop_thread():
            self._arm(delay)
        else:
            self._loop.call_soon_threadsafe(self._arm, delay)

    def _arm(self, delay: float) -> None:
        with self._lock:
            if not self._cancelled:
                self._handle = self._loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        if self._cancelled:
            return
        started = self._loop.time()
        try:
            result = self._callback(*self._args)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                task.add_done_callback(self._task_done)
        except Exception as exc:
            self._on_error(exc)
        if self._interval is not None:
            # fixed rate: the next run is due one interval after this one started
            self._arm(max(0.0, self._interval - (self._loop.time() - started)))

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            assert error is not None
            self._on_error(error)

    def cancel(self) -> None:
        """Stop it: no further run starts after this returns (a run in progress finishes)."""
        with self._lock:
            self._cancelled = True
            handle, self._handle = self._handle, None
        if handle is not None:
            if self._in_loop_thread():
                handle.cancel()
            elif not self._loop.is_closed():
                self._loop.call_soon_threadsafe(handle.cancel)
