"""The control channel: requests in, replies out, through one listener owned by one task.

Framing (contract 2.1, with the REQ improvement of section 12):

* ``[identity, payload]`` from DEALER clients (circusctl, plugins) is answered with
  ``[identity, reply]``;
* ``[identity, b"", payload]`` from REQ clients is answered with ``[identity, b"", reply]``
  (0.19 silently drops these, C1);
* anything else is dropped (there is no envelope to answer through) with a rate-limited warning.

Input is bounded (issue 9). The listener (:mod:`circus.listeners`) keeps only the first
:data:`MAX_FRAMES` frames of a message, only while their total stays within
``max_message_size``, and forgets the rest; a well-framed request over ``max_message_size`` is
answered with errno 3 ("request of N bytes exceeds the M-byte limit"), so a REQ client is never
left waiting; a message over ``hard_limit`` ends the sender's connection. Without CURVE circusd
reads the wire itself (:mod:`circus.listeners.native`), so nothing a peer sends, finished or not,
costs more than a bounded amount of memory; with CURVE libzmq does
(:mod:`circus.listeners.router`).

Commands that may wait (start, stop, kill, ...) run as tasks of their own and hand their reply
back through an outbox the socket task drains, so a command that waits out a 30 s graceful stop
never delays other clients. Quick commands (status, list, ...) are answered inline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque

import zmq
import zmq.asyncio

from circus.binding import BindPolicy
from circus.commands.api import ArbiterAPI
from circus.commands.dispatch import MAX_MESSAGE_SIZE, Dispatcher, Request, oversize_reply
from circus.credentials import REGISTRY, Grant, requester
from circus.errors import Errno
from circus.events import requested_by
from circus.listeners import HARD_FRAME_LIMIT, MAX_FRAMES, Incoming, Listener, native_address
from circus.listeners.native import NativeListener
from circus.listeners.router import RouterListener
from circus.logs import get_logger
from circus.logthrottle import Throttle
from circus.protocol import JsonDict, encode, error_reply

log = get_logger("circus.controller")

#: How long ``stop()`` lets running commands finish so their replies still go out.
STOP_GRACE = 5.0
#: Requests handled back to back before the socket task lets other tasks run.
FAIR_SHARE = 32
#: Milliseconds the listener may keep undelivered replies after it is closed.
CLOSE_LINGER_MS = 1000
#: Most operations (commands that may wait, see the module docstring) running at once, those
#: already answered ``ok`` included; beyond it a request is refused until some end.
MAX_OPERATIONS = 4096
#: Commands never refused for that: ``quit`` ends every operation, so it must always get in.
UNBOUNDED = frozenset({"quit"})


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
        self.listener = self._listener()

    def _listener(self) -> Listener:
        """Read the wire ourselves (bounded) unless CURVE or the endpoint needs libzmq."""
        address = native_address(self.endpoint)
        if self.policy.curve is None and address is not None:
            return NativeListener(
                self.endpoint, address, self.policy, keep_bytes=self.max_message_size,
                hard_bytes=self.hard_limit, wakeup=self._wakeup.set, warn=self._warn,
            )
        return RouterListener(
            self.endpoint, self.context, self.policy, keep_bytes=self.max_message_size,
            hard_bytes=self.hard_limit, wakeup=self._wakeup.set, warn=self._warn,
        )

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

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Let running commands answer (up to ``grace`` seconds), then close the listener.

        Safe to call from a command task (it does not wait for itself). Commands still running
        after ``grace`` are cancelled; their clients time out.
        """
        if self._task is None:
            return
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

    async def _serve(self, bound: asyncio.Future[None]) -> None:
        listener = self.listener
        try:
            await listener.open()
        except BaseException as exc:
            bound.set_exception(exc)
            return
        bound.set_result(None)
        log.info("control channel listening", endpoint=listener.endpoint)
        in_a_row = 0
        try:
            while not self._closing:
                await listener.service()
                self._flush()
                incoming = listener.receive()
                if incoming is not None:
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
            with contextlib.suppress(zmq.ZMQError):
                self._flush()
            await listener.close(CLOSE_LINGER_MS / 1000)
            self._warn.flush()
            log.info("control channel closed", endpoint=listener.endpoint)

    def _flush(self) -> None:
        while self._outbox:
            self.listener.send(self._outbox.popleft())

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
    "Incoming",
]
