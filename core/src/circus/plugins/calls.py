"""Blocking ``call``/``cast`` for a plugin: one DEALER socket per calling thread.

A client socket belongs to one thread. Blocking handlers (``CircusPlugin.handle_recv``, its
timers, ``handle_stop`` on the main thread) therefore each get a command client of their own,
created on first use in that thread. A blocking call then costs exactly what a client's call
costs: no handoff to another thread and back (the previous design routed every call through a
command thread and paid 2-3 ms for it, issue 13). The client speaks ZMTP on its own socket when
the endpoint allows (:mod:`circus.wire.dealer`), which also saves the hops through libzmq's I/O
thread. Replies are matched by ``id``, so the sockets never see each other's answers.

Sockets are closed by their own thread when it asks (:meth:`ThreadClients.close_mine`), and the
sockets of threads that have ended are closed at :meth:`ThreadClients.close`, when nothing can use
them any more.
"""

from __future__ import annotations

import threading
from typing import Any

from circus.errors import CallError
from circus.wire.dealer import BlockingClient, open_command_client


class ThreadClients:
    """A lazily created :class:`CommandClient` per thread, all for one endpoint."""

    def __init__(self, endpoint: str, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._clients: dict[int, tuple[threading.Thread, BlockingClient]] = {}
        self._closed = False

    def get(self) -> BlockingClient:
        """The calling thread's client (created on first use)."""
        client: BlockingClient | None = getattr(self._local, "client", None)
        if client is not None:
            return client
        with self._lock:
            if self._closed:
                raise CallError("the plugin is stopped: its control connection is closed")
            client = open_command_client(self.endpoint, timeout=self.timeout)
            thread = threading.current_thread()
            self._clients[thread.ident or 0] = (thread, client)
        self._local.client = client
        return client

    def call(self, command: str, timeout: float, props: dict[str, Any]) -> dict[str, Any]:
        return self.get().call(command, timeout=timeout, **props)

    def cast(self, command: str, props: dict[str, Any]) -> None:
        self.get().cast(command, **props)

    def close_mine(self) -> None:
        """Close the calling thread's socket (a thread about to end calls it)."""
        client: BlockingClient | None = getattr(self._local, "client", None)
        if client is None:
            return
        self._local.client = None
        with self._lock:
            self._clients.pop(threading.get_ident(), None)
        client.close()

    def close(self) -> None:
        """No new sockets from now on; close the caller's and those of ended threads.

        A socket of a thread still running stays open (closing it from here would touch it
        from a second thread); it is closed when that thread's storage is collected.
        """
        self.close_mine()
        with self._lock:
            self._closed = True
            ended = [key for key, (thread, _) in self._clients.items() if not thread.is_alive()]
            clients = [self._clients.pop(key)[1] for key in ended]
        for client in clients:
            client.close()
