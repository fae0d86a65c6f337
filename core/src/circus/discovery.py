"""Multicast discovery (contract 2.9): how a client finds circusd without knowing its endpoint.

circusd answers every datagram reaching its multicast group with ``{"endpoint": "<control
endpoint>"}`` sent back to the sender, as 0.19 does; ``circusctl --discover`` sends one datagram
and uses the first answer.

Differences from 0.19, on purpose:

* circusd listens only when ``multicast_endpoint`` is set in the config. 0.19 binds
  ``0.0.0.0:12027`` by default, a listener on every interface that nobody asked for; an empty
  value (``multicast_endpoint =``) disables discovery, as people already write to turn it off.
* the socket is bound to the group address, not ``0.0.0.0``, so it receives the group's
  datagrams only; ``?interface=ADDR`` in the endpoint chooses the interface joining the group
  (default: the kernel's choice), for example ``udp://239.255.0.1:12027?interface=127.0.0.1``
  keeps discovery on the loopback interface.
* answers are rate-limited (:data:`MAX_ANSWERS_PER_SECOND`): a flood of datagrams cannot make
  circusd a traffic amplifier.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import struct
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, cast

import structlog

log = structlog.get_logger("circus.discovery")

MAX_ANSWERS_PER_SECOND = 50
#: bytes read from a discovery datagram (the content is ignored, as in 0.19)
MAX_DATAGRAM = 1024
#: in a group membership: the kernel picks the interface (this is never a bind address)
ANY_INTERFACE = "0.0.0.0"


@dataclass(frozen=True)
class MulticastAddress:
    """``udp://GROUP:PORT[?interface=ADDR]`` parsed and checked."""

    group: str
    port: int
    interface: str = ANY_INTERFACE

    @classmethod
    def parse(cls, text: str) -> MulticastAddress:
        """Raise ``ValueError`` saying what is wrong (scheme, group range, port, interface)."""
        parsed = urllib.parse.urlsplit(text.strip())
        if parsed.scheme != "udp" or not parsed.hostname:
            raise ValueError(f"invalid multicast endpoint {text!r}: expected udp://GROUP:PORT")
        try:
            group = ipaddress.IPv4Address(parsed.hostname)
            port = parsed.port
        except ValueError as exc:
            raise ValueError(f"invalid multicast endpoint {text!r}: {exc}") from None
        if not group.is_multicast:
            raise ValueError(f"invalid multicast endpoint {text!r}: {group} is not a multicast "
                             "address (224.0.0.0-239.255.255.255)")
        if not port:
            raise ValueError(f"invalid multicast endpoint {text!r}: a port is required")
        query = urllib.parse.parse_qs(parsed.query)
        unknown = sorted(set(query) - {"interface"})
        if unknown:
            raise ValueError(f"invalid multicast endpoint {text!r}: unknown parameter(s) "
                             f"{', '.join(unknown)} (known: interface)")
        interface = query.get("interface", [ANY_INTERFACE])[-1]
        try:
            ipaddress.IPv4Address(interface)
        except ValueError as exc:
            raise ValueError(f"invalid multicast endpoint {text!r}: interface: {exc}") from None
        return cls(str(group), port, interface)

    def membership(self) -> bytes:
        return struct.pack("4s4s", socket.inet_aton(self.group), socket.inet_aton(self.interface))


def listener_socket(address: MulticastAddress) -> socket.socket:
    """The daemon's UDP socket, bound to the group and joined on the chosen interface.

    ``SO_REUSEADDR`` lets several daemons on one host share a group, as in 0.19 (each answers).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address.group, address.port))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, address.membership())
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _Responder(asyncio.DatagramProtocol):
    """Answers each datagram with the control endpoint; at most N answers a second."""

    def __init__(self, endpoint: str) -> None:
        self.answer = json.dumps({"endpoint": endpoint}).encode()
        self.transport: asyncio.DatagramTransport | None = None
        self._window = 0.0
        self._count = 0
        self._dropped = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        now = time.monotonic()
        if now - self._window >= 1.0:
            if self._dropped:
                log.warning("discovery datagrams ignored over the rate limit",
                            dropped=self._dropped, limit_per_second=MAX_ANSWERS_PER_SECOND)
            self._window, self._count, self._dropped = now, 0, 0
        if self._count >= MAX_ANSWERS_PER_SECOND:
            self._dropped += 1
            return
        self._count += 1
        if self.transport is not None:
            self.transport.sendto(self.answer, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("discovery socket error", error=str(exc))


async def start_responder(
    multicast_endpoint: str, control_endpoint: str
) -> asyncio.DatagramTransport | None:
    """Answer discovery datagrams until the returned transport is closed.

    An unusable endpoint or socket disables discovery with a warning (0.19 behaviour): circusd
    itself does not depend on it.
    """
    try:
        sock = listener_socket(MulticastAddress.parse(multicast_endpoint))
    except (ValueError, OSError) as exc:
        log.warning("multicast discovery disabled", multicast_endpoint=multicast_endpoint,
                    error=str(exc))
        return None
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Responder(control_endpoint), sock=sock
    )
    log.info("answering multicast discovery", multicast_endpoint=multicast_endpoint)
    return transport


def discover(multicast_endpoint: str, timeout: float) -> str:
    """Send one discovery datagram; return the endpoint of the first circusd answering.

    Raises ``ValueError`` for a bad endpoint and ``TimeoutError`` when nothing answers in
    ``timeout`` seconds. Datagrams that are not an answer are skipped.
    """
    address = MulticastAddress.parse(multicast_endpoint)
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP) as sock:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                        socket.inet_aton(address.interface))
        sock.sendto(b"circusctl discovery", (address.group, address.port))
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data, _ = sock.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                break
            try:
                endpoint = json.loads(data).get("endpoint")
            except (ValueError, AttributeError):
                continue
            if isinstance(endpoint, str) and endpoint:
                return endpoint
    raise TimeoutError(f"no circusd answered on {multicast_endpoint} within {timeout:g}s")
