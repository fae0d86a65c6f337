"""The stats stream (contract 5): ``stat.*`` messages on a PUB socket every second.

0.19 ran this as a separate ``circusd-stats`` process that polled circusd over the control
channel and sampled with psutil; here a task of circusd publishes what the shared sampler
gathers, so the stream costs one ``/proc`` scan per second and never delays commands. The
topics and payloads are 0.19's, so its ``circus-top`` and other consumers work unchanged.
One task owns the socket, from bind to close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Sequence
from typing import Protocol

import structlog
import zmq
import zmq.asyncio

from circus.binding import BindPolicy
from circus.events import bind_publisher
from circus.listeners.publisher import Publisher
from circus.logthrottle import Throttle
from circus.stats.report import socket_messages, stream_messages
from circus.stats.sampler import Sampler

log = structlog.get_logger("circus.stats")

#: seconds between two rounds (0.19's ``circusd-stats`` delay)
INTERVAL = 1.0


class _Watched(Protocol):
    @property
    def res_name(self) -> str: ...

    def pids(self) -> list[int]: ...


class _Watchers(Protocol):
    @property
    def watchers(self) -> Sequence[_Watched]: ...

    def socket_reads(self) -> list[tuple[int, str, int]]:
        """``(fd, address, reads since the last call)`` per ``[socket:NAME]`` socket."""
        ...


class StatsStream:
    """Publishes a round of ``stat.*`` messages every :data:`INTERVAL` seconds on ``endpoint``."""

    def __init__(
        self,
        context: zmq.asyncio.Context,
        endpoint: str,
        sampler: Sampler,
        source: _Watchers,
        *,
        interval: float = INTERVAL,
        policy: BindPolicy | None = None,
        errors: Throttle | None = None,
    ) -> None:
        self.context = context
        #: the daemon's: with CURVE the stream is a CURVE server like the event channel (it
        #: names every process and its command line), and its ipc file gets the same mode
        self.policy = policy
        #: a round that fails fails again a second later (the sampler is gone, the socket
        #: broken): a few lines per minute, then a count, not one error line every second
        self.errors = errors or Throttle("circus.stats", period=60.0, burst=3)
        #: rounds that failed (tests wait on it)
        self.failures = 0
        self.endpoint = endpoint
        self.sampler = sampler
        self.source = source
        self.interval = interval
        #: rounds published (tests wait on it)
        self.rounds = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind (inside the owning task); raises ``zmq.ZMQError`` if the endpoint is taken."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(ready), name="circus-stats-stream")
        try:
            await ready
        except zmq.ZMQError as exc:  # circusd reports it as "cannot bind: ..." and exits 1
            raise zmq.ZMQError(exc.errno, f"stats_endpoint {self.endpoint}: {exc}") from None
        log.info("stats stream started", endpoint=self.endpoint)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self, ready: asyncio.Future[None]) -> None:
        sock = await bind_publisher(self.context, self.endpoint, ready, self.policy)
        if sock is None:
            return
        loop = asyncio.get_running_loop()
        try:
            next_round = loop.time()
            while True:
                try:
                    await self._round(sock)
                except (zmq.ZMQError, RuntimeError, OSError) as exc:
                    self.failures += 1
                    self.errors.error("stats round failed", error=str(exc))
                # fixed rate; after a slow round, skip the missed beats instead of bursting
                next_round += self.interval
                now = loop.time()
                next_round = max(next_round, now)
                await asyncio.sleep(next_round - now)
        finally:
            await sock.aclose(0)
            self.errors.flush("stats rounds failed (lines suppressed)")

    async def _round(self, sock: Publisher) -> None:
        groups = [(w.res_name, w.pids()) for w in self.source.watchers]
        me = os.getpid()
        sample = await self.sampler.sample([me, *(pid for _, pids in groups for pid in pids)])
        reads = self.source.socket_reads()
        messages = [*stream_messages(sample, groups, me), *socket_messages(reads)]
        for topic, payload in messages:
            await sock.send_multipart([topic.encode(), json.dumps(payload).encode()])
        self.rounds += 1
