"""The control channel: one ROUTER socket, owned by one task, answering commands.

Framing (contract 2.1, with the REQ improvement of section 12):

* ``[identity, payload]`` from DEALER clients (circusctl, plugins) is answered with
  ``[identity, reply]``;
* ``[identity, b"", payload]`` from REQ clients is answered with ``[identity, b"", reply]``
  (0.19 silently drops these, C1);
* anything else is dropped (there is no envelope to answer through) with a rate-limited warning.

Input is bounded (issue 9): a message is read frame by frame, and only the first
:data:`MAX_FRAMES` frames are kept, only while their total stays within ``max_message_size``;
the rest is read and discarded, so a message of a million frames costs no more than one of
three. A well-framed request over ``max_message_size`` is answered with errno 3 ("request of N
bytes exceeds the M-byte limit"), so a REQ client is never left waiting; a single frame over
``hard_limit`` makes ZeroMQ drop the sender's connection before it is ever read
(``ZMQ_MAXMSGSIZE``).

Commands that may wait (start, stop, kill, ...) run as tasks of their own and hand their reply
back through an outbox the socket task drains, so a command that waits out a 30 s graceful stop
never delays other clients. Quick commands (status, list, ...) are answered inline.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket as stdsocket
from collections import deque

import zmq
import zmq.asyncio

from circus.binding import BindPolicy
from circus.commands.api import ArbiterAPI
from circus.commands.dispatch import MAX_MESSAGE_SIZE, Dispatcher, Request, oversize_reply
from circus.credentials import REGISTRY, Grant, requester
from circus.errors import Errno
from circus.events import requested_by
from circus.logs import get_logger
from circus.logthrottle import Throttle
from circus.memguard import GrowthTrip, trim
from circus.protocol import JsonDict, encode, error_reply

log = get_logger("circus.controller")

#: How long ``stop()`` lets running commands finish so their replies still go out.
STOP_GRACE = 5.0
#: Requests handled back to back before the socket task lets other tasks run.
FAIR_SHARE = 32
#: Milliseconds the socket may keep undelivered replies after it is closed.
CLOSE_LINGER_MS = 1000
#: Most frames a request may have: identity, empty delimiter (REQ), payload.
MAX_FRAMES = 3
#: Most operations (commands that may wait, see the module docstring) running at once, those
#: already answered ``ok`` included; beyond it a request is refused until some end.
MAX_OPERATIONS = 4096
#: Commands never refused for that: ``quit`` ends every operation, so it must always get in.
UNBOUNDED = frozenset({"quit"})
#: Largest single frame ZeroMQ accepts at all; a bigger one drops the sender's connection.
#: Between ``MAX_MESSAGE_SIZE`` and this, the sender gets an errno 3 reply instead.
HARD_FRAME_LIMIT = 32 << 20
#: Seconds between two samples of circusd's memory by the guard (circus.memguard).
GUARD_INTERVAL = 0.02
#: How long a re-bind may wait for libzmq to release the old listener.
REBIND_TIMEOUT = 5.0


class Incoming:
    """One message as read from the ROUTER: the kept frames plus what was counted.

    ``frames`` holds at most :data:`MAX_FRAMES` entries; a frame that would have taken the
    total over the size limit is kept as ``None`` (its bytes were never copied).
    """

    __slots__ = ("count", "frames", "size", "user")

    def __init__(self, identity: bytes, user: str | None = None) -> None:
        self.frames: list[bytes | None] = [identity]
        self.count = 1
        self.size = 0
        #: with CURVE, the z85 public key that authenticated the sender (ZeroMQ's User-Id)
        self.user = user


class Controller:
    """Binds the control endpoint and answers requests until :meth:`stop`."""

    def __init__(
        self,
        arbiter: ArbiterAPI,
        endpoint: str,
        context: zmq.asyncio.Context,
        *,
        max_message_size: int = MAX_MESSAGE_SIZE,
        hard_limit: int = HARD_FRAME_LIMIT,
        policy: BindPolicy | None = None,
    ) -> None:
        self.arbiter = arbiter
        self.endpoint = endpoint
        self.context = context
        self.max_message_size = max_message_size
        self.hard_limit = max(hard_limit, max_message_size)
        self._warn = Throttle("circus.controller")
        self.policy = policy or BindPolicy(owner=getattr(arbiter, "endpoint_owner", None))
        self.dispatcher = Dispatcher(arbiter)
        self._outbox: deque[list[bytes]] = deque()
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._trip = GrowthTrip()
        self._reset_reason: str | None = None
        self._guard: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind (errors such as "Address already in use" propagate) and start serving."""
        if self._task is not None:
            raise RuntimeError("controller already started")
        bound: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._serve(bound), name="circus-controller")
        try:
            await bound
        except BaseException:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
            raise
        self._guard = asyncio.create_task(self._watch_memory(), name="circus-memory-guard")

    async def _watch_memory(self) -> None:
        """Ask the socket task for a fresh socket when memory balloons (circus.memguard)."""
        while True:
            await asyncio.sleep(GUARD_INTERVAL)
            growth = self._trip.check()
            if growth is not None and self._reset_reason is None:
                self._reset_reason = f"circusd's memory grew by {growth >> 20} MiB within " \
                    f"{self._trip.window:g} s"
                self._wakeup.set()

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Let running commands answer (up to ``grace`` seconds), then close the socket.

        Safe to call from a command task (it does not wait for itself). Commands still running
        after ``grace`` are cancelled; their clients time out.
        """
        if self._task is None:
            return
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None
        current = asyncio.current_task()
        pending = [t for t in self._inflight if t is not current]
        if pending:
            await asyncio.wait(pending, timeout=grace)
        for task in self._inflight:
            if task is not current:
                task.cancel()
        self._closing = True
        self._wakeup.set()
        task, self._task = self._task, None
        await task

    # -- the socket task ---------------------------------------------------------------------

    def _open(self, *, check_live: bool = True) -> zmq.Socket[bytes]:
        # A plain (blocking-API) socket driven by the loop's reader callback on its FD: every
        # operation is non-blocking, so no per-message future is needed (cheaper round trips).
        socket: zmq.Socket[bytes] = zmq.Socket(self.context, zmq.ROUTER)
        try:
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.MAXMSGSIZE, self.hard_limit)
            if check_live:
                self._refuse_live_ipc()
            self.policy.bind(socket, self.endpoint)
        except BaseException:
            socket.close(linger=0)
            raise
        return socket

    def _refuse_live_ipc(self) -> None:
        """Binding an ``ipc://`` path unlinks whatever socket file is there, so a second
        circusd started by mistake would silently take the control channel away from a
        running one. Refuse when something still accepts connections on that path."""
        if not self.endpoint.startswith("ipc://"):
            return
        path = self.endpoint[len("ipc://") :]
        if not os.path.exists(path):
            return
        probe = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError:
            return  # a stale file left by a dead daemon: binding replaces it
        finally:
            probe.close()
        raise zmq.ZMQError(
            errno.EADDRINUSE, f"Address already in use: another process listens on {self.endpoint}"
        )

    async def _serve(self, bound: asyncio.Future[None]) -> None:
        try:
            socket = self._open()
        except BaseException as exc:
            bound.set_exception(exc)
            return
        bound.set_result(None)
        log.info("control channel listening", endpoint=self.endpoint)
        loop = asyncio.get_running_loop()
        fd: int = socket.FD
        loop.add_reader(fd, self._wakeup.set)
        in_a_row = 0
        try:
            while not self._closing:
                if self._reset_reason is not None:
                    loop.remove_reader(fd)
                    socket = await self._reopen(socket)
                    fd = socket.FD
                    loop.add_reader(fd, self._wakeup.set)
                self._flush(socket)
                # ZeroMQ's FD is edge-triggered: it only says "look at EVENTS". Check EVENTS
                # after every send and receive, and sleep only when nothing is readable.
                if int(socket.EVENTS) & zmq.POLLIN:
                    try:
                        incoming = self._receive(socket)
                    except zmq.Again:
                        continue
                    in_a_row += 1
                    if self._accept_safely(incoming) or in_a_row >= FAIR_SHARE:
                        # A new command runs up to its first real wait before the next request
                        # is read, so requests take effect in arrival order as in 0.19 (`stop`
                        # cast then `status` sees "stopping"). A flood of quick requests also
                        # yields now and then, so reaping and events are not held up by it.
                        in_a_row = 0
                        await asyncio.sleep(0)
                    continue
                in_a_row = 0
                await self._wakeup.wait()
                self._wakeup.clear()
        finally:
            loop.remove_reader(fd)
            with contextlib.suppress(zmq.ZMQError):
                self._flush(socket)
            socket.close(linger=CLOSE_LINGER_MS)
            self._warn.flush()
            log.info("control channel closed", endpoint=self.endpoint)

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
        deadline = asyncio.get_running_loop().time() + REBIND_TIMEOUT
        while True:
            try:
                fresh = self._open(check_live=False)
                break
            except zmq.ZMQError as exc:
                if exc.errno != errno.EADDRINUSE or asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.01)
        trim()
        self._trip.reset()
        return fresh

    def _receive(self, socket: zmq.Socket[bytes]) -> Incoming:
        """Read one whole message, keeping a bounded part of it (see the module docstring).

        ZeroMQ hands a multipart message over only once it is complete, so after the first
        frame the rest is already there and the blocking-API ``recv`` never waits.
        """
        if self.policy.curve is None:
            incoming = Incoming(socket.recv(zmq.NOBLOCK))
        else:
            first = socket.recv(zmq.NOBLOCK, copy=False)
            user = first.get("User-Id")
            incoming = Incoming(first.bytes, user if isinstance(user, str) else None)
        limit = self.max_message_size
        while socket.getsockopt(zmq.RCVMORE):
            frame = socket.recv(copy=False)
            incoming.count += 1
            incoming.size += len(frame)
            if incoming.count <= MAX_FRAMES:
                incoming.frames.append(frame.bytes if incoming.size <= limit else None)
        return incoming

    def _flush(self, socket: zmq.Socket[bytes]) -> None:
        # A ROUTER never blocks on send: it drops replies to unknown or saturated peers.
        while self._outbox:
            frames = self._outbox.popleft()
            try:
                socket.send_multipart(frames, zmq.NOBLOCK)
            except zmq.ZMQError as exc:
                self._warn.warning("could not send a reply", error=str(exc))

    def _accept_safely(self, incoming: Incoming) -> bool:
        # A bug in one request must not kill the socket task: the daemon would go deaf.
        try:
            return self._accept(incoming)
        except Exception:
            log.exception("could not handle a request")
            return False

    def _accept(self, incoming: Incoming) -> bool:
        """Answer or start one request; true when it runs as a task."""
        frames = incoming.frames
        if incoming.count == 2:
            envelope, payload = [frames[0]], frames[1]
        elif incoming.count == 3 and frames[1] == b"":
            envelope, payload = frames[:2], frames[2]
        else:
            self._warn.warning(
                "dropped a request with unexpected framing",
                frames=incoming.count,
                size=incoming.size,
            )
            return False
        if payload is None or incoming.size > self.max_message_size:
            self._reply(envelope, oversize_reply(incoming.size, self.max_message_size))
            return False
        prepared = self.dispatcher.prepare(payload)
        if not isinstance(prepared, Request):
            self._reply(envelope, prepared)
            return False
        routing_id = frames[0] or b""
        # With CURVE a plugin's own key decides who it is, whatever routing id it sends.
        grant = REGISTRY.grant_for_key(incoming.user) or REGISTRY.grant_for(routing_id)
        if grant is not None and not grant.permits(prepared.name):
            self._refuse(envelope, prepared, grant)
            return False
        # Events the command causes say who asked (tasks copy the context when created).
        with requested_by(requester(routing_id, grant)):
            if prepared.quick:
                self._reply(envelope, self.dispatcher.answer_now(prepared))
                return False
            if self._operations() >= MAX_OPERATIONS and prepared.name not in UNBOUNDED:
                self._busy(envelope, prepared)
                return False
            task = asyncio.create_task(self._respond(envelope, prepared))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return True

    def _operations(self) -> int:
        """Operations running: requests being answered plus those answered ``ok`` that go on."""
        return len(self._inflight) + len(self.dispatcher.background)

    def _busy(self, envelope: list[bytes | None], request: Request) -> None:
        """Too many operations already: errno 5 (try later), or a log line for a cast."""
        reason = (f"circusd is busy: {self._operations()} operations are running; "
                  "try again once some have ended")
        if request.cast:
            self._warn.warning("dropped a cast: too many operations running",
                               command=request.name, limit=MAX_OPERATIONS)
            return
        self._reply(envelope, error_reply(reason, Errno.COMMAND_ERROR, msg_id=request.msg_id))

    def _refuse(self, envelope: list[bytes | None], request: Request, grant: Grant) -> None:
        """A plugin asked for a command outside its allowlist: errno 3, or a log line for a
        cast (nobody would read a reply)."""
        reason = grant.refusal(request.name)
        if request.cast:
            self._warn.warning("refused a plugin's cast", reason=reason)
            return
        self._reply(envelope, error_reply(reason, Errno.MESSAGE_ERROR, msg_id=request.msg_id))

    # -- one request -------------------------------------------------------------------------

    async def _respond(self, envelope: list[bytes | None], request: Request) -> None:
        try:
            reply = await self.dispatcher.answer(request)
        except Exception as exc:  # the dispatcher answers errors itself; this is a last resort
            log.exception("request handling failed")
            reply = error_reply(f"command {request.payload!r}: {exc}", Errno.COMMAND_ERROR)
        self._reply(envelope, reply)

    def _reply(self, envelope: list[bytes | None], reply: JsonDict | None) -> None:
        if reply is None:
            return
        self._outbox.append([frame or b"" for frame in envelope] + [self._encode(reply)])
        self._wakeup.set()

    @staticmethod
    def _encode(reply: JsonDict) -> bytes:
        try:
            return encode(reply)
        except (TypeError, ValueError) as exc:
            log.error("reply is not JSON-serialisable", error=str(exc))
            fallback = error_reply(
                f"reply could not be encoded: {exc}", Errno.COMMAND_ERROR, msg_id=None
            )
            with contextlib.suppress(TypeError, ValueError):
                fallback["id"] = json.loads(json.dumps(reply.get("id")))
            return encode(fallback)


__all__ = [
    "CLOSE_LINGER_MS",
    "HARD_FRAME_LIMIT",
    "MAX_FRAMES",
    "MAX_MESSAGE_SIZE",
    "MAX_OPERATIONS",
    "Controller",
]
