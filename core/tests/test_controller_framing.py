"""The control socket against a real circusd: framing, bad input and casts.

Clients here are raw ZeroMQ sockets (not our client classes) so that the bytes on the wire are
exactly what the test says: DEALER single-frame requests, REQ envelopes, wrong frame counts,
malformed payloads, oversized messages.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from circus.controller import HARD_FRAME_LIMIT
from circus.testing import CircusdProcess

TIMEOUT_MS = 20_000
CONFIG = "[watcher:sleeper]\ncmd = sleep 600\nnumprocesses = 1\n"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CircusdProcess]:
    with CircusdProcess(CONFIG, tmp_path_factory.mktemp("framing")) as running:
        yield running



def dealer(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> zmq.Socket[bytes]:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, uuid.uuid4().hex.encode())
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def recv_json(sock: zmq.Socket[bytes], timeout_ms: int = TIMEOUT_MS) -> dict[str, Any]:
    assert sock.poll(timeout_ms), "no reply"
    frames = sock.recv_multipart()
    assert len(frames) == 1, frames
    reply: dict[str, Any] = json.loads(frames[0])
    return reply


def request(msg: Any, **fields: Any) -> bytes:
    return json.dumps(msg if not fields else {**msg, **fields}).encode()


def test_dealer_single_frame_request_gets_single_frame_reply(
    daemon: CircusdProcess, context: zmq.Context[zmq.Socket[bytes]]
) -> None:
    sock = dealer(context, daemon.endpoint)
    sock.send(request({"id": "abc", "command": "LIST", "properties": {}}))
    reply = recv_json(sock)
    assert reply["status"] == "ok"
    assert reply["id"] == "abc"
    assert reply["watchers"] == ["sleeper"]
    assert set(reply) == {"status", "time", "watchers", "id"}


def test_req_socket_is_answered_with_the_same_envelope(
    daemon: CircusdProcess, context: zmq.Context[zmq.Socket[bytes]]
) -> None:
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(daemon.endpoint)
    for n in range(3):  # a REQ must alternate send/recv: three rounds prove every reply arrives
        sock.send(request({"id": n, "command": "status", "properties": {"name": "sleeper"}}))
        assert sock.poll(TIMEOUT_MS)
        reply = json.loads(sock.recv())
        assert reply == {"status": "active", "time": reply["time"], "id": n}
    sock.send(b"not json")
    assert sock.poll(TIMEOUT_MS)
    assert json.loads(sock.recv())["errno"] == 1


def test_dealer_emulating_req_gets_the_empty_delimiter_back(
    daemon: CircusdProcess, context: zmq.Context[zmq.Socket[bytes]]
) -> None:
    sock = dealer(context, daemon.endpoint)
    sock.send_multipart([b"", request({"id": 7, "command": "numwatchers"})])
    assert sock.poll(TIMEOUT_MS)
    delimiter, payload = sock.recv_multipart()
    assert delimiter == b""
    assert json.loads(payload)["numwatchers"] == 1


def test_wrong_frame_counts_are_dropped_and_the_socket_keeps_working(
    daemon: CircusdProcess, context: zmq.Context[zmq.Socket[bytes]]
) -> None:
    sock = dealer(context, daemon.endpoint)
    status = request({"id": "x", "command": "status"})
    sock.send_multipart([b"junk", status])  # non-empty delimiter: not a REQ envelope
    sock.send_multipart([b"", b"", status])
    sock.send_multipart([b"a", b"b", b"c", status])
    sock.send(request({"id": "after", "command": "numwatchers"}))
    reply = recv_json(sock)
    assert reply["id"] == "after"  # nothing was answered for the three dropped requests
    assert not sock.poll(200)


@pytest.mark.parametrize(
    "case",
    [
        (b"{not json", 1, "json invalid", None),
        (b"\xff\xfe garbage", 1, "json invalid", None),
        (b"[" * 100_000, 1, "json invalid", None),
        (b"", 3, "message invalid: empty payload", None),
        (b"   \n\t ", 3, "message invalid: empty payload", None),
        (b"[1, 2]", 3, "message invalid: the request must be a JSON object", None),
        (b'"status"', 3, "message invalid: the request must be a JSON object", None),
        (b"null", 3, "message invalid: the request must be a JSON object", None),
        (b'{"id": 1}', 3, "message invalid 'command' is missing", 1),
        (b'{"id": 2, "command": null}', 3, "message invalid 'command' is missing", 2),
        (b'{"id": 3, "command": 5}', 3, "message invalid 'command' isn't a string", 3),
        (b'{"id": 4, "command": "nope"}', 2, "unknown command: 'nope'", 4),
        (b'{"id": 5, "command": "list", "properties": null}', 3,
         "message invalid 'properties' isn't an object", 5),
        (b'{"id": 6, "command": "list", "properties": [1]}', 3,
         "message invalid 'properties' isn't an object", 6),
        (b'{"id": 7, "command": "options", "properties": {}}', 3,
         "message invalid 'name' is missing", 7),
        (b'{"id": 8, "command": "options", "properties": {"name": "zz"}}', 3,
         "program zz not found", 8),
        (b'{"id": 9, "command": "listen"}', 3, "invalid message. use a pub/sub socket", 9),
        (b'{"id": [1, {"a": 2}], "command": "nope"}', 2, "unknown command: 'nope'", [1, {"a": 2}]),
    ],
)
def test_bad_requests_get_an_error_reply(
    daemon: CircusdProcess,
    context: zmq.Context[zmq.Socket[bytes]],
    case: tuple[bytes, int, str, Any],
) -> None:
    payload, errno, reason, msg_id = case
    sock = dealer(context, daemon.endpoint)
    sock.send(payload)
    reply = recv_json(sock)
    assert reply["status"] == "error"
    assert reply["errno"] == errno
    assert reply["reason"] == reason
    assert reply["id"] == msg_id
    assert reply["tb"] is None
    assert set(reply) == {"status", "reason", "tb", "time", "errno", "id"}


def test_cast_executes_and_sends_nothing(
    daemon: CircusdProcess, context: zmq.Context[zmq.Socket[bytes]]
) -> None:
    sock = dealer(context, daemon.endpoint)
    sock.send(request({"id": "c1", "command": "incr", "msg_type": "cast",
                       "properties": {"name": "sleeper", "waiting": True}}))
    sock.send(request({"id": "c2", "command": "nope", "msg_type": "cast"}))
    sock.send(b'{"id": "c3", "msg_type": "cast"}')
    sock.send(request({"id": "c4", "command": "decr", "msg_type": "cast",
                       "properties": {"name": "sleeper"}}))
    sock.send(request({"id": "check", "command": "list", "properties": {"name": "sleeper"}}))
    reply = recv_json(sock)
    assert reply["id"] == "check"  # the first frame back answers the call, not a cast
    assert not sock.poll(300)
    # the casts ran: incr then decr leave one process
    assert len(daemon.call("list", name="sleeper")["pids"]) == 1


def malformed_requests() -> list[tuple[list[bytes], int | None]]:
    """(frames to send from a DEALER, expected errno or None when no reply is due)."""
    kinds: list[tuple[list[bytes], int | None]] = [
        ([b"{bad json"], 1),
        ([b"\x00\x01\x02"], 1),
        ([b""], 3),
        ([b"[]"], 3),
        ([b"42"], 3),
        ([b'{"command": 1}'], 3),
        ([b'{"command": ["list"]}'], 3),
        ([b'{"command": "list", "properties": null}'], 3),
        ([b'{"command": "list", "properties": "x"}'], 3),
        ([b'{"command": "does-not-exist"}'], 2),
        ([b'{"command": "incr", "properties": {"name": 5}}'], 3),
        ([b'{"command": "incr", "properties": {"name": "sleeper", "nb": "x"}}'], 3),
        ([b'{"command": "set", "properties": {"name": "sleeper", "options": 3}}'], 3),
        ([b'{"command": "set", "properties": {"name": "sleeper",'
          b' "options": {"numprocesses": "3"}}}'], 3),
        ([b'{"command": "kill", "properties": {"name": "sleeper", "pid": "abc"}}'], 3),
        ([b'{"command": "signal", "properties": {"name": "sleeper", "signum": "SIGFOO"}}'], 3),
        ([b'{"command": "get", "properties": {"name": "sleeper", "keys": 3}}'], 3),
        ([b'{"command": "start", "properties": {"name": "[", "match": "regex"}}'], 3),
        ([b'{"command": "start", "properties": {"name": "x", "match": "fuzzy"}}'], 3),
        ([b'{"command": "stats", "properties": {"name": "sleeper", "process": "x"}}'], 3),
        ([b"junk", b'{"command": "list"}'], None),
        ([b"a", b"b", b"c"], None),
    ]
    return kinds


def test_thousands_of_malformed_messages_leave_the_daemon_answering(
    daemon: CircusdProcess, context: zmq.Context[zmq.Socket[bytes]]
) -> None:
    sock = dealer(context, daemon.endpoint)
    kinds = malformed_requests()
    sent = 0
    # Batches stay below the default high-water marks so no reply is dropped on the way back.
    for _ in range(150):
        expected: list[int] = []
        for frames, errno in kinds:
            sock.send_multipart(frames)
            sent += 1
            if errno is not None:
                expected.append(errno)
        got = sorted(recv_json(sock)["errno"] for _ in expected)
        assert got == sorted(expected)
    assert sent >= 3000
    assert not sock.poll(200)  # nothing answered the dropped frame counts

    # Over the size limit: an errno 3 reply; over the hard cap, ZeroMQ drops that connection
    # (ZMQ_MAXMSGSIZE) and the DEALER reconnects by itself.
    big = dealer(context, daemon.endpoint)
    for _ in range(3):
        big.send(b'{"command": "list", "pad": "' + b"x" * (2 << 20) + b'"}')
    for _ in range(3):
        reply = recv_json(big)
        assert (reply["errno"], reply["id"]) == (3, None)
        assert reply["reason"].endswith("bytes exceeds the 1048576-byte limit")
    big.send(b"x" * (HARD_FRAME_LIMIT + 1))
    assert not big.poll(500)
    big.send(request({"id": "again", "command": "status"}))
    assert recv_json(big)["id"] == "again"

    fresh = dealer(context, daemon.endpoint)
    fresh.send(request({"id": "ok?", "command": "status", "properties": {}}))
    reply = recv_json(fresh)
    assert reply["status"] == "ok"
    assert reply["statuses"] == {"sleeper": "active"}
    assert daemon.popen is not None
    assert daemon.popen.poll() is None
    assert "Traceback" not in daemon.log_text()
