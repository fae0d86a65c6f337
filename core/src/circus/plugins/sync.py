"""``CircusPlugin``: the plugin base class of the seed documentation, with blocking handlers."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

from circus.errors import CallError, CallTimeout
from circus.hooks import notify
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
        notify(self._hooks.circus_plugin_before_call, self,
               command=command, properties=props, cast=False)
        started = time.perf_counter()
        reply: dict[str, Any] | None = None
        error: BaseException | None = None
        try:
            future = self._command_thread().submit_call(command, wait, props)
            try:
                reply = future.result(wait + 5.0)
            except concurrent.futures.TimeoutError:
                raise CallTimeout(f"no reply to {command!r} within {wait:g} s") from None
            except concurrent.futures.CancelledError:
                raise CallError(f"{command!r}: the plugin is stopping") from None
            return reply
        except BaseException as exc:
            error = exc
            raise
        finally:
            notify(self._hooks.circus_plugin_after_call, self, command=command,
                   properties=props, cast=False, reply=reply, error=error,
                   duration=time.perf_counter() - started)

    def cast(self, command: str, **props: Any) -> None:
        """Send ``command`` without waiting; circusd sends no reply (errors are lost)."""
        notify(self._hooks.circus_plugin_before_call, self,
               command=command, properties=props, cast=True)
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            self._command_thread().submit_cast(command, props)
        except BaseException as exc:
            error = exc
            raise
        finally:
            notify(self._hooks.circus_plugin_after_call, self, command=command,
                   properties=props, cast=True, reply=None, error=error,
                   duration=time.perf_counter() - started)
