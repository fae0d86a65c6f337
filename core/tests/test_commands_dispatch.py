"""Dispatcher error mapping (contract 2.3/2.4): which failure becomes which errno and reason.

Failures the daemon's own commands cannot be made to raise on demand (an OSError, a bug) are
provoked with small commands defined here, run against a real (not started) arbiter.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from circus.arbiter import get_arbiter
from circus.commands.api import ArbiterAPI
from circus.commands.base import Background, Command, Props, Result
from circus.commands.dispatch import Dispatcher, Request
from circus.errors import ConflictError, MessageError


async def _fail(exc: BaseException) -> None:
    await asyncio.sleep(0)
    raise exc


class Raising(Command):
    """Raises ``exc`` at once, or from its background operation when ``later`` is set."""

    name = "raising"

    def __init__(self, exc: Exception, later: bool = False) -> None:
        self.exc = exc
        self.later = later

    async def execute(self, arbiter: ArbiterAPI, props: Props) -> Result:
        if self.later:
            return Background(_fail(self.exc), lambda value: {"never": value})
        raise self.exc


def run(command: Command, props: dict[str, Any], *, cast: bool = False) -> dict[str, Any] | None:
    payload = json.dumps({"id": "r", "command": "raising", "properties": props}).encode()
    dispatcher = Dispatcher(get_arbiter([{"name": "w", "cmd": "sleep 1"}]))

    async def go() -> dict[str, Any] | None:
        reply = await dispatcher.answer(Request(command, "raising", props, "r", cast, payload))
        await asyncio.gather(*dispatcher.background, return_exceptions=True)
        return reply

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("exc", "errno", "reason"),
    [
        (MessageError("bad thing"), 3, "bad thing"),
        (ConflictError("busy"), 5, "busy"),
        (FileNotFoundError(2, "No such file"), 4, "[Errno 2] No such file"),
    ],
)
def test_expected_failures(exc: Exception, errno: int, reason: str) -> None:
    reply = run(Raising(exc), {})
    assert reply is not None
    assert (reply["status"], reply["errno"], reply["reason"], reply["id"]) == (
        "error", errno, reason, "r",
    )  # fmt: skip
    assert reply["tb"] is None


def test_unexpected_failure_is_errno_5_with_payload_and_traceback() -> None:
    reply = run(Raising(ZeroDivisionError("division by zero")), {"a": 1})
    assert reply is not None
    assert reply["errno"] == 5
    assert reply["reason"] == (
        'command b\'{"id": "r", "command": "raising", "properties": {"a": 1}}\': division by zero'
    )
    assert "ZeroDivisionError" in reply["tb"]


def test_waited_background_failures() -> None:
    reply = run(Raising(RuntimeError("boom"), later=True), {"waiting": True})
    assert reply is not None
    assert (reply["errno"], reply["reason"]) == (6, "server error")
    assert "RuntimeError: boom" in reply["tb"]
    reply = run(Raising(MessageError("no such pid"), later=True), {"waiting": True})
    assert reply is not None
    assert (reply["errno"], reply["reason"]) == (3, "no such pid")


def test_unwaited_background_failure_still_answers_ok() -> None:
    reply = run(Raising(RuntimeError("boom"), later=True), {})
    assert reply is not None
    assert reply["status"] == "ok"
    assert set(reply) == {"status", "time", "id"}


def test_casts_never_answer() -> None:
    assert run(Raising(RuntimeError("boom")), {}, cast=True) is None
    assert run(Raising(RuntimeError("boom"), later=True), {"waiting": True}, cast=True) is None


def test_prepare_answers_malformed_requests_and_suppresses_for_casts() -> None:
    dispatcher = Dispatcher(get_arbiter([{"name": "w", "cmd": "sleep 1"}]))
    reply = dispatcher.prepare(b'{"id": 4, "command": "nope"}')
    assert isinstance(reply, dict)
    assert (reply["errno"], reply["reason"], reply["id"]) == (2, "unknown command: 'nope'", 4)
    assert dispatcher.prepare(b'{"id": 4, "command": "nope", "msg_type": "cast"}') is None
    request = dispatcher.prepare(b'  {"command": "STATUS"}  ')
    assert isinstance(request, Request)
    assert request.quick
    assert request.msg_id is None
    reply = dispatcher.answer_now(request)
    assert reply is not None
    assert reply["statuses"] == {"w": "stopped"}
