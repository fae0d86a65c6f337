"""The asyncio command client that speaks ZMTP itself: ``await self.call`` of an async plugin.

:class:`circus.transports.AsyncCommandClient` hands each request to a pump task, which hands it
to libzmq, whose I/O thread writes it; the reply comes back the same way. Here the request is
written by the task that calls, on the loop's own connection, and the reply resolves the
caller's future from ``data_received``: no pump, no other thread. The rules are the same as
the libzmq client's: any number of calls in flight from the loop's tasks, replies matched by
``id``, :class:`~circus.errors.CallTimeout` at the deadline, a restarted circusd reached by the
next call. The connection is made on first use, after circusd's half of the handshake (see
:class:`~circus.wire.dealer.DealerSession`), retrying with a short backoff while nothing
listens, up to the call's deadline.

Two things differ, both on purpose: a connection lost while calls wait fails them at once
(:class:`~circus.errors.CallError`, saying the command may or may not have run) instead of
waiting out their timeouts; and requests are never queued for a daemon that is not there, so a
request that timed out can never run later, when circusd comes back.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any, cast

from circus.credentials import routing_id
from circus.errors import CallError, CallTimeout
from circus.listeners import Address
from circus.logs import get_logger
from circus.protocol import cast_message, encode, make_message, new_id
from circus.transports import DEFAULT_TIMEOUT, AsyncCommandClient, decode_reply, reply_id
from circus.wire import native_target
from circus.wire.dealer import RETRY_FIRST, RETRY_MAX, DealerSession
from circus.wire.zmtp import ProtocolError, message

log = get_logger("circus.wire")

#: Bytes of requests written but not yet taken by the kernel (circusd not reading) past which a
#: call or cast is refused with an error instead of piling up in memory.
WRITE_LIMIT = 4 << 20

Frames = list[bytes]


class _Link(asyncio.Protocol):
    """One connection: feeds the session, resolves waiting calls, fails them when it ends."""

    def __init__(self, owner: NativeAsyncCommandClient, session: DealerSession) -> None:
        self.owner = owner
        self.session = session
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # a failed handshake nobody awaits any more (the connect was cancelled) is not an
        # "exception never retrieved"
        self.ready.add_done_callback(_retrieved)
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.session.opening())

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            answers = self.session.feed(data)
        except ProtocolError as exc:
            self._fail(exc)
            self.transport.abort()
            return
        if answers:
            self.transport.write(answers)
        if self.session.ready and not self.ready.done():
            self.ready.set_result(None)
        replies = self.session.replies
        while replies:
            self.owner.deliver(replies.popleft())

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("closed by circusd"))

    def _fail(self, exc: BaseException) -> None:
        if self.lost:
            return
        self.lost = True
        if not self.ready.done():
            self.ready.set_exception(exc if isinstance(exc, ProtocolError) else EOFError(exc))
        self.owner.lost(self, exc)

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        if self.transport.get_write_buffer_size() > WRITE_LIMIT:
            raise CallError(f"{self.owner.endpoint} is not reading requests "
                            f"({WRITE_LIMIT >> 20} MiB unsent)")
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class NativeAsyncCommandClient:
    """The asyncio command client of :class:`circus.transports.AsyncCommandClient`, without
    libzmq. Use it from the one event loop it was first used in."""

    def __init__(
        self,
        endpoint: str,
        address: Address,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        label: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.address = address
        self.timeout = timeout
        self.label = label
        self._link: _Link | None = None
        self._connecting: asyncio.Task[_Link] | None = None
        self._pending: dict[str, tuple[asyncio.Future[Frames], _Link]] = {}
        self._casts: set[asyncio.Task[None]] = set()
        self._closed = False
        #: replies that matched no waiting call (late ones, after a timeout)
        self.unmatched = 0

    # -- the API of AsyncCommandClient ------------------------------------------------------

    async def call(self, command: str, timeout: float | None = None, **props: Any
                   ) -> dict[str, Any]:
        """Send a request and return the reply with the same ``id`` (:class:`CallTimeout`
        after ``timeout`` seconds, default ``self.timeout``)."""
        return await self.request(make_message(command, **props), timeout=timeout)

    async def request(self, message: dict[str, Any], *, timeout: float | None = None
                      ) -> dict[str, Any]:
        """Send a prepared request (an ``id`` is added if missing) and await its reply."""
        msg_id = str(message.setdefault("id", new_id()))
        command = str(message.get("command"))
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        link = await self._connected(deadline, command, wait)
        future: asyncio.Future[Frames] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = (future, link)
        try:
            link.send(_frame(message))
            frames = await asyncio.wait_for(future, max(deadline - time.monotonic(), 0))
        except TimeoutError:
            raise CallTimeout(
                f"no reply to {command!r} from {self.endpoint} within {wait:g} s"
            ) from None
        except ConnectionError as exc:
            raise CallError(
                f"the connection to {self.endpoint} ended before the reply to {command!r} "
                f"came (the command may or may not have run): {exc}"
            ) from exc
        finally:
            self._pending.pop(msg_id, None)
        return decode_reply(frames, command)

    async def cast(self, command: str, **props: Any) -> None:
        """Send a request the daemon executes without replying."""
        deadline = time.monotonic() + self.timeout
        link = await self._connected(deadline, command, self.timeout)
        link.send(_frame(cast_message(command, **props)))

    def cast_nowait(self, command: str, **props: Any) -> None:
        """:meth:`cast` for synchronous code on the client's loop: written now when connected,
        else as soon as the connection is made (a failure is logged: nobody awaits it)."""
        link = self._link
        if link is not None and not link.lost:
            link.send(_frame(cast_message(command, **props)))
            return
        task = asyncio.get_running_loop().create_task(self._cast_logged(command, props))
        self._casts.add(task)
        task.add_done_callback(self._casts.discard)

    async def close(self) -> None:
        """Close the connection; calls still waiting fail with :class:`CallError`."""
        self._closed = True
        connecting, self._connecting = self._connecting, None
        if connecting is not None:
            connecting.cancel()
            # its own end (cancelled, or a connect error nobody awaits now) is not ours to
            # raise; a cancellation of the caller still propagates
            await asyncio.gather(connecting, return_exceptions=True)
        for task in list(self._casts):
            task.cancel()
        link, self._link = self._link, None
        if link is not None:
            link.close()
        for future, _ in self._pending.values():
            if not future.done():
                future.set_exception(CallError("the command client was closed"))
        self._pending.clear()

    async def __aenter__(self) -> NativeAsyncCommandClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the link's side ----------------------------------------------------------------------

    def deliver(self, frames: Frames) -> None:
        msg_id = reply_id(frames)
        entry = self._pending.get(msg_id) if isinstance(msg_id, str) else None
        if entry is not None and not entry[0].done():
            entry[0].set_result(frames)
        else:
            self.unmatched += 1

    def lost(self, link: _Link, exc: BaseException) -> None:
        if self._link is link:
            self._link = None
        error = exc if isinstance(exc, ConnectionError) else ConnectionResetError(str(exc))
        for future, owner in self._pending.values():
            if owner is link and not future.done():
                future.set_exception(error)

    # -- connecting ---------------------------------------------------------------------------

    async def _connected(self, deadline: float, command: str, wait: float) -> _Link:
        if self._closed:
            raise CallError("the command client is closed")
        link = self._link
        if link is not None and not link.lost:
            return link
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.get_running_loop().create_task(self._connect())
        try:
            return await asyncio.wait_for(
                asyncio.shield(self._connecting), max(deadline - time.monotonic(), 0)
            )
        except TimeoutError:
            raise CallTimeout(
                f"no reply to {command!r} from {self.endpoint} within {wait:g} s "
                "(could not connect)"
            ) from None
        except ProtocolError as exc:
            raise CallError(f"{self.endpoint} is not circusd's control channel: {exc}") from exc

    async def _connect(self) -> _Link:
        """Connect and finish the handshake, retrying with a backoff while nothing listens
        (bounded by the callers' deadlines: they stop waiting, and :meth:`close` cancels)."""
        loop = asyncio.get_running_loop()
        pause = RETRY_FIRST
        while True:
            link = _Link(self, DealerSession(self.endpoint, routing_id(self.label)))
            made = functools.partial(_same, link)
            try:
                if self.address.path is not None:
                    await loop.create_unix_connection(made, self.address.path)
                else:
                    await loop.create_connection(made, self.address.host or "127.0.0.1",
                                                 self.address.port)
                await link.ready
            except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, EOFError):
                link.close()  # nothing listens yet, or a daemon going away: retry
            except OSError as exc:
                link.close()
                raise CallError(f"cannot connect to {self.endpoint}: {exc}") from exc
            else:
                self._link = link
                return link
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_MAX)

    async def _cast_logged(self, command: str, props: dict[str, Any]) -> None:
        try:
            await self.cast(command, **props)
        except CallError as exc:
            log.warning("a cast was not sent", command=command, endpoint=self.endpoint,
                        error=str(exc))


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _same(link: _Link) -> _Link:
    return link


def _frame(request: dict[str, Any]) -> bytes:
    return message([encode(request)])


#: what :func:`open_async_command_client` returns: either client, one API
AsyncClient = AsyncCommandClient | NativeAsyncCommandClient


def open_async_command_client(
    endpoint: str, *, timeout: float = DEFAULT_TIMEOUT, label: str | None = None
) -> AsyncClient:
    """An asyncio command client for ``endpoint``: the native one unless libzmq's is needed
    (:func:`circus.wire.native_target`)."""
    address = native_target(endpoint)
    if address is None:
        return AsyncCommandClient(endpoint, timeout=timeout, label=label)
    return NativeAsyncCommandClient(endpoint, address, timeout=timeout, label=label)


__all__ = ["WRITE_LIMIT", "AsyncClient", "NativeAsyncCommandClient", "open_async_command_client"]
