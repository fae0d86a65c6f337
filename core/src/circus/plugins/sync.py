"""``CircusPlugin``: the plugin base class of the seed documentation, with blocking handlers.

Its handlers (``handle_init``, ``handle_recv``, ``handle_gap``, ``handle_reload``, timer
callbacks) run one after another in a *handler thread*, fed by the bounded queue the socket loop
fills (:mod:`circus.plugins.inbox`). A handler may block (a file write, a ``call``, a slow
server) without stalling the sockets: events keep being read and, past ``queue_size``, the oldest
are dropped and reported through ``handle_gap`` instead of memory growing without limit.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from circus.plugins.base import PluginCore
from circus.plugins.inbox import Job, ThreadInbox
from circus.plugins.scheduling import Dispatch
from circus.plugins.snapshot import Snapshot, run_steps, snapshot_steps
from circus.transports import Event


class CircusPlugin(PluginCore):
    """Subclass it and implement :meth:`handle_recv`; see :mod:`circus.plugins.base`.

    Constructed as ``Plugin(endpoint, pubsub_endpoint, check_delay, ssh_server=None,
    **config)`` (the original positional form) or with keywords only (what the runner and
    circusd do, so a subclass may put its own required parameters first).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pc_inbox = ThreadInbox(self.queue_size, self.name or type(self).__name__)
        self._pc_handler: threading.Thread | None = None

    def handle_recv(self, data: tuple[str, str]) -> None:
        """Called in the handler thread for every event: ``data`` is ``(topic, message)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle_recv")

    def call(self, command: str, timeout: float | None = None, **props: Any) -> dict[str, Any]:
        """Send ``command`` and return circusd's reply; safe from any thread.

        Raises :class:`circus.errors.CallTimeout` after ``timeout`` seconds (default
        ``self.call_timeout``) instead of blocking forever.
        """
        return self._pc_blocking_call(command, timeout, props)

    def cast(self, command: str, **props: Any) -> None:
        """Send ``command`` without waiting; circusd sends no reply (errors are lost)."""
        self._pc_blocking_cast(command, props)

    def snapshot(self) -> Snapshot:
        """The daemon's watchers, their states and pids now (``status`` + ``list``)."""
        return run_steps(snapshot_steps(), lambda command, props: self.call(command, **props))

    # -- the handler thread -----------------------------------------------------------------

    def _pc_put_events(self, batch: list[Event]) -> None:
        self._pc_inbox.put(batch)

    def _pc_dispatch(self, job: Job) -> None:
        self._pc_inbox.submit(job)

    def _pc_timer_dispatch(self) -> Dispatch | None:
        return self._pc_inbox.submit

    async def _pc_run_init(self) -> None:
        started: asyncio.Future[None] = self.loop.create_future()
        self._pc_handler = threading.Thread(
            target=self._pc_handler_main, args=(started,), daemon=True,
            name=f"circus-plugin-{self.name or 'handlers'}",
        )
        self._pc_handler.start()
        await started

    def _pc_handler_main(self, started: asyncio.Future[None]) -> None:
        try:
            self.handle_init()
        except Exception as exc:
            self._pc_report("handle_init", exc)
            self.loop.call_soon_threadsafe(_settle, started, exc)
            self._pc_calls.close_mine()
            return
        self.loop.call_soon_threadsafe(_settle, started, None)
        try:
            self._pc_handle_events()
        finally:
            self._pc_calls.close_mine()

    def _pc_handle_events(self) -> None:
        take = self._pc_inbox.take
        while (work := take()) is not None:
            jobs, events, dropped = work
            for job in jobs:
                job()
            for gap, data in self._pc_prepared(events, dropped):
                if gap is not None:
                    try:
                        self._pc_gap_stage(gap)
                    except Exception as exc:
                        self._pc_report("handle_gap", exc)
                if data is not None:
                    try:
                        self.handle_recv(data)
                    except Exception as exc:
                        self._pc_report("handle_recv", exc)

    def _pc_halt(self) -> None:
        self._pc_halted = True
        self._pc_inbox.close()
        handler = self._pc_handler
        if handler is not None and handler is not threading.current_thread():
            handler.join(self.stop_timeout)
            if handler.is_alive():
                self.log.warning("a handler is still running after stop_timeout",
                                 stop_timeout=self.stop_timeout)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
