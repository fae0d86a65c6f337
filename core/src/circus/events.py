"""The event channel: one asyncio task owns the PUB socket; others enqueue, or write at once.

Topics and payloads follow the contract (section 4): ``watcher.<res_name>.<action>`` and the
payload fields in the order of 0.19, then additive fields old subscribers ignore: on ``reap`` and
``stop``, ``expected`` (the daemon caused the exit); ``boot``, an id drawn once per daemon start,
and ``seq`` (+1 per event from 1, assigned when the event is enqueued so it matches publication
order). Together they let a subscriber tell "I missed events" (a jump in ``seq``) from "the daemon
restarted" (a new ``boot``), which ``seq`` alone cannot (it starts again at 1).

The queue between ``publish`` and the socket task is bounded: if the loop is starved long enough
to fill it, further events are dropped (counted in ``dropped``, logged at most once per second)
and subscribers see the hole as a ``seq`` gap instead of circusd growing without limit.

When nothing is queued and circusd serves the endpoint itself (CURVE off), ``publish`` writes the
event at once instead (:meth:`~circus.listeners.publisher.Publisher.write_now`): a process exit
then reaches the plugins before circusd starts the replacement, not one loop turn after it
(0.1-0.2 ms of "exit -> plugin call", docs/benchmarks.md). Order is kept: an event goes through
the queue whenever an earlier one is still in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import structlog
import zmq
import zmq.asyncio

from circus.binding import BindPolicy
from circus.listeners.publisher import Publisher, open_publisher
from circus.logthrottle import Throttle
from circus.protocol import event_topic

log = structlog.get_logger("circus.events")

#: Who asked for what is running now (``plugin:NAME``, ``circusctl``, ``client``), set by the
#: controller around each command; tasks inherit it, so every event a command causes carries
#: ``"by"`` while events of the daemon's own doing (a crash, a respawn) carry none.
REQUESTER: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "circus_requester", default=None
)


@contextlib.contextmanager
def requested_by(who: str | None) -> Iterator[None]:
    """Publish what happens in this block on behalf of ``who`` (``None``: the daemon's own doing).

    The loop runs a callback in a copy of the context of whoever *registered* it: a child's
    exit reader is registered by the command that spawned the child, a backoff timer by
    whatever failed last. Such callbacks act on the daemon's own account and say so here, or a
    crash long after a plugin's ``start`` would be published as that plugin's doing.
    """
    token = REQUESTER.set(who)
    try:
        yield
    finally:
        REQUESTER.reset(token)

_CLOSE = object()
#: time (ms) given to queued events to reach subscribers when the daemon shuts down
_CLOSE_LINGER_MS = 1000
#: events queued for the socket task at most (a burst of a few thousand is normal)
QUEUE_BOUND = 100_000
#: queued messages beyond which :meth:`EventPublisher.publish_raw` drops (a message holds at
#: most one 64 KiB pipe read, so output lines never hold more than 16 MiB nor crowd out events)
RAW_BACKLOG = 256


async def bind_publisher(
    context: zmq.asyncio.Context,
    endpoint: str,
    ready: asyncio.Future[None],
    policy: BindPolicy | None = None,
) -> Publisher | None:
    """A publisher bound to ``endpoint`` for the calling task (which then owns it), or
    ``None``; either way the outcome is reported on ``ready``, so whoever started the task
    learns of a bind failure (address in use...) at once. Shared with the stats stream.
    ``policy`` adds CURVE and owner-only ipc files (the default: owner-only files only); without
    CURVE circusd serves the endpoint itself (circus.listeners.publisher)."""
    try:
        publisher = await open_publisher(
            context, endpoint, policy or BindPolicy(), Throttle("circus.events")
        )
    except zmq.ZMQError as exc:
        ready.set_exception(exc)
        return None
    ready.set_result(None)
    return publisher


class EventPublisher:
    """Publishes watcher events on ``pubsub_endpoint`` (ZeroMQ PUB, bound)."""

    def __init__(
        self, context: zmq.asyncio.Context, endpoint: str, *, policy: BindPolicy | None = None
    ) -> None:
        self.context = context
        self.endpoint = endpoint
        #: CURVE and ipc file permissions (circus.binding)
        self.policy = policy
        self.seq = 0
        #: this daemon run's id, sent with every event as ``boot``
        self.boot = uuid.uuid4().hex
        #: events dropped because the queue to the socket task was full
        self.dropped = 0
        self._last_drop_log = 0.0
        #: ``publish_raw`` messages dropped because :data:`RAW_BACKLOG` were queued
        self.raw_dropped = 0
        self._queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_BOUND)
        self._task: asyncio.Task[None] | None = None
        #: the bound publisher while it may be written directly (see the module docstring)
        self._direct: Publisher | None = None
        #: messages queued and not yet written by the task (a direct write waits for none)
        self._in_flight = 0

    async def start(self) -> None:
        """Bind the socket (inside its owning task); raises if the endpoint cannot be bound."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(ready), name="circus-events")
        await ready

    def publish(self, watcher_name: str, action: str, payload: dict[str, Any]) -> int:
        """Queue one event; returns its sequence number. Safe from any code on the loop."""
        self.seq += 1
        body = dict(payload)
        body["boot"] = self.boot
        body["seq"] = self.seq
        by = REQUESTER.get()
        if by is not None:
            body["by"] = by
        topic = event_topic(watcher_name, action)
        if self._write_now(topic, body):
            return self.seq
        try:
            self._queue.put_nowait((topic, body))
        except asyncio.QueueFull:
            self._drop()
        else:
            self._in_flight += 1
        return self.seq

    def publish_raw(self, topic: bytes, body: dict[str, Any]) -> bool:
        """Queue a message outside the event sequence (no ``seq``), e.g. ``output.`` lines.

        Bounded: when :data:`RAW_BACKLOG` messages wait already (a process printing faster
        than the socket drains) the message is dropped and counted in ``raw_dropped``, so that
        such messages never take the room of events.
        """
        if self._write_now(topic, body):
            return True
        if self._queue.qsize() >= RAW_BACKLOG:
            self.raw_dropped += 1
            return False
        self._queue.put_nowait((topic, body))
        self._in_flight += 1
        return True

    def _write_now(self, topic: bytes, body: dict[str, Any]) -> bool:
        direct = self._direct
        if direct is None or self._in_flight:
            return False
        return direct.write_now([topic, json.dumps(body).encode()])

    def _drop(self) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now - self._last_drop_log >= 1.0:
            self._last_drop_log = now
            log.warning("event queue full: events dropped", dropped=self.dropped,
                        bound=QUEUE_BOUND)

    async def close(self) -> None:
        """Send what is queued, then close the socket."""
        self._direct = None  # from now on everything goes through the task, then it ends
        if self._task is None:
            return
        while self._queue.full():  # make room for the close marker: shutting down anyway
            self._queue.get_nowait()
            self._drop()
        self._queue.put_nowait(_CLOSE)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 5)
        except TimeoutError:
            self._task.cancel()
        self._task = None

    async def _run(self, ready: asyncio.Future[None]) -> None:
        sock = await bind_publisher(self.context, self.endpoint, ready, self.policy)
        if sock is None:
            return
        linger = 0.0
        self._direct = sock
        try:
            # one loop drains a burst without yielding per event: ``Queue.get`` returns at once
            # while items wait, and a send the socket takes at once completes without suspending
            while (item := await self._queue.get()) is not _CLOSE:
                topic, body = item
                await sock.send_multipart([topic, json.dumps(body).encode()])
                self._in_flight -= 1
            linger = _CLOSE_LINGER_MS / 1000
        finally:
            self._direct = None
            await sock.aclose(linger)
