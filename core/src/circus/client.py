"""``CircusClient``: the blocking control-channel client of circusctl, tests and scripts.

A thin layer over :class:`circus.transports.CommandClient` (which owns the DEALER socket, the
request ids and the timeout) that keeps the call shape of the original ``circus.client``:
``call`` takes either a prepared request mapping or a command name with its properties, so code
written against 0.19 (``client.call({"command": "list", "properties": {}})``) keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from circus.curve import ClientKeys
from circus.protocol import DEFAULT_ENDPOINT
from circus.transports import DEFAULT_TIMEOUT, CommandClient

__all__ = ["CircusClient"]


class CircusClient:
    """Synchronous client for one circusd control endpoint.

    Not thread-safe (it owns one ZeroMQ socket): use one client per thread. Every call raises
    :class:`circus.errors.CallTimeout` when no reply arrives within ``timeout`` seconds, and
    :class:`circus.errors.CallError` for an undecodable reply; error *replies* from the daemon
    are returned as mappings (``status == "error"``), as the original client did.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        label: str | None = None,
        curve: ClientKeys | None = None,
    ) -> None:
        """``label`` names the client in the events its commands cause (``"by"``); ``curve``
        makes it a CURVE client (default: keys from the environment, if any)."""
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        self.endpoint = endpoint
        self._transport = CommandClient(endpoint, timeout=timeout, label=label, curve=curve)

    @property
    def timeout(self) -> float:
        """Seconds each call waits for its reply (changeable between calls)."""
        return self._transport.timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        if value <= 0:
            raise ValueError(f"timeout must be positive, got {value!r}")
        self._transport.timeout = value

    def call(self, message_or_command: str | Mapping[str, Any], **props: Any) -> dict[str, Any]:
        """Send a request and return the daemon's reply.

        ``call("incr", name="web", nb=2)`` builds the request; ``call({"command": "incr",
        "properties": {...}})`` sends a prepared one (an ``id`` is added when missing, and
        ``props`` are merged into its properties).
        """
        if isinstance(message_or_command, str):
            return self._transport.call(message_or_command, **props)
        message = dict(message_or_command)
        if "command" not in message:
            raise ValueError("a request mapping needs a 'command' key")
        if props:
            message["properties"] = {**(message.get("properties") or {}), **props}
        return self._transport.request(message)

    def cast(self, command: str, **props: Any) -> None:
        """Send a request the daemon executes without replying (its errors are never seen)."""
        self._transport.cast(command, **props)

    def close(self) -> None:
        self._transport.close()

    # The original client's name for close().
    stop = close

    def __enter__(self) -> CircusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
