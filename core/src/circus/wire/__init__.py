"""The ZeroMQ wire spoken without libzmq, on the client side of a plugin.

circusd reads ZMTP itself on its endpoints (:mod:`circus.listeners`); a plugin does the same on
its side when it can, for speed rather than memory: with libzmq every event and every reply
crosses libzmq's I/O thread before the plugin's own thread sees it, a wake-up of another thread
that costs 0.1-0.3 ms on an idle machine, twice per ``call`` and once per event. Speaking the
wire on the plugin's own sockets removes those hops (docs/benchmarks.md, exit -> call).

* :mod:`circus.wire.zmtp`: the framing, pure (shared with circusd's servers);
* :mod:`circus.wire.dealer`: a blocking command client, one per calling thread;
* :mod:`circus.wire.subscriber`: the plugin's event subscriber, on its event loop.

libzmq stays in charge wherever these do not apply: with CURVE (libzmq does the encryption),
for endpoints only libzmq can connect to (host names, interface names, abstract sockets), and
when ``CIRCUS_NO_NATIVE_WIRE=1`` is in the environment (to rule the native clients out when
chasing a problem). :func:`native_target` is the one place that decides.
"""

from __future__ import annotations

import os

from circus.curve import client_keys_from_env
from circus.listeners import Address, native_address

#: set to 1 to make every client of this process use libzmq
OPT_OUT_ENV = "CIRCUS_NO_NATIVE_WIRE"


def connect_address(endpoint: str) -> Address | None:
    """Where to connect for ``endpoint`` without libzmq: a Unix socket path, or an IP address
    and port (``localhost`` is 127.0.0.1); ``None`` when only libzmq can connect to it (a
    wildcard or missing port, a host name, an abstract socket, several endpoints)."""
    address = native_address(endpoint)
    if address is None or address.path is not None:
        return address
    if not address.port or address.host in ("0.0.0.0", "::"):
        return None
    return address


def native_target(endpoint: str) -> Address | None:
    """Where a native client connects for ``endpoint``, or ``None`` when libzmq's client must
    be used: CURVE keys in the environment, an endpoint only libzmq can connect to, or the
    opt-out variable set."""
    if os.environ.get(OPT_OUT_ENV, "") not in ("", "0"):
        return None
    if client_keys_from_env() is not None:
        return None
    return connect_address(endpoint)


__all__ = ["OPT_OUT_ENV", "connect_address", "native_target"]
