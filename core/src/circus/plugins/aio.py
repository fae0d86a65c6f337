"""``AsyncCircusPlugin``: the same lifecycle as ``CircusPlugin`` with ``async`` handlers.

``handle_recv`` is a coroutine awaited once per event, in order (a slow handler delays the next
event; start tasks with ``self.loop.create_task`` for concurrency). ``handle_init`` may be a
coroutine too (awaited in the loop); ``handle_stop`` may be a coroutine (awaited on the loop,
which is still running, while the main thread waits).
"""

from __future__ import annotations

import asyncio
from typing import Any

from circus.plugins.base import PluginCore
from circus.plugins.sync import CircusPlugin
from circus.transports import Event


class AsyncCircusPlugin(PluginCore):
    """Subclass it and implement ``async def handle_recv(self, data)``."""

    async def handle_recv(self, data: tuple[str, str]) -> None:
        """Awaited in the loop thread for every event: ``data`` is ``(topic, message)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle_recv")

    async def _deliver(self, batch: list[Event]) -> None:
        for topic, payload in batch:
            if self._halted:
                return
            data = self._filter(topic, payload)
            if data is None:
                continue
            try:
                await self.handle_recv(data)
            except Exception as exc:
                self._report("handle_recv", exc)

    def _deliver_batch(self, batch: list[Event]) -> Any:
        return self._deliver(batch)

    async def call(self, command: str, timeout: float | None = None, **props: Any
                   ) -> dict[str, Any]:
        """Send ``command`` and await circusd's reply (``CallTimeout`` after ``timeout`` s)."""
        wait = self.call_timeout if timeout is None else timeout
        with self._call_hooks(command, props, cast=False) as record:
            future = self._command_thread().submit_call(command, wait, props)
            reply: dict[str, Any] = await asyncio.wrap_future(future)
            record.reply = reply
            return reply

    def call_sync(self, command: str, timeout: float | None = None, **props: Any
                  ) -> dict[str, Any]:
        """Blocking ``call`` for code outside the loop (e.g. a sync ``handle_stop``)."""
        return CircusPlugin.call(self, command, timeout, **props)  # type: ignore[arg-type]

    def cast(self, command: str, **props: Any) -> None:
        """Send ``command`` without waiting (no reply; never blocks the loop)."""
        CircusPlugin.cast(self, command, **props)  # type: ignore[arg-type]
