"""The thread that owns a plugin's control connection (its DEALER socket).

ZeroMQ sockets are not thread-safe, yet plugin authors call ``call``/``cast`` from
``handle_recv``, from timers and from ``handle_stop`` (main thread). So the DEALER lives on a
small asyncio loop in a thread of its own, and every other thread hands it requests through
``run_coroutine_threadsafe``. A blocking ``call`` from the plugin's event loop thread therefore
cannot deadlock: the reply is read by this thread, not by the one waiting for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from typing import Any

from circus.errors import CallError
from circus.transports import AsyncCommandClient

Reply = dict[str, Any]


class CommandThread:
    """An :class:`AsyncCommandClient` running on a private loop in a daemon thread."""

    def __init__(self, endpoint: str, *, timeout: float, name: str = "circus-commands") -> None:
        self.endpoint = endpoint
        self._loop = asyncio.new_event_loop()
        self._client = AsyncCommandClient(endpoint, timeout=timeout)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            # the socket is closed here, by the thread that used it; calls still in flight
            # are cancelled so that no caller waits for a reply that cannot come
            self._loop.run_until_complete(self._client.close())
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    def _submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError:  # loop closed: the plugin is stopping or stopped
            coro.close()
            raise CallError("the plugin's control connection is closed") from None

    def submit_call(
        self, command: str, timeout: float, props: dict[str, Any]
    ) -> concurrent.futures.Future[Reply]:
        """Start a call; the future resolves to the reply or raises ``CallTimeout``."""
        return self._submit(self._client.call(command, timeout=timeout, **props))

    def submit_cast(self, command: str, props: dict[str, Any]) -> None:
        """Queue a cast without waiting (casts are sent in the order they are submitted)."""
        self._submit(self._client.cast(command, **props))

    def close(self, timeout: float = 10.0) -> None:
        """Stop the loop (closing the socket with linger 0) and join the thread."""
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already closed itself
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
