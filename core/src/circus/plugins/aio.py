"""``AsyncCircusPlugin``: the same lifecycle as ``CircusPlugin`` with ``async`` handlers.

Everything runs on the plugin's loop, which also owns both sockets, so ``await self.call(...)``
is one request on the DEALER and one reply, with no thread in between. ``handle_recv`` is a
coroutine awaited once per event, in order (a slow handler delays the next event while the loop
keeps reading into the bounded queue; start tasks with ``self.loop.create_task`` for
concurrency). ``handle_init``, ``handle_gap`` and ``handle_reload`` may be coroutines too;
``handle_stop`` may be a coroutine (awaited on the loop, still running, while ``stop()`` waits).
Never block the loop: from other threads use :meth:`AsyncCircusPlugin.call_sync`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from typing import Any

from circus.plugins.base import PluginCore
from circus.plugins.inbox import Job, LoopInbox
from circus.plugins.snapshot import Snapshot, snapshot_steps
from circus.transports import Event


class AsyncCircusPlugin(PluginCore):
    """Subclass it and implement ``async def handle_recv(self, data)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pc_inbox = LoopInbox(self.queue_size, self.name or type(self).__name__)
        self._pc_consumer: asyncio.Task[None] | None = None

    async def handle_recv(self, data: tuple[str, str]) -> None:
        """Awaited on the loop for every event: ``data`` is ``(topic, message)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle_recv")

    async def call(self, command: str, timeout: float | None = None, **props: Any
                   ) -> dict[str, Any]:
        """Send ``command`` and await circusd's reply (``CallTimeout`` after ``timeout`` s)."""
        wait = self.call_timeout if timeout is None else timeout
        client = self._pc_loop_client()
        with self._pc_call_hooks(command, props, cast=False) as record:
            request = client.call(command, timeout=wait, **props)
            if self._pc_on_loop():
                record.reply = await request
            else:  # awaited on another loop: run the request on ours
                record.reply = await asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(request, self.loop))
            return record.reply

    def call_sync(self, command: str, timeout: float | None = None, **props: Any
                  ) -> dict[str, Any]:
        """Blocking ``call`` for code off the loop (e.g. a sync ``handle_stop``, a thread)."""
        return self._pc_blocking_call(command, timeout, props)

    def cast(self, command: str, **props: Any) -> None:
        """Send ``command`` without waiting (no reply; never blocks the loop)."""
        if self._pc_on_loop():
            with self._pc_call_hooks(command, props, cast=True):
                self._pc_loop_client().cast_nowait(command, **props)
        else:
            self._pc_blocking_cast(command, props)

    async def snapshot(self) -> Snapshot:
        """The daemon's watchers, their states and pids now (``status`` + ``list``)."""
        steps = snapshot_steps()
        try:
            request = next(steps)
            while True:
                command, props = request
                request = steps.send(await self.call(command, **props))
        except StopIteration as done:
            result: Snapshot = done.value
            return result

    def _pc_on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    # -- delivery on the loop ---------------------------------------------------------------

    def _pc_put_events(self, batch: list[Event]) -> None:
        self._pc_inbox.put(batch)

    def _pc_dispatch(self, job: Job) -> None:
        self.loop.call_soon_threadsafe(job)

    async def _pc_run_init(self) -> None:
        try:
            result = self.handle_init()
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            self._pc_report("handle_init", exc)
            raise
        self._pc_consumer = asyncio.create_task(self._pc_handle_events(),
                                                name="circus-plugin-handlers")

    async def _pc_handle_events(self) -> None:
        while (work := await self._pc_inbox.take()) is not None:
            events, dropped = work
            for gap, data in self._pc_prepared(events, dropped):
                if gap is not None:
                    try:
                        result = self._pc_gap_stage(gap)
                        if inspect.isawaitable(result):
                            await result
                    except Exception as exc:
                        self._pc_report("handle_gap", exc)
                if data is not None:
                    try:
                        await self.handle_recv(data)
                    except Exception as exc:
                        self._pc_report("handle_recv", exc)

    def _pc_halt(self) -> None:
        if threading.current_thread() is self._pc_thread:
            raise RuntimeError("stop() blocks until handlers finish: call it off the loop")
        with contextlib.suppress(RuntimeError):  # loop already closed (it failed)
            future = asyncio.run_coroutine_threadsafe(self._pc_halt_on_loop(), self.loop)
            try:
                future.result(self.stop_timeout + 1)
            except Exception:
                self.log.warning("could not stop event delivery cleanly", exc_info=True)

    async def _pc_halt_on_loop(self) -> None:
        self._pc_halted = True
        self._pc_inbox.close()
        task = self._pc_consumer
        if task is None or task.done():
            return
        await asyncio.wait({task}, timeout=self.stop_timeout)  # a running handler may finish
        if not task.done():
            self.log.warning("a handler is still running after stop_timeout",
                             stop_timeout=self.stop_timeout)
            task.cancel()
            await asyncio.wait({task})
