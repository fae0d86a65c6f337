"""circusd's own PUB server (circus.listeners.publisher) with real subscribers.

pyzmq SUB sockets check what subscribers rely on (prefix filtering, cancelling); a raw socket
plays the subscriber that never reads, which libzmq clients cannot be made to do.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import zmq

from circus.testing import CircusdProcess, log_count, wait_until

CONFIG = "[watcher:a]\ncmd = sleep 600\n\n[watcher:b]\ncmd = sleep 600\n"
TIMEOUT_MS = 10_000
Context = zmq.Context[zmq.Socket[bytes]]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[CircusdProcess]:
    with CircusdProcess(CONFIG, tmp_path) as running:
        yield running



def touch(daemon: CircusdProcess, name: str) -> None:
    """One ``watcher.NAME.updated`` event."""
    daemon.call("set", name=name, options={"graceful_timeout": 30})


def next_topic(sub: zmq.Socket[bytes]) -> str:
    assert sub.poll(TIMEOUT_MS), "no event"
    return sub.recv_multipart()[0].decode()


def subscribed(daemon: CircusdProcess, sub: zmq.Socket[bytes], name: str) -> None:
    """Wait until ``sub`` gets events about ``name`` (a subscription takes effect a little
    after the connect; events sent before are lost, as with any PUB)."""
    def arrived() -> bool:
        touch(daemon, name)
        return bool(sub.poll(100))

    wait_until(arrived, f"events about {name}", timeout=TIMEOUT_MS / 1000, daemon=daemon)
    while sub.poll(200):
        sub.recv_multipart()


def test_subscribers_get_the_topics_they_asked_for(
    daemon: CircusdProcess, context: Context,
) -> None:
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"watcher.a.")
    sub.setsockopt(zmq.SUBSCRIBE, b"watcher.b.")
    sub.connect(daemon.pubsub_endpoint)
    subscribed(daemon, sub, "a")
    touch(daemon, "b")
    assert next_topic(sub) == "watcher.b.updated"
    sub.setsockopt(zmq.UNSUBSCRIBE, b"watcher.b.")
    # the cancel travels on the same connection ahead of the next request's events
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        touch(daemon, "b")
        touch(daemon, "a")
        topics = {next_topic(sub)}
        while sub.poll(100):
            topics.add(sub.recv_multipart()[0].decode())
        if topics == {"watcher.a.updated"}:
            break
        assert time.monotonic() < deadline, f"still receiving {topics}"
    sub.close(linger=0)


def test_a_subscriber_that_never_reads_misses_events_and_costs_little(
    daemon: CircusdProcess, context: Context,
) -> None:
    path = daemon.pubsub_endpoint[len("ipc://") :]
    raw = socket.socket(socket.AF_UNIX)
    raw.settimeout(TIMEOUT_MS / 1000)
    raw.connect(path)
    raw.sendall(b"\xff" + b"\x00" * 8 + b"\x7f\x03\x00" + b"NULL".ljust(20, b"\x00")
                + b"\x00" * 32)
    props = b"\x0bSocket-Type\x00\x00\x00\x03SUB"
    raw.sendall(b"\x04" + bytes([6 + len(props)]) + b"\x05READY" + props + b"\x00\x01\x01")
    raw.recv(64)  # its greeting; from now on this subscriber reads nothing
    reader = context.socket(zmq.SUB)
    reader.setsockopt(zmq.SUBSCRIBE, b"watcher.a.")
    reader.connect(daemon.pubsub_endpoint)
    subscribed(daemon, reader, "a")
    before = psutil.Process(daemon.pid).memory_info().rss
    # events until it misses some: past the 1 MiB high-water mark plus what the kernel buffers
    # (a few MB; bounded, so a publisher that never drops fails here instead of hanging)
    for _batch in range(200):
        for _ in range(200):
            touch(daemon, "b")
        if log_count(daemon, "a subscriber is not keeping up"):
            break
    growth = psutil.Process(daemon.pid).memory_info().rss - before
    touch(daemon, "a")
    assert next_topic(reader) == "watcher.a.updated"  # the others still get theirs
    raw.close()
    reader.close(linger=0)
    assert log_count(daemon, "a subscriber is not keeping up") >= 1
    assert growth >> 20 < 16, f"growth {growth >> 20} MiB"


def test_events_keep_their_order_whether_written_at_once_or_queued(tmp_path: Path) -> None:
    """An event is written the moment it is published when nothing waits in the queue; while
    something does (before the socket is bound, or a burst under CURVE), it queues behind."""
    import asyncio
    import json

    import zmq.asyncio

    from circus.events import EventPublisher

    endpoint = f"ipc://{tmp_path}/events.sock"

    async def main() -> list[int]:
        context = zmq.asyncio.Context()
        publisher = EventPublisher(context, endpoint)
        await publisher.start()
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"watcher.w.")
        sub.connect(endpoint)
        try:
            deadline = time.monotonic() + 10
            while not await sub.poll(50):  # subscribed once a probe gets through
                assert time.monotonic() < deadline, "the subscription never took"
                publisher.publish("probe", "ping", {})
                publisher.publish("w", "probe", {})
            while await sub.poll(100):
                await sub.recv_multipart()
            direct = publisher._direct
            publisher._direct = None  # as before the bind, or under CURVE: queued
            first = [publisher.publish("w", "spawn", {}) for _ in range(3)]
            publisher._direct = direct
            # these find the first three still queued: they must queue behind them
            second = [publisher.publish("w", "reap", {}) for _ in range(3)]
            await asyncio.sleep(0)  # nothing else: the task drains the queue in one turn
            deadline = time.monotonic() + 10
            while publisher._in_flight:
                assert time.monotonic() < deadline, "the queue never drained"
                await asyncio.sleep(0.01)
            third = [publisher.publish("w", "spawn", {}) for _ in range(3)]  # written at once
            expected = first + second + third
            seen: list[int] = []
            while len(seen) < len(expected):
                assert await sub.poll(10_000), f"only {seen} of {expected} arrived"
                _, body = await sub.recv_multipart()
                seen.append(json.loads(body)["seq"])
            assert seen == expected
            return seen
        finally:
            sub.close(linger=0)
            await publisher.close()
            context.term()

    assert len(asyncio.run(main())) == 9
