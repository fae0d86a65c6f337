"""Issue 9, bounded input: each defect reproduced against a real circusd, then checked fixed.

Raw ZeroMQ sockets put exactly the bytes under test on the wire (lone surrogates escaped in
JSON, NaN literals, ids nested hundreds deep, messages of many frames).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import zmq

from circus.commands.dispatch import MAX_MESSAGE_SIZE
from circus.controller import MAX_OPERATIONS
from circus.testing import CircusdProcess, EventCollector, wait_until

TIMEOUT_MS = 20_000
CONFIG = "[watcher:sleeper]\ncmd = sleep 600\nnumprocesses = 1\n"
Context = zmq.Context[zmq.Socket[bytes]]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CircusdProcess]:
    with CircusdProcess(CONFIG, tmp_path_factory.mktemp("limits")) as running:
        yield running



def dealer(ctx: Context, endpoint: str) -> zmq.Socket[bytes]:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, uuid.uuid4().hex.encode())
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def ask(sock: zmq.Socket[bytes], payload: bytes) -> dict[str, Any]:
    sock.send(payload)
    assert sock.poll(TIMEOUT_MS), "no reply"
    frames = sock.recv_multipart()
    reply: dict[str, Any] = json.loads(frames[-1])
    return reply


def test_oversize_request_gets_an_errno_3_reply_dealer_and_req(
    daemon: CircusdProcess, context: Context
) -> None:
    # 0.19 and the first version here: no reply at all ("unreachable or slow"), REQ stuck.
    values = {f"k{n}": "v" * 1000 for n in range(1100)}
    payload = json.dumps(
        {"id": "big", "command": "set", "properties": {"name": "sleeper", "options": values}}
    ).encode()
    assert len(payload) > MAX_MESSAGE_SIZE
    reply = ask(dealer(context, daemon.endpoint), payload)
    assert reply["errno"] == 3
    assert reply["reason"] == (
        f"request of {len(payload)} bytes exceeds the {MAX_MESSAGE_SIZE}-byte limit"
    )
    req = context.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(daemon.endpoint)
    assert ask(req, payload)["errno"] == 3
    # the REQ socket is not stuck: it can go on
    assert ask(req, b'{"id": 1, "command": "numwatchers"}')["numwatchers"] == 1


def test_size_limit_counts_every_frame_and_extra_frames_are_dropped(
    daemon: CircusdProcess, context: Context
) -> None:
    rss_before = psutil.Process(daemon.pid).memory_info().rss
    sock = dealer(context, daemon.endpoint)
    chunk = b"x" * (256 << 10)
    for _ in range(16):  # 16 messages of 64 x 256 KiB = 16 MiB each, complete multipart
        sock.send_multipart([chunk] * 64)  # bad framing: dropped without a reply
    # REQ-style envelope whose payload alone is over the limit: answered, not dropped
    sock.send_multipart([b"", b"y" * (MAX_MESSAGE_SIZE + 1)])
    assert sock.poll(TIMEOUT_MS)
    delimiter, body = sock.recv_multipart()
    assert delimiter == b""
    assert json.loads(body)["errno"] == 3
    assert ask(sock, b'{"id": "after", "command": "numwatchers"}')["id"] == "after"
    growth = psutil.Process(daemon.pid).memory_info().rss - rss_before
    assert growth < 32 << 20, f"circusd grew by {growth >> 20} MiB"


def test_framing_warnings_are_rate_limited_with_a_count(
    tmp_path: Path, context: Context
) -> None:
    with CircusdProcess(CONFIG, tmp_path) as running:
        sock = dealer(context, running.endpoint)
        for _ in range(2000):
            sock.send_multipart([b"a", b"b", b"c"])
        assert ask(sock, b'{"id": "x", "command": "numwatchers"}')["id"] == "x"
    lines = [ln for ln in running.log_text().splitlines() if "unexpected framing" in ln]
    assert 1 <= len(lines) <= 10, lines
    assert "suppressed" in running.log_text()


def test_lone_surrogate_name_is_refused_before_anything_changes(
    daemon: CircusdProcess, context: Context
) -> None:
    # 0.19-like behaviour measured on main: errno 5 but the watcher was registered, then
    # start/stop/rm/quit answered "server error" and a sequence number was skipped.
    sock = dealer(context, daemon.endpoint)
    with EventCollector(daemon.pubsub_endpoint) as events:
        events.wait_ready(daemon, "sleeper")
        mark = len(events.events)
        daemon.call("set", name="sleeper", options={"graceful_timeout": 30})
        _, first = events.wait_for(lambda t, p: t.endswith(".updated"), start=mark)
        for bad in (b'"bad\\ud800"', b'"bad\\u0001name"', b'"tab\\tname"'):
            reply = ask(
                sock,
                b'{"id": "s", "command": "add", "properties": {"name": ' + bad
                + b', "cmd": "sleep 600", "start": true}}',
            )
            assert (reply["errno"], reply["id"]) == (3, "s"), reply
            assert reply["tb"] is None
        assert daemon.call("list")["watchers"] == ["sleeper"]
        mark = len(events.events)
        daemon.call("set", name="sleeper", options={"graceful_timeout": 30})
        _, second = events.wait_for(lambda t, p: t.endswith(".updated"), start=mark)
        assert second["seq"] == first["seq"] + 1


def test_deeply_nested_values_are_refused_and_still_answered(
    daemon: CircusdProcess, context: Context
) -> None:
    # Measured on main: an id nested 980 deep was never answered (RecursionError).
    sock = dealer(context, daemon.endpoint)
    for depth in (980, 300):
        deep_id = b"[" * depth + b"]" * depth
        reply = ask(sock, b'{"id": ' + deep_id + b', "command": "numwatchers"}')
        # the decoder may give up first (errno 1); either way the client hears back
        assert reply["errno"] in (1, 3)
        assert reply["id"] is None
    assert "'id'" in reply["reason"]
    deep_props = b'{"x": ' + b"[" * 100 + b"]" * 100 + b"}"
    reply = ask(sock, b'{"id": 2, "command": "numwatchers", "properties": ' + deep_props + b"}")
    assert (reply["errno"], reply["id"]) == (3, 2)
    assert "nested" in reply["reason"]


@pytest.mark.parametrize(
    ("value", "errno"),
    [
        (b'"inf"', 3),
        (b'"nan"', 3),
        (b"1e300", 3),
        (b"1e400", 3),  # parses as infinity
        (b"NaN", 1),  # not JSON
        (b"Infinity", 1),
        (b"-1", 3),
    ],
)
def test_kill_refuses_timeouts_that_never_end(
    daemon: CircusdProcess, context: Context, value: bytes, errno: int
) -> None:
    # Measured on main: accepted; the kill never escalated and a waiting client never heard back.
    pids = daemon.call("list", name="sleeper")["pids"]
    reply = ask(
        dealer(context, daemon.endpoint),
        b'{"id": "k", "command": "kill", "properties": {"name": "sleeper", "waiting": true,'
        b' "graceful_timeout": ' + value + b"}}",
    )
    assert reply["status"] == "error"
    assert reply["errno"] == errno, reply
    assert daemon.call("list", name="sleeper")["pids"] == pids


def test_numbers_out_of_range_are_refused(daemon: CircusdProcess) -> None:
    reply = daemon.call("incr", name="sleeper", nb=10**9)
    assert (reply["errno"], reply["reason"]) == (3, "'nb' must be at most 10000")
    reply = daemon.call("kill", name="sleeper", pid=2**70)
    assert reply["errno"] == 3


def _ignores_term(pid: int) -> bool:
    """The process has SIGTERM ignored (``SigIgn`` in /proc): its stop will take the timeout."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    ignored = next(line for line in status.splitlines() if line.startswith("SigIgn:"))
    return bool(int(ignored.split()[1], 16) & (1 << (15 - 1)))


def test_operations_running_at_once_are_bounded(tmp_path: Path, context: Context) -> None:
    # Before: every request for an operation became a task, however many were running, so a
    # client could queue requests behind one slow stop until circusd ran out of memory.
    config = (
        "[watcher:stubborn]\n"
        "cmd = sh -c \"trap '' TERM; exec sleep 600\"\n"
        "graceful_timeout = 5\n"
    )
    with CircusdProcess(config, tmp_path) as running:
        pids = running.call("list", name="stubborn")["pids"]
        wait_until(lambda: _ignores_term(pids[0]), "the process ignoring SIGTERM")
        sock = dealer(context, running.endpoint)
        assert ask(sock, b'{"id": "stop", "command": "stop", "properties": {"name": "stubborn"}}')[
            "status"
        ] == "ok"  # the stop now holds the watcher's lock for graceful_timeout
        for n in range(MAX_OPERATIONS + 100):
            sock.send(json.dumps({"id": n, "command": "start", "properties": {
                "name": "stubborn", "waiting": True}}).encode())
        # the starts wait behind the stop: the first reply must be a refusal, at once
        assert sock.poll(TIMEOUT_MS), "no reply"
        reply = json.loads(sock.recv_multipart()[-1])
        assert reply["status"] == "error", reply
        assert reply["errno"] == 5
        assert "operations are running" in reply["reason"]
        # quick commands are still answered
        other = dealer(context, running.endpoint)
        assert ask(other, b'{"id": "n", "command": "numwatchers"}')["numwatchers"] == 1
    # leaving the block sent ``quit`` while the starts still waited: never refused, it ended
    # circusd (a refused quit would have left it to be killed by pid)
    assert running.popen is not None
    assert running.popen.returncode == 0
