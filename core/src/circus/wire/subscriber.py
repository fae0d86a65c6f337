"""A plugin's event subscriber speaking ZMTP itself, on the plugin's own event loop.

Why not libzmq's SUB: every event then crosses libzmq's I/O thread before the loop sees it,
two thread wake-ups per event (the I/O thread's, then the loop's through the socket's fd),
0.1-0.2 ms each on an idle machine. Reading the socket on the loop itself takes the event the
moment the kernel has it (part of what took "process exit -> plugin call answered" from 2.1 to
1.6 ms p50 on a quiet machine, docs/benchmarks.md), and lets one plugin consume 250,000 events/s
instead of 200,000.

:class:`NativeSubscriber` does what the plugin runtime uses of
:class:`circus.transports.EventSubscriber` (``connect``, ``recv``, ``recv_batch``, ``close``),
for one endpoint, and behaves like a libzmq SUB where it matters:

* it connects at once and keeps reconnecting, forever until closed (circusd not started yet,
  restarted, connection lost), after 0.1 s doubling to 1 s, and subscribes again on each new
  connection. The plugin runtime notices the restart and the missed events from the events'
  ``boot`` and ``seq``, as with libzmq;
* it is bounded: at most ``hwm`` events (and :data:`QUEUE_BYTES`) wait for the consumer;
  past that it stops reading the socket, the kernel buffer fills, and circusd's publisher
  drops for this subscriber (and reports it), exactly what libzmq's SUB does at its HWM. One
  message may not exceed :data:`MAX_MESSAGE`: past it the connection is dropped (with a
  warning) and made again;
* a server that is not a ZMTP 3 PUB (garbage, another socket type, CURVE required) is named in
  a rate-limited warning and retried with the same backoff, never a traceback.

:func:`open_subscriber` is the one place that decides between it and libzmq: the native one for
a single ``ipc://`` or ``tcp://IP:PORT`` endpoint without CURVE, libzmq otherwise (CURVE, host
names, several endpoints) or when ``CIRCUS_NO_NATIVE_WIRE=1`` is set
(:func:`circus.wire.native_target`).
"""

from __future__ import annotations

import asyncio
import collections
import errno
from collections.abc import Sequence
from typing import Protocol, cast

from circus.curve import ClientKeys
from circus.listeners import Address
from circus.logs import get_logger
from circus.logthrottle import Throttle
from circus.protocol import EVENT_PREFIX
from circus.transports import Event, EventSubscriber
from circus.wire import connect_address, native_target
from circus.wire.zmtp import (
    LONG,
    MORE,
    SERVER_GREETING,
    Command,
    FrameReader,
    Greeting,
    Message,
    ProtocolError,
    accept_ready,
    answer_command,
    frame,
    ready,
)

#: Largest message accepted; a bigger one drops the connection (then it is made again).
MAX_MESSAGE = 32 << 20
#: Frames a message may have; events have two, anything longer is another publisher's.
MAX_FRAMES = 64
#: Bytes of parsed events waiting for the consumer past which the socket is no longer read.
QUEUE_BYTES = 16 << 20
#: Events waiting for the consumer when ``hwm`` is 0 (libzmq's "no limit" is not kept here).
DEFAULT_HWM = 10_000
#: First wait before connecting again, and the longest (libzmq: 100 ms, no growth by default).
RETRY_FIRST = 0.1
RETRY_MAX = 1.0
#: Seconds a connection may take to be made and to finish its handshake.
HANDSHAKE_TIMEOUT = 10.0
#: Messages the fast path waits to see whole (bigger ones are read in pieces by the reader).
_SMALL = 1 << 16
#: Socket types that publish to a SUB.
PUBLISHER_TYPES = frozenset({"PUB", "XPUB"})
#: Errors that mean "the publisher is not there (yet)": expected while circusd starts or
#: restarts, so logged at info, once per outage.
_ABSENT = frozenset({errno.ENOENT, errno.ECONNREFUSED, errno.ECONNRESET, errno.EAGAIN})


def take_events(data: bytes, pos: int = 0) -> tuple[list[Event], int, bool]:
    """The complete two-frame messages from ``data[pos:]`` on (the shape of every event),
    where they end, and what the rest is: ``True`` when it is the start of another
    such message under :data:`_SMALL` bytes (keep it for the next bytes), ``False`` when a
    command, another shape or a big message comes next (for the
    :class:`~circus.wire.zmtp.FrameReader`, which reads them frame by frame and checks the
    limits).

    Why not the reader alone: it handles every case a frame at a time, about 3 us per event,
    which cost a plugin a tenth of its throughput; this takes an event in well under one
    (bench/bench_plugins.py --only throughput).
    """
    events: list[Event] = []
    end = len(data)
    while pos < end:
        first = _frame_at(data, pos, more=True)
        if first is None or first[1] >= _SMALL:
            return events, pos, first is not None and first[0] < 0
        start, size = first
        mid = start + size
        if start < 0 or mid >= end:
            return events, pos, True
        second = _frame_at(data, mid, more=False)
        if second is None or second[1] >= _SMALL:
            return events, pos, second is not None and second[0] < 0
        begin, length = second
        stop = begin + length
        if begin < 0 or stop > end:
            return events, pos, True
        events.append((data[start:mid], data[begin:stop]))
        pos = stop
    return events, pos, True


def _frame_at(data: bytes, pos: int, *, more: bool) -> tuple[int, int] | None:
    """Where the body of the data frame at ``pos`` starts and its size (-1, 0 when its
    header is not all there yet); ``None`` when it is not a data frame with MORE as given."""
    flags = data[pos]
    if flags & ~LONG != (MORE if more else 0):
        return None
    if not flags & LONG:
        return (pos + 2, data[pos + 1]) if pos + 2 <= len(data) else (-1, 0)
    if pos + 9 > len(data):
        return -1, 0
    return pos + 9, int.from_bytes(data[pos + 1 : pos + 9], "big")


class EventSource(Protocol):
    """What a consumer of circusd's events uses, whichever subscriber :func:`open_subscriber`
    picked."""

    def connect(self) -> None:
        """Start connecting now, so the subscription is in place early."""

    async def recv(self) -> Event:
        """The next event."""

    async def recv_batch(self, limit: int = 1000) -> list[Event]:
        """One event, then those already received (up to ``limit``)."""

    def close(self) -> None:
        """Stop receiving and close the connection."""

    async def __aenter__(self) -> EventSource:
        """Connect, for ``async with``."""

    async def __aexit__(self, *exc: object) -> None:
        """Close."""


def open_subscriber(
    endpoints: str | Sequence[str], topics: Sequence[str | bytes] = (EVENT_PREFIX,), *,
    hwm: int = 0, curve: ClientKeys | None = None,
) -> EventSource:
    """A subscriber to ``endpoints``: :class:`NativeSubscriber` when the wire can be spoken
    without libzmq (one ``ipc://`` or ``tcp://IP:PORT`` endpoint, no CURVE keys given nor in
    the environment, ``CIRCUS_NO_NATIVE_WIRE`` unset), else a libzmq
    :class:`~circus.transports.EventSubscriber` (with ``curve``, circusctl's and circus-top's
    keys from their command line)."""
    if isinstance(endpoints, str) and curve is None:
        address = native_target(endpoints)
        if address is not None:
            return NativeSubscriber(endpoints, topics, hwm=hwm, address=address)
    return EventSubscriber(endpoints, topics, hwm=hwm, curve=curve)


class SubscriberClosed(ConnectionError):
    """``recv`` on a subscriber that was closed (or closed while waiting)."""


class NativeSubscriber:
    """A ZMTP 3.0 SUB on one endpoint, read on the event loop that first uses it.

    One task (started by :meth:`connect`) owns the connection: it connects, reconnects with
    backoff and ends with :meth:`close`. Events are parsed as they arrive into a bounded queue
    that :meth:`recv_batch` empties.
    """

    def __init__(
        self, endpoint: str, topics: Sequence[str | bytes] = (EVENT_PREFIX,), *, hwm: int = 0,
        address: Address | None = None,
    ) -> None:
        found = address or connect_address(endpoint)
        if found is None:
            raise ValueError(f"{endpoint!r} needs libzmq (use open_subscriber)")
        self.endpoint = endpoint
        self.address = found
        self.topics = tuple(t.encode("utf-8") if isinstance(t, str) else t for t in topics)
        #: events held for the consumer at most (then the socket is no longer read)
        self.hwm = hwm if hwm > 0 else DEFAULT_HWM
        #: connections that completed the handshake, and attempts that did not
        self.connections = 0
        self.failures = 0
        self.log = get_logger("circus.wire.subscriber")
        self.warn = Throttle("circus.wire.subscriber")
        # events waiting for the consumer, in the batches they were parsed in (and each
        # batch's bytes on the wire): taking whole batches is what keeps recv_batch cheap
        self._batches: collections.deque[list[Event]] = collections.deque()
        self._sizes: collections.deque[int] = collections.deque()
        self._queued = 0
        self._queued_bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self._link: _Link | None = None  # the current connection
        self._paused = False
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._absent = 0  # connection attempts refused since the publisher was last reached

    # -- consumer side ----------------------------------------------------------------------

    def connect(self) -> None:
        """Start the connecting task on the running loop (without one: at the first
        :meth:`recv`). Events published before the subscription reaches the publisher are
        not received, as with any SUB."""
        if self._closed:
            raise SubscriberClosed("the subscriber is closed")
        if self._task is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._task = loop.create_task(self._run(), name=f"circus-sub {self.endpoint}")

    async def recv_batch(self, limit: int = 1000) -> list[Event]:
        """Wait for one event, then take every other one already parsed (up to ``limit``):
        one await per batch is what lets a plugin consume well over 100,000 events/s."""
        batches = self._batches
        while not batches:
            if self._closed:
                raise SubscriberClosed("the subscriber is closed")
            self.connect()
            if self._waiter is not None:  # as asyncio's streams: one reader at a time
                raise RuntimeError("recv is already awaited by another task")
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        taken: list[Event] = []
        while batches and len(taken) < limit:
            first, room = batches[0], limit - len(taken)
            if len(first) <= room:
                batches.popleft()
                self._queued_bytes -= self._sizes.popleft()
                if taken:
                    taken.extend(first)
                else:
                    taken = first
            else:  # split: the bytes of the part taken are estimated
                taken.extend(first[:room])
                share = self._sizes[0] * room // len(first)
                del first[:room]
                self._sizes[0] -= share
                self._queued_bytes -= share
        self._queued -= len(taken)
        if self._paused and self._below_low_mark():
            self._paused = False
            if self._link is not None:
                self._link.resume()
        return taken

    async def recv(self) -> Event:
        """The next event as ``(topic, payload)``."""
        return (await self.recv_batch(1))[0]

    def close(self) -> None:
        """Stop reconnecting, drop the connection and the events not taken yet; a ``recv``
        waiting raises :class:`SubscriberClosed`."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        link, self._link = self._link, None
        if link is not None:
            link.abort()
        self._batches.clear()
        self._sizes.clear()
        self._queued = self._queued_bytes = 0
        self._wake()
        self.warn.flush()

    async def __aenter__(self) -> NativeSubscriber:
        self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- connection side (the task and the link call these, on the loop) ---------------------

    def _push(self, events: list[Event], size: int) -> None:
        """Queue events parsed from ``size`` bytes (the caller's list is kept, not copied)."""
        self._batches.append(events)
        self._sizes.append(size)
        self._queued += len(events)
        self._queued_bytes += size
        self._wake()
        if not self._paused and self._over_high_mark():
            self._paused = True
            if self._link is not None:
                self._link.pause()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _over_high_mark(self) -> bool:
        return self._queued >= self.hwm or self._queued_bytes >= QUEUE_BYTES

    def _below_low_mark(self) -> bool:
        return self._queued <= self.hwm // 2 and self._queued_bytes <= QUEUE_BYTES // 2

    async def _run(self) -> None:
        """Connect, serve the connection until it ends, wait, again; until cancelled."""
        delay = RETRY_FIRST
        while True:
            link = _Link(self)
            try:
                await asyncio.wait_for(self._open(link), HANDSHAKE_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                self.failures += 1
                self._absent += 1
                self._connect_failed(exc, first=self._absent == 1)
            else:
                self._link = link
                if self._paused:
                    link.pause()
                try:
                    await link.finished
                finally:
                    self._link = None
                    link.abort()  # cancelled while connected (close, loop shutdown)
                if not link.ready:
                    self.failures += 1
                elif link.error is None:  # a working connection ended: reconnect soon
                    delay = RETRY_FIRST
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _open(self, link: _Link) -> None:
        loop = asyncio.get_running_loop()
        address = self.address
        if address.path is not None:
            await loop.create_unix_connection(lambda: link, address.path)
        else:  # connect_address gives a host and a port to every TCP endpoint it accepts
            await loop.create_connection(lambda: link, address.host or "127.0.0.1", address.port)

    def _connect_failed(self, exc: BaseException, *, first: bool) -> None:
        if isinstance(exc, TimeoutError):
            self.warn.warning("the event publisher did not accept the connection in time; "
                              "retrying", endpoint=self.endpoint, timeout=HANDSHAKE_TIMEOUT)
        elif isinstance(exc, OSError) and exc.errno in _ABSENT:
            if first:  # circusd not started yet, or restarting: expected, said once
                self.log.info("event publisher not reachable; retrying",
                              endpoint=self.endpoint, reason=exc.strerror or str(exc))
        else:
            self.warn.warning("cannot connect to the event publisher; retrying",
                              endpoint=self.endpoint, reason=str(exc))

    def _reached(self) -> None:
        """A connection completed its handshake (the link calls it)."""
        self.connections += 1
        if self._absent:
            self.log.info("event publisher reached", endpoint=self.endpoint,
                          attempts=self._absent + 1)
            self._absent = 0

    def _link_failed(self, reason: str) -> None:
        self.warn.warning("dropped the connection to the event publisher; retrying",
                          endpoint=self.endpoint, reason=reason)


class _Link(asyncio.Protocol):
    """One connection: our greeting and READY, the publisher's checked, the subscriptions,
    then messages parsed into the subscriber's queue."""

    def __init__(self, owner: NativeSubscriber) -> None:
        self.owner = owner
        self.reader = FrameReader(keep_frames=2, keep_bytes=MAX_MESSAGE, hard_bytes=MAX_MESSAGE,
                                  hard_frames=MAX_FRAMES)
        self.transport: asyncio.Transport | None = None
        self.ready = False
        #: why the connection was dropped on our side (``None``: the peer closed it)
        self.error: str | None = None
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        #: the start of a message the fast path saw only part of
        self._rest = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        # as-server = 0 and the NULL mechanism: the same greeting serves a client
        self.transport.write(SERVER_GREETING)
        self._timer = asyncio.get_running_loop().call_later(
            HANDSHAKE_TIMEOUT, self._fail, f"no ZMTP handshake within {HANDSHAKE_TIMEOUT:g} s")

    def data_received(self, data: bytes) -> None:
        size = len(data)
        if self._rest:
            data, self._rest = self._rest + data, b""
        batch: list[Event] = []
        topics = self.owner.topics
        pos, end = 0, len(data)
        while pos < end:
            if self.ready and self.reader.between_messages:
                # the fast path: whole two-frame messages, parsed here; a command, a message
                # of another shape or a big one goes to the reader, one message at a time
                events, pos, whole = take_events(data, pos)
                batch += [event for event in events if event[0].startswith(topics)]
                if whole:
                    self._rest = data[pos:]
                    break
            used = self._feed(data[pos:] if pos else data, batch)
            if used < 0:  # the connection is dropped; what came before it still counts
                break
            pos += used
        if batch:
            self.owner._push(batch, size)

    def _feed(self, data: bytes, batch: list[Event]) -> int:
        """Parse ``data`` with the reader (handshake, commands, any message) up to the end of
        the first message, adding the events to ``batch``; the bytes taken, or -1 when that
        ended the connection."""
        try:
            events, used = self.reader.feed(data, max_messages=1)
        except ProtocolError as exc:
            self._fail(str(exc))
            return -1
        topics = self.owner.topics
        for event in events:
            if isinstance(event, Message):
                if event.count == 2 and self.ready:
                    topic, body = event.frames
                    if topic is not None and body is not None and topic.startswith(topics):
                        batch.append((topic, body))
                elif not self.ready:
                    self._fail("a message before the handshake")
                    return -1
            elif not self._handle(event):
                return -1
        return used

    def _handle(self, event: Greeting | Command) -> bool:
        """Answer the handshake and the commands; false when that ended the connection."""
        transport = self.transport
        assert transport is not None
        try:
            if isinstance(event, Greeting):
                if event.mechanism != "NULL":
                    raise ProtocolError(
                        f"the publisher requires {event.mechanism} security; give the plugin "
                        "CURVE keys (circusd passes them to the plugins it starts)")
                transport.write(ready("SUB"))
            elif event.name == "READY" and not self.ready:
                accept_ready(event.data, PUBLISHER_TYPES, "SUB")
                self._handshake_done(transport)
            elif (answer := answer_command(event)) is not None:
                transport.write(answer)
        except ProtocolError as exc:
            self._fail(str(exc))
            return False
        return True

    def _handshake_done(self, transport: asyncio.Transport) -> None:
        self.ready = True
        self.owner._reached()
        if self._timer is not None:
            self._timer.cancel()
        # ZMTP 3.0 subscriptions: a message of 0x01 then the prefix (ZMTP 3.1 peers accept it)
        transport.write(b"".join(frame(b"\x01" + topic) for topic in self.owner.topics))

    def _fail(self, reason: str) -> None:
        if self.error is None and not self.finished.done():
            self.error = reason
            self.owner._link_failed(reason)
        self.abort()

    def pause(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if not self.finished.done():
            self.finished.set_result(None)


__all__ = [
    "DEFAULT_HWM",
    "MAX_MESSAGE",
    "QUEUE_BYTES",
    "EventSource",
    "NativeSubscriber",
    "SubscriberClosed",
    "open_subscriber",
]
