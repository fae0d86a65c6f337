"""Long commands do not block the control channel, and never fail with "already running".

Circus 0.19 runs one guarded operation at a time and rejects the others (Circus #776, #1154);
its controller also answers requests one after another. Here every request runs as its own
task and watchers serialise only their own operations.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from support import wait_gone

from circus.testing import CircusdProcess, EventCollector

GRACE = 3.0
# `trap '' TERM` makes SIGTERM ignored, and an ignored signal stays ignored across exec:
# each process is a `sleep` that only SIGKILL (after graceful_timeout) ends.
STUBBORN = f"""\
[watcher:slow_a]
cmd = sh -c "trap '' TERM; exec sleep 600"
graceful_timeout = {GRACE}

[watcher:slow_b]
cmd = sh -c "trap '' TERM; exec sleep 600"
graceful_timeout = {GRACE}

[watcher:quick]
cmd = sleep 600
"""


@pytest.fixture
def daemon(circusd: Callable[..., CircusdProcess]) -> CircusdProcess:
    return circusd(STUBBORN)


@pytest.fixture
def quick_daemon(circusd: Callable[..., CircusdProcess]) -> CircusdProcess:
    """Only the quick watcher, for tests that need no slow stop: the stubborn ones would hold
    every teardown for ``GRACE``."""
    return circusd("[watcher:quick]\ncmd = sleep 600\n")


@pytest.fixture
def sock(daemon: CircusdProcess) -> Iterator[zmq.Socket[bytes]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.IDENTITY, uuid.uuid4().hex.encode())
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(daemon.endpoint)
    yield dealer
    ctx.destroy(linger=0)


def send(sock: zmq.Socket[bytes], msg_id: str, command: str, **props: Any) -> None:
    sock.send(json.dumps({"id": msg_id, "command": command, "properties": props}).encode())


def receive(sock: zmq.Socket[bytes], timeout: float = 30.0) -> tuple[dict[str, Any], float]:
    assert sock.poll(int(timeout * 1000)), "no reply"
    reply: dict[str, Any] = json.loads(sock.recv())
    return reply, time.monotonic()


def wait_stubborn(daemon: CircusdProcess, name: str) -> int:
    """The watcher's pid once it has exec'd sleep (so SIGTERM is already ignored)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = daemon.call("list", name=name)["pids"]
        if found:
            try:
                comm = Path(f"/proc/{found[0]}/comm").read_text().strip()
            except OSError:
                comm = ""
            if comm == "sleep":
                return int(found[0])
        time.sleep(0.02)
    raise AssertionError(f"{name} never exec'd sleep")


def test_two_slow_stops_run_together_and_status_still_answers(
    daemon: CircusdProcess, sock: zmq.Socket[bytes]
) -> None:
    pid_a = wait_stubborn(daemon, "slow_a")
    pid_b = wait_stubborn(daemon, "slow_b")
    began = time.monotonic()
    send(sock, "stop-a", "stop", name="slow_a", waiting=True)
    send(sock, "stop-b", "stop", name="slow_b", waiting=True)
    send(sock, "status", "status")
    send(sock, "incr", "incr", name="quick", waiting=True)
    replies: dict[str, tuple[dict[str, Any], float]] = {}
    for _ in range(4):
        reply, at = receive(sock)
        replies[reply["id"]] = (reply, at)
    order = sorted(replies, key=lambda key: replies[key][1])
    # status and the quick watcher's incr were answered while both stops were still waiting
    assert set(order[:2]) == {"status", "incr"}
    assert replies["status"][0]["statuses"]["slow_a"] == "stopping"
    assert replies["status"][0]["statuses"]["slow_b"] == "stopping"
    assert replies["incr"][0]["numprocesses"] == 2
    for key in ("stop-a", "stop-b"):
        assert replies[key][0]["status"] == "ok", replies[key][0]
    # concurrently: together they took about one graceful_timeout, not two
    assert replies["stop-b"][1] - began < 2 * GRACE - 0.5
    assert replies["stop-a"][1] - began >= GRACE - 0.5
    assert wait_gone(pid_a, 5)
    assert wait_gone(pid_b, 5)


def test_commands_on_one_watcher_queue_instead_of_failing(
    daemon: CircusdProcess, sock: zmq.Socket[bytes]
) -> None:
    wait_stubborn(daemon, "slow_a")
    send(sock, "stop", "stop", name="slow_a", waiting=True)
    send(sock, "start", "start", name="slow_a", waiting=True)
    send(sock, "incr", "incr", name="slow_a", waiting=True)
    replies = {}
    for _ in range(3):
        reply, at = receive(sock)
        replies[reply["id"]] = (reply, at)
    assert all(reply["status"] == "ok" for reply, _ in replies.values()), replies
    # in arrival order
    assert replies["stop"][1] <= replies["start"][1] <= replies["incr"][1]
    assert replies["incr"][0]["numprocesses"] == 2
    assert daemon.call("status", name="slow_a")["status"] == "active"
    # the stubborn processes would hold the teardown's stop for GRACE: a short one now
    for name in ("slow_a", "slow_b"):
        daemon.call("set", name=name, options={"graceful_timeout": 0.2})


def test_reacting_to_a_reap_event_is_not_rejected(quick_daemon: CircusdProcess) -> None:
    """0.19 rejects a `stop` sent right after a reap event (its tick holds the lock, C3/F4)."""
    daemon = quick_daemon
    with EventCollector(daemon.pubsub_endpoint) as events:
        events.wait_ready(daemon, "quick")
        pid = daemon.call("list", name="quick")["pids"][0]
        daemon.call("signal", name="quick", signum="KILL")
        events.wait_for(lambda topic, _: topic == "watcher.quick.reap", timeout=20)
        reply = daemon.call("stop", name="quick", waiting=True)
        assert reply["status"] == "ok", reply
        assert wait_gone(pid, 5)
        assert daemon.call("status", name="quick")["status"] == "stopped"


def test_quit_waits_for_replies_in_flight(daemon: CircusdProcess, sock: zmq.Socket[bytes]) -> None:
    """A slow `stop` already running when `quit` arrives still gets its reply before exit."""
    wait_stubborn(daemon, "slow_a")
    send(sock, "stop", "stop", name="slow_a", waiting=True)
    send(sock, "quit", "quit", waiting=True)
    replies = {}
    for _ in range(2):
        reply, _at = receive(sock)
        replies[reply["id"]] = reply
    assert replies["stop"]["status"] == "ok", replies
    assert replies["quit"]["status"] == "ok", replies
    assert daemon.popen is not None
    assert daemon.popen.wait(30) == 0


def test_many_clients_get_their_own_replies(quick_daemon: CircusdProcess) -> None:
    daemon = quick_daemon
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        clients = []
        for _ in range(50):
            dealer = ctx.socket(zmq.DEALER)
            dealer.setsockopt(zmq.LINGER, 0)
            dealer.connect(daemon.endpoint)
            clients.append(dealer)
        for round_ in range(20):
            for n, client in enumerate(clients):
                send(client, f"{n}-{round_}", "numprocesses", name="quick")
        for n, client in enumerate(clients):
            ids = [receive(client)[0]["id"] for _ in range(20)]
            assert ids == [f"{n}-{round_}" for round_ in range(20)]
            assert not client.poll(0)
    finally:
        ctx.destroy(linger=0)
