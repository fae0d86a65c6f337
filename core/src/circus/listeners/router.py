"""The control channel on a libzmq ROUTER socket: used with CURVE, and for endpoints the
native listener does not parse (see :mod:`circus.listeners`).

libzmq reads the wire, so this listener cannot bound what a peer makes it buffer: it hands a
multipart message over only once the last frame arrived. With CURVE that needs an authorised
key (an unauthenticated peer never gets past the handshake); for the rest a memory guard
(:mod:`circus.memguard`) re-binds the socket when circusd's memory balloons, which makes
libzmq free every connection's buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from typing import Any

import zmq

from circus.binding import BindPolicy
from circus.listeners import MAX_FRAMES, Incoming, Wakeup, refuse_live_ipc
from circus.logs import get_logger
from circus.logthrottle import Throttle
from circus.memguard import GrowthTrip, trim

log = get_logger("circus.controller")

#: Seconds between two samples of circusd's memory by the guard (circus.memguard).
GUARD_INTERVAL = 0.02
#: How long a re-bind may wait for libzmq to release the old listener.
REBIND_TIMEOUT = 5.0


class RouterListener:
    """One ROUTER socket, used only from the controller's socket task."""

    def __init__(
        self,
        endpoint: str,
        context: zmq.Context[Any],
        policy: BindPolicy,
        *,
        keep_bytes: int,
        hard_bytes: int,
        wakeup: Wakeup,
        warn: Throttle,
        trip: GrowthTrip | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.context = context
        self.policy = policy
        self.keep_bytes = keep_bytes
        self.hard_bytes = hard_bytes
        self._wakeup = wakeup
        self._warn = warn
        self._socket: zmq.Socket[bytes] | None = None
        self._trip = trip or GrowthTrip()
        #: how many times the guard had the socket re-bound
        self.rebinds = 0
        self._reset_reason: str | None = None
        self._guard: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self._socket = self._bind(check_live=True)
        self._watch(self._socket)
        self._guard = asyncio.create_task(self._watch_memory(), name="circus-memory-guard")

    def _bind(self, *, check_live: bool) -> zmq.Socket[bytes]:
        # A plain (blocking-API) socket driven by the loop's reader callback on its FD: every
        # operation is non-blocking, so no per-message future is needed (cheaper round trips).
        socket: zmq.Socket[bytes] = zmq.Socket(self.context, zmq.ROUTER)
        try:
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.MAXMSGSIZE, self.hard_bytes)
            if check_live:
                refuse_live_ipc(self.endpoint)
            self.policy.bind(socket, self.endpoint)
        except BaseException:
            socket.close(linger=0)
            raise
        return socket

    def _watch(self, socket: zmq.Socket[bytes]) -> None:
        asyncio.get_running_loop().add_reader(socket.FD, self._wakeup)

    def _unwatch(self, socket: zmq.Socket[bytes]) -> None:
        asyncio.get_running_loop().remove_reader(socket.FD)

    async def _watch_memory(self) -> None:
        """Ask for a fresh socket when memory balloons (circus.memguard)."""
        while True:
            await asyncio.sleep(GUARD_INTERVAL)
            growth = self._trip.check()
            if growth is not None and self._reset_reason is None:
                self._reset_reason = (
                    f"circusd's memory grew by {growth >> 20} MiB within {self._trip.window:g} s"
                )
                self._wakeup()

    async def service(self) -> None:
        if self._reset_reason is not None and self._socket is not None:
            self._unwatch(self._socket)
            self._socket = await self._reopen(self._socket)
            self._watch(self._socket)

    async def _reopen(self, socket: zmq.Socket[bytes]) -> zmq.Socket[bytes]:
        """Close the socket (libzmq frees what every connection had buffered) and bind anew;
        clients reconnect by themselves, requests in flight on the old socket are lost.

        libzmq closes the old listener in its own thread, so a TCP port can stay taken for a
        moment: the bind is retried (bounded) without blocking the loop."""
        log.warning(
            "control socket re-bound to free buffered input (an unfinished multipart flood?)",
            reason=self._reset_reason,
        )
        socket.close(linger=0)
        self._reset_reason = None
        self.rebinds += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REBIND_TIMEOUT
        while True:
            try:
                fresh = self._bind(check_live=False)
                break
            except zmq.ZMQError as exc:
                if exc.errno != errno.EADDRINUSE or loop.time() > deadline:
                    raise
                await asyncio.sleep(0.01)
        trim()
        self._trip.reset()
        return fresh

    def receive(self) -> Incoming | None:
        # ZeroMQ's FD is edge-triggered: it only says "look at EVENTS", so EVENTS is checked
        # after every send and receive.
        socket = self._socket
        while socket is not None and int(socket.EVENTS) & zmq.POLLIN:
            try:
                return self._read(socket)
            except zmq.Again:
                continue
        return None

    def _read(self, socket: zmq.Socket[bytes]) -> Incoming:
        """Read one whole message, keeping a bounded part of it.

        ZeroMQ hands a multipart message over only once it is complete, so after the first
        frame the rest is already there and the blocking-API ``recv`` never waits.
        """
        if self.policy.curve is None:
            incoming = Incoming(socket.recv(zmq.NOBLOCK))
        else:
            first = socket.recv(zmq.NOBLOCK, copy=False)
            user = first.get("User-Id")
            incoming = Incoming(first.bytes, user if isinstance(user, str) else None)
        limit = self.keep_bytes
        while socket.getsockopt(zmq.RCVMORE):
            frame = socket.recv(copy=False)
            incoming.count += 1
            incoming.size += len(frame)
            if incoming.count <= MAX_FRAMES:
                incoming.frames.append(frame.bytes if incoming.size <= limit else None)
        return incoming

    def send(self, frames: list[bytes]) -> None:
        # A ROUTER never blocks on send: it drops replies to unknown or saturated peers.
        if self._socket is None:
            return
        try:
            self._socket.send_multipart(frames, zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            self._warn.warning("could not send a reply", error=str(exc))

    async def close(self, linger: float) -> None:
        if self._guard is not None:
            self._guard.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._guard
            self._guard = None
        socket, self._socket = self._socket, None
        if socket is not None:
            self._unwatch(socket)
            socket.close(linger=int(linger * 1000))


__all__ = ["GUARD_INTERVAL", "REBIND_TIMEOUT", "RouterListener"]
