"""ZeroMQ client sockets for talking to a circusd: the event subscriber and the command clients.

Each class owns exactly one ZeroMQ socket, created and closed by the task (or thread) that uses
it, because ZeroMQ sockets are not thread-safe. The async classes create their socket lazily,
inside the running event loop that first uses them; the sync :class:`CommandClient` belongs to
the thread that uses it.

Requests carry a fresh ``id`` and replies are matched on it, so a reply that arrives after its
call timed out is recognised as stale and dropped instead of being taken as the answer to the
next call (the original plugin ``call`` had no ids and no timeout, contract P4). Every socket
is a CURVE client when given keys or when circusd put keys in the environment (``circus.curve``),
and carries the plugin token or client label in its routing id (``circus.credentials``). ZeroMQ
reconnects by itself when circusd restarts on the same endpoint; nothing here has to.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import zmq
import zmq.asyncio

from circus.credentials import routing_id
from circus.curve import ClientKeys, client_keys_from_env, configure_client
from circus.errors import CallError, CallTimeout
from circus.protocol import EVENT_PREFIX, cast_message, decode, encode, make_message, new_id

DEFAULT_TIMEOUT = 5.0
# Replies no caller waits for (stale ones, or answers to raw requests) are kept for
# ``recv_raw`` up to this many; older ones are dropped so nothing grows without bound.
_UNMATCHED_KEEP = 64

Frames = list[bytes]
Event = tuple[bytes, bytes]


def _as_list(endpoints: str | Iterable[str]) -> list[str]:
    items = [endpoints] if isinstance(endpoints, str) else list(endpoints)
    if not items:
        raise ValueError("at least one endpoint is required")
    return items


def _identity(label: str | None) -> str:
    """A fresh routing id: a plugin's token or circusctl's label rides in it
    (:mod:`circus.credentials`), which is how circusd knows who asks."""
    return routing_id(label).decode("ascii")


def _as_bytes(topic: str | bytes) -> bytes:
    return topic.encode("utf-8") if isinstance(topic, str) else topic


def reply_id(frames: Frames) -> Any:
    """The ``id`` of a one-frame JSON reply, or ``None`` when it has none or is not JSON."""
    if len(frames) != 1:
        return None
    try:
        reply = decode(frames[0])
    except ValueError:
        return None
    return reply.get("id") if isinstance(reply, dict) else None


def decode_reply(frames: Frames, command: str) -> dict[str, Any]:
    try:
        reply = decode(frames[0])
    except ValueError as exc:
        raise CallError(f"undecodable reply to {command!r}: {exc}") from exc
    if not isinstance(reply, dict):
        raise CallError(f"reply to {command!r} is not a JSON object: {reply!r}")
    return reply


class EventSubscriber:
    """SUB socket connected to one or several circusd event endpoints.

    Iterate it (``async for topic, payload in sub``) to receive two-frame events as bytes.
    Subscription is ZeroMQ prefix matching on the topic; the default is ``watcher.``, which is
    every event circusd publishes. Messages that are not two frames are skipped.
    """

    def __init__(
        self,
        endpoints: str | Iterable[str],
        topics: Sequence[str | bytes] = (EVENT_PREFIX,),
        *,
        hwm: int = 0,
        context: zmq.asyncio.Context | None = None,
        curve: ClientKeys | None = None,
    ) -> None:
        self.endpoints = _as_list(endpoints)
        self.curve = curve or client_keys_from_env()
        self.topics = [_as_bytes(t) for t in topics]
        # 0 = unbounded queue: a subscriber that falls behind during a burst catches up later
        # instead of silently losing events (ZeroMQ's default drops beyond 1000)
        self.hwm = hwm
        self._context = context
        self._socket: zmq.asyncio.Socket | None = None
        self._drain: zmq.Socket[bytes] | None = None

    def _ensure_socket(self) -> zmq.asyncio.Socket:
        if self._socket is None:
            ctx = self._context or zmq.asyncio.Context.instance()
            sock = ctx.socket(zmq.SUB)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, self.hwm)
            configure_client(sock, self.curve)
            for topic in self.topics:
                sock.setsockopt(zmq.SUBSCRIBE, topic)
            for endpoint in self.endpoints:
                sock.connect(endpoint)
            self._socket = sock
            # a blocking view of the same socket, used only for non-blocking reads by this
            # same task: it skips the future the asyncio wrapper makes per message
            self._drain = zmq.Socket.shadow(sock.underlying)
        return self._socket

    def connect(self) -> None:
        """Create and connect the socket now (before the first event is awaited).

        Events published before the connection is established are never seen (ZeroMQ's
        slow-joiner effect), so connect early and query state with commands if it matters.
        """
        self._ensure_socket()

    async def recv(self) -> Event:
        """The next event as ``(topic, payload)``."""
        sock = self._ensure_socket()
        while True:
            frames = await sock.recv_multipart()
            if len(frames) == 2:
                return frames[0], frames[1]

    async def recv_batch(self, limit: int = 1000) -> list[Event]:
        """Wait for one event, then take what else is already queued (up to ``limit``).

        Draining without awaiting is what lets one plugin consume tens of thousands of
        events per second: the per-await cost of the asyncio wrapper is paid once per batch.
        """
        self._ensure_socket()
        batch = [await self.recv()]
        drain = self._drain
        assert drain is not None
        while len(batch) < limit:
            try:
                frames = drain.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if len(frames) == 2:
                batch.append((frames[0], frames[1]))
        return batch

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            yield await self.recv()

    def close(self) -> None:
        if self._socket is not None:
            self._drain = None  # the shadow does not own the socket: nothing to close
            self._socket.close(linger=0)
            self._socket = None

    async def __aenter__(self) -> EventSubscriber:
        self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class AsyncCommandClient:
    """DEALER client for the control channel, for asyncio code (``zmq.asyncio``).

    One pump task owns the socket: callers hand it frames through a queue and wait on a future
    that the pump resolves when the reply with the matching ``id`` arrives. Any number of calls
    may be in flight at once, from any task of the loop the client was first used in.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        context: zmq.asyncio.Context | None = None,
        label: str | None = None,
        curve: ClientKeys | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.label = label
        self.curve = curve or client_keys_from_env()
        self.identity = _identity(self.label)
        self._context = context
        # frames to send, or None: "drop the socket and open a fresh one" (after a timeout)
        self._outbox: asyncio.Queue[Frames | None] | None = None
        self._pending: dict[str, asyncio.Future[Frames]] = {}
        self._unmatched: collections.deque[Frames] = collections.deque(maxlen=_UNMATCHED_KEEP)
        self._unmatched_ready: asyncio.Event | None = None
        self._pump: asyncio.Task[None] | None = None
        self._closed = False

    def _ensure_pump(self) -> asyncio.Queue[Frames | None]:
        if self._closed:
            raise CallError("the command client is closed")
        if self._outbox is None or self._pump is None:
            self._outbox = asyncio.Queue()
            self._unmatched_ready = asyncio.Event()
            self._pump = asyncio.get_running_loop().create_task(
                self._run(self._outbox), name=f"circus-dealer-{self.identity[:8]}"
            )
        return self._outbox

    def _open(self) -> zmq.asyncio.Socket:
        ctx = self._context or zmq.asyncio.Context.instance()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, self.identity.encode("ascii"))
        sock.setsockopt(zmq.LINGER, 0)
        configure_client(sock, self.curve)
        sock.connect(self.endpoint)
        return sock

    async def _run(self, outbox: asyncio.Queue[Frames | None]) -> None:
        sock = self._open()
        getter: asyncio.Future[Frames | None] = asyncio.ensure_future(outbox.get())
        receiver: asyncio.Future[Frames] = asyncio.ensure_future(sock.recv_multipart())
        try:
            while True:
                waiting: set[asyncio.Future[Any]] = {getter, receiver}
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if receiver in done:
                    self._dispatch(receiver.result())
                    receiver = asyncio.ensure_future(sock.recv_multipart())
                if getter in done:
                    frames = getter.result()
                    getter = asyncio.ensure_future(outbox.get())
                    if frames is not None:
                        await sock.send_multipart(frames)
                    else:
                        # requests still queued inside ZeroMQ (daemon down) die with the old
                        # socket instead of running whenever the daemon comes back
                        receiver.cancel()
                        sock.close(linger=0)
                        self.identity = _identity(self.label)
                        sock = self._open()
                        receiver = asyncio.ensure_future(sock.recv_multipart())
        finally:
            getter.cancel()
            receiver.cancel()
            sock.close(linger=0)

    def _dispatch(self, frames: Frames) -> None:
        msg_id = reply_id(frames)
        fut = self._pending.pop(msg_id, None) if isinstance(msg_id, str) else None
        if fut is not None and not fut.done():
            fut.set_result(frames)
            return
        self._unmatched.append(frames)
        if self._unmatched_ready is not None:
            self._unmatched_ready.set()

    async def call(
        self, command: str, timeout: float | None = None, **props: Any
    ) -> dict[str, Any]:
        """Send a request and return the reply with the same ``id``.

        Raises :class:`CallTimeout` when no reply arrives within ``timeout`` seconds (default
        ``self.timeout``); a reply arriving later is discarded.
        """
        message = make_message(command, **props)
        return await self.request(message, timeout=timeout)

    async def request(
        self, message: dict[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Send a prepared request (it needs a string ``id``) and wait for its reply."""
        outbox = self._ensure_pump()
        msg_id = str(message.setdefault("id", new_id()))
        command = str(message.get("command"))
        fut: asyncio.Future[Frames] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        wait = self.timeout if timeout is None else timeout
        try:
            outbox.put_nowait([encode(message)])
            frames = await asyncio.wait_for(fut, wait)
        except TimeoutError:
            self._pending.pop(msg_id, None)
            if not self._pending:  # nobody else waits on this socket: start afresh
                outbox.put_nowait(None)
            raise CallTimeout(
                f"no reply to {command!r} from {self.endpoint} within {wait:g} s"
            ) from None
        finally:
            self._pending.pop(msg_id, None)
        return decode_reply(frames, command)

    async def cast(self, command: str, **props: Any) -> None:
        """Send a request the daemon executes without replying (errors are lost, contract 2.5)."""
        self.cast_nowait(command, **props)

    def cast_nowait(self, command: str, **props: Any) -> None:
        """:meth:`cast` for synchronous code running on the client's loop."""
        self._ensure_pump().put_nowait([encode(cast_message(command, **props))])

    async def send_raw(self, frames: Sequence[bytes]) -> None:
        """Send arbitrary frames (for tests of malformed input); replies go to :meth:`recv_raw`."""
        self._ensure_pump().put_nowait(list(frames))

    async def recv_raw(self, timeout: float | None = None) -> Frames:
        """The oldest reply no call was waiting for; :class:`CallTimeout` if none arrives."""
        self._ensure_pump()
        assert self._unmatched_ready is not None
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while not self._unmatched:
            self._unmatched_ready.clear()
            remaining = deadline - time.monotonic()
            try:
                await asyncio.wait_for(self._unmatched_ready.wait(), max(remaining, 0))
            except TimeoutError:
                raise CallTimeout(f"no unmatched reply within {wait:g} s") from None
        return self._unmatched.popleft()

    async def close(self) -> None:
        """Stop the pump and close the socket (linger 0: unsent requests are dropped)."""
        self._closed = True
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(CallError("the command client was closed"))
        self._pending.clear()

    async def __aenter__(self) -> AsyncCommandClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class CommandClient:
    """Blocking DEALER client (circusctl, tests, scripts): the same API without asyncio.

    Not thread-safe: it belongs to the thread that uses it. A call that times out closes the
    socket and opens a fresh one on the next call, so a request still queued inside ZeroMQ
    (daemon down) is dropped rather than executed whenever the daemon comes back.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        label: str | None = None,
        curve: ClientKeys | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.label = label
        self.curve = curve or client_keys_from_env()
        self._context = context
        self._socket: zmq.Socket[bytes] | None = None
        self.identity = _identity(self.label)

    def _ensure_socket(self) -> zmq.Socket[bytes]:
        if self._socket is None:
            ctx = self._context or zmq.Context.instance()
            sock = ctx.socket(zmq.DEALER)
            self.identity = _identity(self.label)
            sock.setsockopt(zmq.IDENTITY, self.identity.encode("ascii"))
            sock.setsockopt(zmq.LINGER, 0)
            configure_client(sock, self.curve)
            sock.connect(self.endpoint)
            self._socket = sock
        return self._socket

    def call(self, command: str, timeout: float | None = None, **props: Any) -> dict[str, Any]:
        """Send a request and block until its reply; :class:`CallTimeout` on expiry."""
        return self.request(make_message(command, **props), timeout=timeout)

    def request(self, message: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """Send a prepared request (an ``id`` is added if missing) and wait for its reply."""
        msg_id = str(message.setdefault("id", new_id()))
        command = str(message.get("command"))
        sock = self._ensure_socket()
        sock.send(encode(message))
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            frames = self._recv_until(sock, deadline)
            if frames is None:
                self._reset()
                raise CallTimeout(
                    f"no reply to {command!r} from {self.endpoint} within {wait:g} s"
                )
            if reply_id(frames) == msg_id:
                return decode_reply(frames, command)
            # a stale reply of an earlier request: not ours, drop it

    @staticmethod
    def _recv_until(sock: zmq.Socket[bytes], deadline: float) -> Frames | None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if sock.poll(int(remaining * 1000) + 1, zmq.POLLIN):
                return sock.recv_multipart()

    def cast(self, command: str, **props: Any) -> None:
        """Send a request the daemon executes without replying."""
        self._ensure_socket().send(encode(cast_message(command, **props)))

    def send_raw(self, frames: Sequence[bytes]) -> None:
        """Send arbitrary frames (for tests of malformed input)."""
        self._ensure_socket().send_multipart(list(frames))

    def recv_raw(self, timeout: float | None = None) -> Frames:
        """The next reply, whatever its ``id``; :class:`CallTimeout` if none arrives."""
        wait = self.timeout if timeout is None else timeout
        frames = self._recv_until(self._ensure_socket(), time.monotonic() + wait)
        if frames is None:
            raise CallTimeout(f"no reply from {self.endpoint} within {wait:g} s")
        return frames

    def _reset(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def close(self) -> None:
        self._reset()

    def __enter__(self) -> CommandClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
