"""From one request payload to at most one reply (contract section 2.4, with section 12's fixes).

Differences from Circus 0.19, all visible only to clients that sent something 0.19 ignored:

* an empty payload, JSON that is not an object, a missing or non-string ``command`` and
  non-object ``properties`` get an errno 3 reply instead of silence (C2);
* a failed ``waiting`` operation keeps the errno and reason of a ``CommandError`` it raised
  (other failures still answer errno 6 ``server error``);
* casts never get a reply, not even for malformed requests: a plugin that only casts never
  reads its socket, and a stray reply would be taken for the answer to its next call.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from dataclasses import dataclass
from typing import Any

from circus.commands import get_command
from circus.commands.api import ArbiterAPI
from circus.commands.base import Background, Command, Fields, QuickCommand, bool_prop
from circus.commands.validation import check_id, check_request, reject_constant
from circus.errors import CommandError, Errno, MessageError
from circus.logs import get_logger
from circus.protocol import JsonDict, error_reply, ok_reply

log = get_logger("circus.controller")

#: Largest request accepted, in bytes. The ROUTER socket also enforces it (ZMQ_MAXMSGSIZE).
MAX_MESSAGE_SIZE = 1 << 20


def oversize_reply(size: int, limit: int = MAX_MESSAGE_SIZE) -> JsonDict:
    """errno 3 for a request over the size limit (its id is unknown: it is never decoded)."""
    return error_reply(
        f"request of {size} bytes exceeds the {limit}-byte limit", Errno.MESSAGE_ERROR
    )


@dataclass
class Request:
    """A decoded request whose command exists; what remains is to run it."""

    command: Command
    name: str
    props: dict[str, Any]
    msg_id: Any
    cast: bool
    payload: bytes

    @property
    def quick(self) -> bool:
        return isinstance(self.command, QuickCommand)


class Dispatcher:
    """Runs requests against the arbiter and builds replies; knows nothing about sockets.

    :meth:`prepare` decodes and answers the malformed; :meth:`answer_now` runs a quick
    command synchronously; :meth:`answer` runs any command. :meth:`handle` chains them.
    """

    def __init__(self, arbiter: ArbiterAPI) -> None:
        self.arbiter = arbiter
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def background(self) -> set[asyncio.Task[Any]]:
        """Operations still running after their (non-waiting) reply was sent."""
        return self._background

    async def handle(self, payload: bytes) -> JsonDict | None:
        """The reply to send for ``payload``, or ``None`` when nothing must be sent (casts)."""
        prepared = self.prepare(payload)
        if isinstance(prepared, Request):
            return await self.answer(prepared)
        return prepared

    def prepare(self, payload: bytes) -> Request | JsonDict | None:
        """Decode ``payload``: a :class:`Request` to run, or the reply (``None``: no reply)."""
        text = payload.strip()
        if not text:
            return error_reply("message invalid: empty payload", Errno.MESSAGE_ERROR)
        if len(payload) > MAX_MESSAGE_SIZE:
            return oversize_reply(len(payload))
        try:
            message = json.loads(text, parse_constant=reject_constant)
        except (ValueError, RecursionError):
            return error_reply("json invalid", Errno.INVALID_JSON)
        if not isinstance(message, dict):
            return error_reply(
                "message invalid: the request must be a JSON object", Errno.MESSAGE_ERROR
            )
        msg_id = message.get("id")
        cast = message.get("msg_type") == "cast"
        try:
            check_id(msg_id)
        except MessageError as exc:
            return None if cast else error_reply(exc.reason, exc.errno)
        try:
            check_request(message)
        except MessageError as exc:
            return None if cast else error_reply(exc.reason, exc.errno, msg_id=msg_id)
        name = message.get("command")
        props = message.get("properties", {})
        if name is None:
            reply = error_reply(
                "message invalid 'command' is missing", Errno.MESSAGE_ERROR, msg_id=msg_id
            )
        elif not isinstance(name, str):
            reply = error_reply(
                "message invalid 'command' isn't a string", Errno.MESSAGE_ERROR, msg_id=msg_id
            )
        elif (command := get_command(name)) is None:
            reply = error_reply(f"unknown command: {name!r}", Errno.UNKNOWN_COMMAND, msg_id=msg_id)
        elif not isinstance(props, dict):
            reply = error_reply(
                "message invalid 'properties' isn't an object", Errno.MESSAGE_ERROR, msg_id=msg_id
            )
        else:
            return Request(command, name, props, msg_id, cast, payload)
        return None if cast else reply

    def answer_now(self, request: Request) -> JsonDict | None:
        """Run a quick command synchronously (see :class:`QuickCommand`)."""
        command = request.command
        assert isinstance(command, QuickCommand)
        try:
            command.check_required(request.props)
            reply = ok_reply(command.answer(self.arbiter, request.props), msg_id=request.msg_id)
        except Exception as exc:
            reply = self._failure(exc, request)
        return None if request.cast else reply

    async def answer(self, request: Request) -> JsonDict | None:
        """Run any command; long operations follow the ``waiting`` rules of section 2.4."""
        if request.quick:
            return self.answer_now(request)
        try:
            request.command.check_required(request.props)
            result = await request.command.execute(self.arbiter, request.props)
            if isinstance(result, Background):
                waiting = bool_prop(request.props, "waiting", False) and not request.cast
                reply = await self._finish(result, waiting, request.name, request.msg_id)
            else:
                reply = ok_reply(result, msg_id=request.msg_id)
        except Exception as exc:
            reply = self._failure(exc, request)
        return None if request.cast else reply

    @staticmethod
    def _failure(exc: Exception, request: Request) -> JsonDict:
        """errno 3/5 from a ``CommandError``, 4 from an ``OSError``, 5 with a traceback else."""
        if isinstance(exc, CommandError):
            return error_reply(exc.reason, exc.errno, msg_id=request.msg_id)
        if isinstance(exc, OSError):
            return error_reply(str(exc), Errno.OS_ERROR, msg_id=request.msg_id)
        log.error(
            "command failed",
            command=request.name,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        tb = "".join(traceback.format_exception(exc))
        return error_reply(
            f"command {request.payload!r}: {exc}",
            Errno.COMMAND_ERROR,
            msg_id=request.msg_id,
            tb=tb,
        )

    async def _finish(
        self, result: Background, waiting: bool, name: str, msg_id: Any
    ) -> JsonDict:
        if not waiting:
            task = asyncio.ensure_future(result.operation)
            self._background.add(task)
            task.add_done_callback(lambda t: self._background_done(t, name))
            # Let the operation begin (state changes, events) before the client hears "ok".
            await asyncio.sleep(0)
            refused = _refusal(task)
            if refused is not None:  # failed in its first step (`start` of `cmd = ghost`):
                return error_reply(refused.reason, refused.errno, msg_id=msg_id)  # say why
            return ok_reply(result.notes, msg_id=msg_id)
        try:
            value = await result.operation
        except CommandError as exc:
            return error_reply(exc.reason, exc.errno, msg_id=msg_id)
        except Exception:
            log.exception("waited-for operation failed", command=name)
            return error_reply(
                "server error", Errno.BAD_MSG_DATA_ERROR, msg_id=msg_id, tb=traceback.format_exc()
            )
        fields: Fields | None = result.transform(value)
        return ok_reply({**(fields or {}), **(result.notes or {})}, msg_id=msg_id)

    def _background_done(self, task: asyncio.Task[Any], name: str) -> None:
        self._background.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, CommandError):  # a refusal, not a bug: no traceback
            log.warning("background operation refused", command=name, error=exc.reason)
        elif exc is not None:
            log.error(
                "background operation failed",
                command=name,
                error=str(exc),
                exc_info=(type(exc), exc, exc.__traceback__),
            )


def _refusal(task: asyncio.Future[Any]) -> CommandError | None:
    """The refusal an operation already ended with, if any.

    Spawning is synchronous, so an operation whose first spawn fails (an unknown command) is
    over after its first step: 0.19 answers ``ok`` to such a ``start``/``incr`` and the user
    never learns why nothing runs. An operation still running is answered ``ok`` as before.
    """
    if not task.done() or task.cancelled():
        return None
    exc = task.exception()
    return exc if isinstance(exc, CommandError) else None


__all__ = ["MAX_MESSAGE_SIZE", "Dispatcher", "Request", "oversize_reply"]
