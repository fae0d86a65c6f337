"""The plugin's own ZMTP subscriber (circus.wire.subscriber) against real publishers.

Publishers: circusd's own (``bind_publisher``, in-process, and a real circusd) and a libzmq
PUB, which is what the original circusd 0.19 runs. Hand-written servers play what no real
publisher does: garbage, another socket type, CURVE, silence, PING.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
import zmq
import zmq.asyncio

from circus import curve
from circus.events import bind_publisher
from circus.listeners.publisher import NativePublisher
from circus.testing import CircusdProcess
from circus.transports import Event, EventSubscriber
from circus.wire import subscriber as module
from circus.wire.subscriber import NativeSubscriber, SubscriberClosed, open_subscriber
from circus.wire.zmtp import (
    GREETING_SIZE,
    SERVER_GREETING,
    FrameReader,
    command,
    message,
    ready,
)

TIMEOUT = 10.0


class Pub:
    """A publisher bound on ``endpoint``: circusd's own, or a libzmq PUB (what 0.19 runs)."""

    def __init__(self, kind: str, endpoint: str) -> None:
        self.kind = kind
        self.endpoint = endpoint
        self.context = zmq.asyncio.Context()
        self.native: NativePublisher | None = None
        self.sock: zmq.asyncio.Socket | None = None

    async def open(self) -> Pub:
        if self.kind == "circusd":
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            publisher = await bind_publisher(self.context, self.endpoint, ready)
            assert isinstance(publisher, NativePublisher)
            self.native = publisher
            self.endpoint = publisher.endpoint
        else:
            self.sock = self.context.socket(zmq.PUB)
            self.sock.setsockopt(zmq.LINGER, 0)
            self.sock.bind(self.endpoint)
            self.endpoint = self.sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        return self

    async def send(self, frames: list[bytes]) -> None:
        if self.native is not None:
            await self.native.send_multipart(frames)
        else:
            assert self.sock is not None
            await self.sock.send_multipart(frames)

    async def close(self) -> None:
        if self.native is not None:
            await self.native.aclose(0)
        if self.sock is not None:
            self.sock.close(linger=0)
        self.context.term()


async def until(condition: Callable[[], object], what: str, timeout: float = TIMEOUT) -> None:
    """Poll ``condition`` on the loop (every 20 ms) until true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def collect_until(sub: NativeSubscriber, last: bytes) -> list[Event]:
    """Events received up to and including the first with topic ``last`` (bounded)."""
    got: list[Event] = []
    async with asyncio.timeout(TIMEOUT):
        while not got or got[-1][0] != last:
            got += await sub.recv_batch()
    return got[: next(i for i, (topic, _) in enumerate(got) if topic == last) + 1]


async def received(sub: NativeSubscriber, pub: Pub, topic: bytes) -> None:
    """Publish ``topic`` until ``sub`` receives it (bounded)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        await pub.send([topic, b"{}"])
        try:
            if any(t == topic for t, _ in await asyncio.wait_for(sub.recv_batch(), 0.05)):
                return
        except TimeoutError:
            pass
        assert time.monotonic() < deadline, f"{topic!r} never arrived"


async def subscribed(sub: NativeSubscriber, pub: Pub) -> None:
    """Wait until ``sub`` receives events (a subscription takes effect a little after the
    connection, as with any PUB), then leave nothing queued."""
    await received(sub, pub, b"watcher.a.probe")
    await pub.send([b"watcher.a.synced", b"{}"])
    await collect_until(sub, b"watcher.a.synced")


def endpoint_for(transport: str, tmp_path: Path) -> str:
    return f"ipc://{tmp_path}/pub.sock" if transport == "ipc" else "tcp://127.0.0.1:*"


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
@pytest.mark.parametrize("kind", ["circusd", "libzmq"])
def test_events_arrive_and_topic_prefixes_filter(tmp_path: Path, kind: str, transport: str
                                                 ) -> None:
    long = b"y" * 300  # a LONG frame
    big = b"z" * 200_000  # past the fast path: read frame by frame

    async def scenario() -> list[Event]:
        pub = await Pub(kind, endpoint_for(transport, tmp_path)).open()
        sub = NativeSubscriber(pub.endpoint, ["watcher.a.", "watcher.c."])
        try:
            sub.connect()
            await subscribed(sub, pub)
            await pub.send([b"watcher.b.skipped", b"{}"])
            await pub.send([b"watcher.c.one", long])
            await pub.send([b"watcher.a.three", b"1", b"2"])  # not an event: skipped
            await pub.send([b"watcher.a.big", big])
            await pub.send([b"watcher.a.end", b"{}"])
            return await collect_until(sub, b"watcher.a.end")
        finally:
            sub.close()
            await pub.close()

    got = asyncio.run(scenario())
    assert got == [(b"watcher.c.one", long), (b"watcher.a.big", big), (b"watcher.a.end", b"{}")]


def test_events_of_a_real_circusd(tmp_path: Path) -> None:
    config = "[watcher:a]\ncmd = sleep 600\n\n[watcher:b]\ncmd = sleep 600\n"

    async def scenario(daemon: CircusdProcess) -> list[Event]:
        sub = open_subscriber(daemon.pubsub_endpoint, ["watcher.a."])
        assert isinstance(sub, NativeSubscriber)
        got: list[Event] = []
        try:
            sub.connect()
            deadline = time.monotonic() + TIMEOUT
            while not got:
                for name in ("b", "a"):
                    await asyncio.to_thread(daemon.call, "set", name=name,
                                            options={"graceful_timeout": 30})
                try:
                    got = await asyncio.wait_for(sub.recv_batch(), 0.2)
                except TimeoutError:
                    assert time.monotonic() < deadline, "no event from circusd"
        finally:
            sub.close()
        return got

    with CircusdProcess(config, tmp_path) as daemon:
        got = asyncio.run(scenario(daemon))
    assert {topic for topic, _ in got} == {b"watcher.a.updated"}
    assert b'"seq"' in got[0][1]


@pytest.mark.parametrize("kind", ["circusd", "libzmq"])
def test_reconnects_to_a_new_publisher_on_the_same_path(tmp_path: Path, kind: str) -> None:
    endpoint = f"ipc://{tmp_path}/pub.sock"

    async def scenario() -> int:
        pub = await Pub(kind, endpoint).open()
        sub = NativeSubscriber(endpoint, ["watcher."])
        try:
            sub.connect()
            await subscribed(sub, pub)
            await pub.close()
            await until(lambda: sub._link is None, "the subscriber to notice")
            pub = await Pub(kind, endpoint).open()
            await subscribed(sub, pub)  # subscribed again on the new connection
            await pub.send([b"watcher.a.after", b"{}"])
            assert (await collect_until(sub, b"watcher.a.after"))[-1][0] == b"watcher.a.after"
            return sub.connections
        finally:
            sub.close()
            await pub.close()

    assert asyncio.run(scenario()) == 2


def test_subscriber_started_before_the_publisher(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/pub.sock"

    async def scenario() -> int:
        sub = NativeSubscriber(endpoint)
        try:
            sub.connect()
            await until(lambda: sub.failures >= 3, "connection attempts (ENOENT)")
            pub = await Pub("circusd", endpoint).open()
            try:
                await subscribed(sub, pub)
            finally:
                await pub.close()
            return sub.failures
        finally:
            sub.close()

    with structlog.testing.capture_logs() as logs:
        failures = asyncio.run(scenario())
    absent = [e for e in logs if e["event"] == "event publisher not reachable; retrying"]
    assert len(absent) == 1, "an outage is said once, not per attempt"
    assert absent[0]["reason"] == "No such file or directory"
    assert absent[0]["log_level"] == "info"
    reached = [e for e in logs if e["event"] == "event publisher reached"]
    assert reached
    assert reached[0]["attempts"] == failures + 1


class RawServer:
    """A hand-written server on an ipc path: each connection runs ``behaviour``; the time of
    each connection is recorded."""

    def __init__(self, path: str,
                 behaviour: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                     Awaitable[None]]) -> None:
        self.path = path
        self.behaviour = behaviour
        self.arrivals: list[float] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_unix_server(self._serve, self.path)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.arrivals.append(time.monotonic())
        self.writers.append(writer)
        try:
            await self.behaviour(reader, writer)
            await reader.read()  # until the subscriber hangs up
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()


def greeting(mechanism: bytes) -> bytes:
    return SERVER_GREETING[:12] + mechanism.ljust(20, b"\x00") + SERVER_GREETING[32:]


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 400 Bad Request\r\n".ljust(GREETING_SIZE, b" "))


async def router(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(SERVER_GREETING + ready("ROUTER"))


async def curve_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(greeting(b"CURVE"))


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    pass


Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def attempts_then_publisher(path: str, behaviour: Behaviour, count: int
                                  ) -> tuple[list[float], int]:
    """Serve ``behaviour`` at ``path`` until a subscriber came ``count`` times, then bind a
    real publisher there: the times of the attempts and the subscriber's failures, once the
    subscriber got events from the publisher (it survived)."""
    sub = NativeSubscriber(f"ipc://{path}")
    try:
        async with RawServer(path, behaviour) as server:
            sub.connect()
            await until(lambda: len(server.arrivals) >= count, f"{count} attempts")
        arrivals = list(server.arrivals)
        pub = await Pub("libzmq", f"ipc://{path}").open()
        try:
            await subscribed(sub, pub)
        finally:
            await pub.close()
        return arrivals, sub.failures
    finally:
        sub.close()


@pytest.mark.parametrize(("behaviour", "reason"), [
    (garbage, "not a ZMTP 3 greeting"),
    (router, "a ROUTER socket cannot talk to a SUB"),
    (curve_server, "the publisher requires CURVE security"),
    (silent, "no ZMTP handshake within 0.2 s"),
])
def test_a_server_that_is_no_publisher_is_named_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, behaviour: Behaviour, reason: str,
) -> None:
    monkeypatch.setattr(module, "HANDSHAKE_TIMEOUT", 0.2)
    with structlog.testing.capture_logs() as logs:
        asyncio.run(attempts_then_publisher(str(tmp_path / "pub.sock"), behaviour, 2))
    warned = [e for e in logs if e["event"].startswith("dropped the connection")]
    assert warned, [e["event"] for e in logs]
    assert reason in warned[0]["reason"]
    assert warned[0]["log_level"] == "warning"


def test_retries_back_off_and_their_warnings_are_rate_limited(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        arrivals, failures = asyncio.run(
            attempts_then_publisher(str(tmp_path / "pub.sock"), garbage, 7))
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    for index, gap in enumerate(gaps):  # 0.1 s doubling up to 1 s (load only lengthens them)
        assert gap >= 0.09 * min(2**index, 10), gaps
    warned = [e for e in logs if e["event"].startswith("dropped the connection")]
    assert failures >= len(arrivals) >= 7
    assert len(warned) == 5  # the Throttle's burst per 10 s; the rest are counted...
    # ...and reported on the next line that gets through, or when the subscriber closes
    flushed = [e for e in logs if e["event"] == "similar warnings suppressed"]
    assert sum(e.get("suppressed", 0) for e in warned + flushed) == len(arrivals) - 5


def test_ping_is_answered_and_events_follow(tmp_path: Path) -> None:
    path = str(tmp_path / "pub.sock")
    pong: asyncio.Future[bytes] | None = None

    async def publisher(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(SERVER_GREETING + ready("XPUB"))
        await reader.readexactly(GREETING_SIZE)
        handshake = ready("SUB")
        assert await reader.readexactly(len(handshake)) == handshake
        subscription = message([b"\x01watcher."])
        assert await reader.readexactly(len(subscription)) == subscription
        writer.write(command("PING", b"\x00\x0ahello"))
        answer = command("PONG", b"hello")
        assert pong is not None
        pong.set_result(await reader.readexactly(len(answer)))
        writer.write(message([b"watcher.a.after-ping", b"{}"]))

    async def scenario() -> tuple[bytes, list[Event]]:
        nonlocal pong
        pong = asyncio.get_running_loop().create_future()
        sub = NativeSubscriber(f"ipc://{path}", ["watcher."])
        try:
            async with RawServer(path, publisher):
                sub.connect()
                answer = await asyncio.wait_for(pong, TIMEOUT)
                got = await asyncio.wait_for(sub.recv_batch(), TIMEOUT)
            return answer, got
        finally:
            sub.close()

    answer, got = asyncio.run(scenario())
    assert answer == command("PONG", b"hello")
    assert got == [(b"watcher.a.after-ping", b"{}")]


def test_any_split_of_the_stream_gives_the_same_events(tmp_path: Path) -> None:
    """Events, commands, long and big frames, messages of other shapes, written in pieces of
    every size: what arrives is the events, in order, whatever the reads' boundaries."""
    rng = random.Random(1234)
    stream, expected = bytearray(), []
    for index in range(3000):
        pick = rng.random()
        if pick < 0.1:
            stream += command("PING", b"\x00\x01ctx")
            continue
        if pick < 0.2:
            stream += message([b"watcher.a.three", b"1", b"2"])  # not an event
            continue
        if pick < 0.25:
            stream += message([b"other.skipped", b"{}"])  # not subscribed
            continue
        size = rng.choice([0, 10, 255, 256, 300, 65_535, 70_000]) if pick < 0.4 else 60
        frames = [b"watcher.a.%d" % index, bytes([index % 256]) * size]
        stream += message(frames)
        expected.append((frames[0], frames[1]))
    stream += message([b"watcher.a.end", b"{}"])
    expected.append((b"watcher.a.end", b"{}"))
    path = str(tmp_path / "pub.sock")

    async def publisher(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(SERVER_GREETING + ready("PUB"))
        await reader.readexactly(GREETING_SIZE)
        pos = 0
        while pos < len(stream):
            step = rng.choice([1, 2, 3, 8, 9, 10, 100, 4096, 70_000])
            writer.write(stream[pos : pos + step])
            pos += step
            await writer.drain()
            await asyncio.sleep(0)  # let the subscriber read this piece on its own

    async def scenario() -> list[Event]:
        sub = NativeSubscriber(f"ipc://{path}", ["watcher.a."])
        try:
            async with RawServer(path, publisher):
                sub.connect()
                return await collect_until(sub, b"watcher.a.end")
        finally:
            sub.close()

    got = asyncio.run(scenario())
    assert len(got) == len(expected)
    assert got == expected


def test_the_reader_says_when_the_fast_path_may_take_over() -> None:
    reader = FrameReader(keep_frames=2, keep_bytes=1000, hard_bytes=1000)
    assert not reader.between_messages  # no greeting yet
    reader.feed(SERVER_GREETING[:10])
    assert not reader.between_messages
    reader.feed(SERVER_GREETING[10:] + ready("PUB"))
    assert reader.between_messages
    event = message([b"watcher.a.x", b"{}"])
    for cut in range(1, len(event)):  # inside a header, a body, between the two frames
        reader.feed(event[:cut])
        assert not reader.between_messages, cut
        reader.feed(event[cut:])
        assert reader.between_messages, cut


def test_a_slow_consumer_holds_a_bounded_queue_and_the_publisher_drops(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/pub.sock"
    hwm = 100

    async def scenario() -> tuple[int, int, int]:
        pub = await Pub("circusd", endpoint).open()
        sub = NativeSubscriber(endpoint, ["watcher."], hwm=hwm)
        try:
            sub.connect()
            await subscribed(sub, pub)
            payload = b"p" * 200
            assert pub.native is not None
            sent = 0
            while pub.native.dropped == 0:  # until circusd gives up on this subscriber
                assert sent < 500_000, "the publisher never dropped"
                await pub.send([b"watcher.a.fill", payload])
                sent += 1
                if sent % 200 == 0:
                    await asyncio.sleep(0)  # let the subscriber read what it wants to
            held, held_bytes = sub._queued, sub._queued_bytes
            # the consumer comes back: reading resumes and newer events flow again
            await received(sub, pub, b"watcher.a.end")
            return held, held_bytes, pub.native.dropped
        finally:
            sub.close()
            await pub.close()

    held, held_bytes, dropped = asyncio.run(scenario())
    assert dropped > 0
    # the high-water mark plus what one read of the socket (256 KiB at most) holds
    assert hwm <= held < hwm + (256 << 10) // 200, held
    assert held_bytes < 2 << 20


def test_a_message_past_the_hard_cap_drops_the_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(module, "MAX_MESSAGE", 100_000)
    endpoint = f"ipc://{tmp_path}/pub.sock"

    async def scenario() -> int:
        pub = await Pub("libzmq", endpoint).open()
        sub = NativeSubscriber(endpoint, ["watcher."])
        try:
            sub.connect()
            await subscribed(sub, pub)
            await pub.send([b"watcher.a.huge", b"h" * 200_000])
            await until(lambda: sub.connections == 1 and sub._link is None, "the drop")
            await subscribed(sub, pub)  # connected and subscribed again
            return sub.connections
        finally:
            sub.close()
            await pub.close()

    with structlog.testing.capture_logs() as logs:
        assert asyncio.run(scenario()) == 2
    warned = [e for e in logs if e["event"].startswith("dropped the connection")]
    assert "message of more than 100000 bytes" in warned[0]["reason"]


def test_close_wakes_a_waiting_recv(tmp_path: Path) -> None:
    async def scenario() -> None:
        sub = NativeSubscriber(f"ipc://{tmp_path}/nobody.sock")
        waiting = asyncio.ensure_future(sub.recv())
        await until(lambda: sub._waiter is not None, "recv to wait")
        with pytest.raises(RuntimeError, match="already awaited"):
            await sub.recv_batch()
        sub.close()
        with pytest.raises(SubscriberClosed):
            await asyncio.wait_for(waiting, TIMEOUT)
        with pytest.raises(SubscriberClosed):
            await sub.recv_batch()

    asyncio.run(scenario())


@pytest.mark.parametrize(("endpoints", "native"), [
    ("ipc:///tmp/circus-events.sock", True),
    ("tcp://127.0.0.1:5556", True),
    ("tcp://localhost:5556", True),
    ("tcp://circus.invalid:5556", False),  # a host name: libzmq resolves it
    ("ipc://@abstract", False),
    (["ipc:///tmp/a.sock", "ipc:///tmp/b.sock"], False),
])
def test_open_subscriber_picks_the_native_one_where_it_applies(
    endpoints: str | list[str], native: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (curve.SERVER_KEY_ENV, curve.PUBLIC_KEY_ENV, curve.SECRET_KEY_ENV,
                 "CIRCUS_NO_NATIVE_WIRE"):
        monkeypatch.delenv(name, raising=False)
    sub = open_subscriber(endpoints)
    assert isinstance(sub, NativeSubscriber if native else EventSubscriber)


def test_curve_and_the_opt_out_keep_libzmq(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = "ipc:///tmp/circus-events.sock"
    monkeypatch.setenv("CIRCUS_NO_NATIVE_WIRE", "1")
    assert isinstance(open_subscriber(endpoint), EventSubscriber)
    monkeypatch.delenv("CIRCUS_NO_NATIVE_WIRE")
    server_public, _ = zmq.curve_keypair()
    public, secret = zmq.curve_keypair()
    # keys given by the caller (circusctl --curve-key ...) mean libzmq as well
    given = curve.ClientKeys(server_public, public, secret)
    assert isinstance(open_subscriber(endpoint, curve=given), EventSubscriber)
    keys: dict[str, Any] = {curve.SERVER_KEY_ENV: server_public, curve.PUBLIC_KEY_ENV: public,
                            curve.SECRET_KEY_ENV: secret}
    for name, value in keys.items():
        monkeypatch.setenv(name, value.decode("ascii"))
    assert isinstance(open_subscriber(endpoint), EventSubscriber)
