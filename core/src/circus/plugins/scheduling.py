"""Timers on a plugin's event loop that any thread may arm and cancel.

Plugins need periodic work (statsd gauges) and one-shot retries (flapping). The timer lives on
the plugin's loop; when it fires, the callback runs where the plugin's handlers run (on the loop
for async plugins; handed to the handler thread for blocking ones, through ``dispatch``). Every
callback thus runs in one thread, next to ``handle_recv``, instead of on ad-hoc
``threading.Timer`` threads that race on shared state (contract F3). A periodic timer is re-armed
only after its callback ran, so a blocked handler thread never piles up pending runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

ErrorReporter = Callable[[BaseException], None]
#: hands a job to the thread that runs the plugin's handlers
Dispatch = Callable[[Callable[[], None]], None]


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
        dispatch: Dispatch | None = None,
    ) -> None:
        if delay < 0 or (interval is not None and interval <= 0):
            raise ValueError("delays must be >= 0 and intervals > 0")
        self._loop = loop
        self._callback = callback
        self._args = args
        self._interval = interval
        self._on_error = on_error
        self._dispatch = dispatch
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
        if self._dispatch is None:
            self._run()
        else:
            self._dispatch(self._run)

    def _run(self) -> None:
        if self._cancelled:
            return
        started = time.monotonic()
        try:
            result = self._callback(*self._args)
            if inspect.isawaitable(result):
                if self._in_loop_thread():
                    asyncio.ensure_future(result).add_done_callback(self._task_done)
                else:
                    asyncio.run_coroutine_threadsafe(
                        _awaited(result), self._loop).add_done_callback(self._task_done)
        except Exception as exc:
            self._on_error(exc)
        if self._interval is not None:
            # fixed rate: the next run is due one interval after this one started
            with contextlib.suppress(RuntimeError):  # loop closed: the plugin stopped
                self._arm_threadsafe(max(0.0, self._interval - (time.monotonic() - started)))

    def _task_done(self, task: asyncio.Future[Any] | concurrent.futures.Future[Any]) -> None:
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


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
