"""circusd's PUB sockets (events, stats stream): served natively unless CURVE needs libzmq.

A PUB socket reads from its subscribers too (their subscriptions), and libzmq buffers there the
way it does on a ROUTER: a peer streaming frames with the MORE flag and never the last one grew
circusd by 3 GB in 6 s, and with 4 KiB frames the memory was never returned. So, as for the
control channel (:mod:`circus.listeners.native`), circusd speaks ZMTP 3.0 itself on these
endpoints when CURVE is off: :class:`NativePublisher` reads what subscribers send through a
bounded :class:`~circus.wire.zmtp.FrameReader` (a subscription is one frame of at most
:data:`MAX_TOPIC` bytes; anything else ends the connection) and writes each message to the
subscribers whose prefixes match. Like libzmq's PUB it never waits for a subscriber: one whose
unread messages pass :data:`SUBSCRIBER_HWM` bytes misses messages (counted, logged at a
throttled rate) until it catches up; the plugins see the gap in ``seq``.

With CURVE (or an endpoint only libzmq parses) :class:`ZmqPublisher` wraps a libzmq PUB, where
CURVE keeps unauthenticated peers out before they can send anything.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, cast

import zmq
import zmq.asyncio

from circus.binding import BindPolicy
from circus.listeners import Address, native_address
from circus.listeners.server import StreamServer
from circus.logthrottle import Throttle
from circus.wire.zmtp import (
    SERVER_GREETING,
    Command,
    FrameReader,
    Greeting,
    Message,
    ProtocolError,
    accept_greeting,
    accept_ready,
    answer_command,
    message,
)

#: Longest subscription prefix (circus topics are ``watcher.NAME.ACTION``, ``stat.NAME``...).
MAX_TOPIC = 4096
#: Subscriptions one subscriber may hold.
MAX_SUBSCRIPTIONS = 1024
#: Unread bytes after which a subscriber misses messages (libzmq's PUB drops at its HWM too).
SUBSCRIBER_HWM = 1 << 20
#: Subscribers served at once; more are closed on arrival.
MAX_SUBSCRIBERS = 256
#: Socket types that may subscribe to a PUB.
SUBSCRIBER_TYPES = frozenset({"SUB", "XSUB"})


class Publisher(Protocol):
    """What the event publisher and the stats stream write to."""

    endpoint: str

    async def send_multipart(self, frames: list[bytes]) -> None:
        """Publish one message (topic first); never waits for a slow subscriber."""

    def write_now(self, frames: list[bytes]) -> bool:
        """Publish one message at once, from any callback on the loop, when this publisher
        can (True); False when only its owning task may write (the caller queues instead)."""

    async def aclose(self, linger: float) -> None:
        """Stop; messages already written get up to ``linger`` seconds to go out."""


async def open_publisher(
    context: zmq.asyncio.Context, endpoint: str, policy: BindPolicy, warn: Throttle,
) -> Publisher:
    """A bound publisher for the calling task (which then owns it); bind errors raise
    ``zmq.ZMQError`` whichever kind it is."""
    address = native_address(endpoint)
    publisher: Publisher
    if policy.curve is None and address is not None:
        native = NativePublisher(endpoint, address, policy, warn)
        await native.open()
        publisher = native
    else:
        publisher = ZmqPublisher(context, endpoint, policy)
    return publisher


class ZmqPublisher:
    """A libzmq PUB socket (CURVE, or endpoints the native server does not parse)."""

    def __init__(self, context: zmq.asyncio.Context, endpoint: str, policy: BindPolicy) -> None:
        self.endpoint = endpoint
        self._sock = context.socket(zmq.PUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        try:
            policy.bind(self._sock, endpoint)
        except BaseException:
            self._sock.close()
            raise

    async def send_multipart(self, frames: list[bytes]) -> None:
        await self._sock.send_multipart(frames)

    def write_now(self, frames: list[bytes]) -> bool:
        return False  # a libzmq socket is written by its owning task only

    async def aclose(self, linger: float) -> None:
        self._sock.setsockopt(zmq.LINGER, int(linger * 1000))
        self._sock.close()


class NativePublisher:
    """Serves SUB sockets on one endpoint from circusd's event loop."""

    def __init__(self, endpoint: str, address: Address, policy: BindPolicy, warn: Throttle) -> None:
        self.endpoint = endpoint
        self.warn = warn
        #: messages not written to a subscriber because it was not keeping up
        self.dropped = 0
        self._server: StreamServer[Subscriber] = StreamServer(
            endpoint, address, policy, limit=MAX_SUBSCRIBERS, warn=warn,
            refusal="refused a subscriber: too many connected",
        )
        #: the subscribers connected
        self.subscribers = self._server.connections

    async def open(self) -> None:
        await self._server.open(lambda: Subscriber(self))
        self.endpoint = self._server.endpoint

    async def send_multipart(self, frames: list[bytes]) -> None:
        self.write_now(frames)

    def write_now(self, frames: list[bytes]) -> bool:
        """Hand the message to every interested subscriber's transport (buffered by asyncio,
        bounded per subscriber): safe from any callback on the loop, so circusd's events can
        leave the moment they happen instead of one loop turn later."""
        topic, data = frames[0], b""
        for subscriber in self.subscribers:
            if subscriber.wants(topic):
                data = data or message(frames)
                subscriber.deliver(data)
        return True

    async def aclose(self, linger: float) -> None:
        await self._server.close(linger)

    def admit(self, subscriber: Subscriber) -> bool:
        return self._server.admit(subscriber)

    def missed(self, subscriber: Subscriber) -> None:
        self.dropped += 1
        subscriber.missed += 1
        if subscriber.missed == 1:
            self.warn.warning("a subscriber is not keeping up: it misses messages",
                              endpoint=self.endpoint, hwm=SUBSCRIBER_HWM)


class Subscriber(asyncio.Protocol):
    """One SUB connection: its handshake, its subscriptions, its unread messages."""

    def __init__(self, publisher: NativePublisher) -> None:
        self.publisher = publisher
        self.reader = FrameReader(
            keep_frames=1, keep_bytes=MAX_TOPIC + 1, hard_bytes=MAX_TOPIC + 1, hard_frames=1
        )
        self.transport: asyncio.Transport | None = None
        self.topics: list[bytes] = []
        #: messages this subscriber missed since it last kept up
        self.missed = 0
        self._ready = False
        self._gone = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if not self.publisher.admit(self):
            self._gone = True
            self.transport.abort()
            return
        self.transport.write(SERVER_GREETING)

    def data_received(self, data: bytes) -> None:
        if self._gone:
            return
        try:
            events, _ = self.reader.feed(data)
            for event in events:
                self._handle(event)
        except ProtocolError as exc:
            self.publisher.warn.warning("closed a subscriber", reason=str(exc),
                                        endpoint=self.publisher.endpoint)
            self.abort()

    def _handle(self, event: Greeting | Command | Message) -> None:
        if isinstance(event, Greeting):
            self._write(accept_greeting(event, "PUB"))
        elif isinstance(event, Message):
            if not self._ready:
                raise ProtocolError("a message before the handshake")
            body = event.frames[0] if event.frames else b""
            if body is None:
                raise ProtocolError(f"a subscription over {MAX_TOPIC} bytes")
            if body[:1] == b"\x01":  # ZMTP 3.0: subscribe; 0x00: cancel; others: ignored
                self._subscribe(body[1:])
            elif body[:1] == b"\x00":
                self._cancel(body[1:])
        elif event.name == "READY":
            accept_ready(event.data, SUBSCRIBER_TYPES, "PUB")
            self._ready = True
        elif event.name == "SUBSCRIBE":  # ZMTP 3.1 spelling of the same
            self._subscribe(event.data)
        elif event.name == "CANCEL":
            self._cancel(event.data)
        elif (answer := answer_command(event)) is not None:
            self._write(answer)

    def _subscribe(self, topic: bytes) -> None:
        if len(self.topics) >= MAX_SUBSCRIPTIONS:
            raise ProtocolError(f"more than {MAX_SUBSCRIPTIONS} subscriptions")
        self.topics.append(topic)

    def _cancel(self, topic: bytes) -> None:
        if topic in self.topics:  # subscriptions count, as in libzmq: cancel removes one
            self.topics.remove(topic)

    def wants(self, topic: bytes) -> bool:
        return not self._gone and any(topic.startswith(prefix) for prefix in self.topics)

    def deliver(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > SUBSCRIBER_HWM:
            self.publisher.missed(self)
            return
        self.missed = 0
        transport.write(data)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone = True
        self.publisher.subscribers.discard(self)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        self._gone = True
        self.publisher.subscribers.discard(self)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()


__all__ = [
    "MAX_SUBSCRIBERS",
    "MAX_TOPIC",
    "SUBSCRIBER_HWM",
    "NativePublisher",
    "Publisher",
    "Subscriber",
    "ZmqPublisher",
    "open_publisher",
]
