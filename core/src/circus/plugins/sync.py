"""``CircusPlugin``: the plugin base class of the seed documentation, with blocking handlers."""

from __future__ import annotations

import concurrent.futures
from typing import Any

from circus.errors import CallError, CallTimeout
from circus.plugins.base import PluginCore
from circus.transports import Event


class CircusPlugin(PluginCore):
    """Subclass it and implement :meth:`handle_recv`; see :mod:`circus.plugins.base`.

    Constructed as ``Plugin(endpoint, pubsub_endpoint, check_delay, ssh_server=None,
    **config)`` (the original positional form) or with keywords only (what the runner and
    circusd do, so a subclass may put its own required parameters first).
    """

    def handle_recv(self, data: tuple[str, str]) -> None:
        """Called in the loop thread for every event: ``data`` is ``(topic, message)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle_recv")

    def _deliver_batch(self, batch: list[Event]) -> None:
        for topic, payload in batch:
            if self._halted:
                return
            data = self._filter(topic, payload)
            if data is None:
                continue
            try:
                self.handle_recv(data)
            except Exception as exc:
                self._report("handle_recv", exc)

    def call(self, command: str, timeout: float | None = None, **props: Any) -> dict[str, Any]:
        """Send ``command`` and return circusd's reply; safe from any thread.

        Raises :class:`circus.errors.CallTimeout` after ``timeout`` seconds (default
        ``self.call_timeout``) instead of blocking forever.
        """
        wait = self.call_timeout if timeout is None else timeout
        with self._call_hooks(command, props, cast=False) as record:
            future = self._command_thread().submit_call(command, wait, props)
            try:
                reply: dict[str, Any] = future.result(wait + 5.0)
            except concurrent.futures.TimeoutError:
                raise CallTimeout(f"no reply to {command!r} within {wait:g} s") from None
            except concurrent.futures.CancelledError:
                raise CallError(f"{command!r}: the plugin is stopping") from None
            record.reply = reply
            return reply

    def cast(self, command: str, **props: Any) -> None:
        """Send ``command`` without waiting; circusd sends no reply (errors are lost)."""
        with self._call_hooks(command, props, cast=True):
            self._command_thread().submit_cast(command, props)
