"""The control channel read by circusd itself (circus.listeners.native), against a real circusd.

Hostile peers are played with raw sockets speaking ZMTP by hand (libzmq clients cannot send an
unfinished message or ignore their replies); ordinary clients are pyzmq sockets. Each test checks
what a peer costs circusd (its RSS, read from /proc) and that everyone else is still answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import zmq
import zmq.asyncio

from circus.client import CircusClient
from circus.commands.dispatch import MAX_MESSAGE_SIZE
from circus.listeners.native import PARTIAL_BUDGET
from circus.testing import CircusdProcess, free_port, log_count, wait_until

CONFIG = "[watcher:sleeper]\ncmd = sleep 600\nnumprocesses = 1\n"
TIMEOUT = 10.0
Context = zmq.Context[zmq.Socket[bytes]]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[CircusdProcess]:
    # one per test: the warnings a test looks for are rate-limited (5 per 10 s), so another
    # test's refusals must not use up the budget
    with CircusdProcess(CONFIG, tmp_path) as running:
        yield running



def rss(daemon: CircusdProcess) -> int:
    return int(psutil.Process(daemon.pid).memory_info().rss)


def answers(daemon: CircusdProcess) -> bool:
    return bool(daemon.call("numwatchers")["numwatchers"] == 1)


class RawPeer:
    """A ZMTP 3.0 client written from the spec: greeting, READY, then frames."""

    def __init__(self, path: str, *, kind: bytes = b"DEALER", mechanism: bytes = b"NULL") -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(path)
        self.sock.sendall(b"\xff" + b"\x00" * 8 + b"\x7f\x03\x00"
                          + mechanism.ljust(20, b"\x00") + b"\x00" * 32)
        greeting = self._read(64)
        assert greeting[10] == 3
        assert greeting[12:16] == b"NULL"
        props = b"\x0bSocket-Type" + len(kind).to_bytes(4, "big") + kind
        self.sock.sendall(b"\x04" + bytes([6 + len(props)]) + b"\x05READY" + props)
        flags, body = self.read_frame()
        assert flags & 0x04
        assert body.startswith(b"\x05READY")

    def _read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("closed by circusd")
            data += chunk
        return data

    def read_frame(self) -> tuple[int, bytes]:
        flags = self._read(1)[0]
        size = int.from_bytes(self._read(8 if flags & 0x02 else 1), "big")
        return flags, self._read(size)

    def send_frame(self, body: bytes, *, more: bool = False) -> None:
        flags = 0x01 if more else 0
        if len(body) > 255:
            self.sock.sendall(bytes([flags | 0x02]) + len(body).to_bytes(8, "big") + body)
        else:
            self.sock.sendall(bytes([flags, len(body)]) + body)

    def closed_by_peer(self, timeout: float = TIMEOUT) -> bool:
        """True once circusd closed the connection (reads until EOF or a reset)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except (ConnectionError, TimeoutError):
            return not isinstance(sys.exc_info()[1], TimeoutError)
        return True

    def close(self) -> None:
        self.sock.close()


def control_path(daemon: CircusdProcess) -> str:
    return daemon.endpoint[len("ipc://") :]


def test_an_unfinished_multipart_flood_costs_circusd_next_to_nothing(
    daemon: CircusdProcess,
) -> None:
    # On main before this listener: +1 GB in 10 s with libzmq buffering; the memory guard
    # that followed still let it reach 180-320 MB before re-binding.
    before = rss(daemon)
    peak = before
    peer = RawPeer(control_path(daemon))
    frame = b"\x03" + (1 << 20).to_bytes(8, "big") + b"u" * (1 << 20)
    sent = 0
    with contextlib.suppress(ConnectionError, TimeoutError):
        while sent < 64 << 20:
            peer.sock.sendall(frame)
            sent += len(frame)
            peak = max(peak, rss(daemon))
    peer.close()
    assert sent < 40 << 20, "circusd kept reading past the 32 MiB hard limit"
    assert (peak - before) >> 20 < 16, f"peak growth {(peak - before) >> 20} MiB"
    assert answers(daemon)
    assert log_count(daemon, "the hard limit") >= 1


def test_slow_unfinished_requests_share_a_bounded_budget(daemon: CircusdProcess) -> None:
    before = rss(daemon)
    peers = []
    chunk = MAX_MESSAGE_SIZE - 1000  # each stays within the size a request may keep
    count = 2 * PARTIAL_BUDGET // chunk + 4
    for _ in range(count):
        peer = RawPeer(control_path(daemon))
        with contextlib.suppress(ConnectionError):
            peer.sock.sendall(b"\x03" + (chunk + 10).to_bytes(8, "big") + b"p" * chunk)
        peers.append(peer)
    assert answers(daemon)  # also makes sure circusd has read everything sent before
    growth = rss(daemon) - before
    closed = sum(peer.closed_by_peer(timeout=0.2) for peer in peers)
    for peer in peers:
        peer.close()
    assert closed >= count // 2 - 2, f"only {closed} of {count} hoarders were closed"
    assert growth >> 20 < 2 * (PARTIAL_BUDGET >> 20), f"growth {growth >> 20} MiB"
    assert log_count(daemon, "holding the most unfinished input") >= 1


def test_a_client_that_never_reads_its_replies_is_no_longer_read(daemon: CircusdProcess) -> None:
    before = rss(daemon)
    peer = RawPeer(control_path(daemon))
    request = json.dumps({"id": "x" * 200, "command": "status"}).encode()
    peer.sock.settimeout(2.0)
    sent = 0
    with contextlib.suppress(TimeoutError):
        while sent < 2_000_000:  # ~8 MB of requests, whose replies it never reads
            peer.send_frame(request)
            sent += 1
    assert sent < 2_000_000, "circusd kept reading a client that reads none of its replies"
    assert answers(daemon)
    assert (rss(daemon) - before) >> 20 < 32
    peer.close()


def test_a_ping_is_answered_with_a_pong(daemon: CircusdProcess) -> None:
    peer = RawPeer(control_path(daemon))
    peer.sock.sendall(b"\x04\x0b\x04PING\x00\x0aabcd")  # TTL 1 s, context "abcd"
    flags, body = peer.read_frame()
    peer.close()
    assert flags & 0x04
    assert body == b"\x04PONGabcd"


def test_a_curve_client_on_a_plain_endpoint_is_named_in_the_log(
    daemon: CircusdProcess, context: Context,
) -> None:
    public, secret = zmq.curve_keypair()
    server_public, _ = zmq.curve_keypair()
    sock = context.socket(zmq.DEALER)
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.curve_serverkey = server_public
    sock.connect(daemon.endpoint)
    sock.send(b'{"id": "c", "command": "numwatchers"}')
    wait_until(lambda: log_count(daemon, "left during the ZMTP greeting") >= 1,
               "the refusal of a CURVE client logged", timeout=TIMEOUT, daemon=daemon)
    assert not sock.poll(200)
    sock.close(linger=0)


def test_a_socket_type_that_cannot_talk_to_a_router_is_refused(
    daemon: CircusdProcess, context: Context,
) -> None:
    sock = context.socket(zmq.PUB)
    sock.connect(daemon.endpoint)
    wait_until(lambda: log_count(daemon, "a PUB socket cannot talk to a ROUTER") >= 1,
               "the refusal of a PUB socket logged", timeout=TIMEOUT, daemon=daemon)
    sock.close(linger=0)
    assert answers(daemon)


def test_an_identity_in_use_waits_until_it_is_free(
    daemon: CircusdProcess, context: Context,
) -> None:
    identity = uuid.uuid4().hex.encode()
    socks = []
    for _ in range(2):
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, identity)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, 50)
        sock.connect(daemon.endpoint)
        socks.append(sock)
        sock.send(b'{"id": "i", "command": "numwatchers"}')
        if len(socks) == 1:
            assert sock.poll(int(TIMEOUT * 1000)), "the first connection is not answered"
            sock.recv()
    assert not socks[1].poll(500), "two connections shared one routing id"
    socks[0].close(linger=0)
    assert socks[1].poll(int(TIMEOUT * 1000)), "the identity was freed but never handed over"
    assert json.loads(socks[1].recv())["numwatchers"] == 1
    socks[1].close(linger=0)


def test_circusd_serves_tcp_natively_and_the_port_is_free_after_quit(tmp_path: Path) -> None:
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    config = tmp_path / "circus.ini"
    config.write_text(f"[circus]\nendpoint = {endpoint}\n"
                      f"pubsub_endpoint = ipc://{tmp_path}/events.sock\n\n{CONFIG}")
    log = tmp_path / "circusd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "circus.circusd", str(config)],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        client = CircusClient(endpoint=endpoint, timeout=2)
        reply: dict[str, Any] = {}

        def up() -> bool:
            nonlocal reply
            with contextlib.suppress(Exception):
                reply = client.call({"command": "numwatchers"})
            return reply.get("numwatchers") == 1

        wait_until(up, "circusd answering on TCP", timeout=30)
        raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 40)
        assert raw.recv(64)[:1] == b"\xff"  # our greeting, then the connection is closed
        raw.close()
        assert client.call({"command": "quit"})["status"] == "ok"
        client.stop()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
    text = log.read_text()
    assert "not a ZMTP 3 greeting" in text
    assert f"endpoint='{endpoint}'" in text
    start = time.monotonic()
    assert time.monotonic() - start < TIMEOUT


def test_the_ipc_file_is_removed_at_quit(tmp_path: Path) -> None:
    with CircusdProcess(CONFIG, tmp_path) as running:
        path = Path(control_path(running))
        assert path.is_socket()
        assert (path.stat().st_mode & 0o777) == 0o600
    assert not path.exists()


def test_many_clients_at_once_are_all_answered(daemon: CircusdProcess, context: Context) -> None:
    socks = []
    for index in range(50):
        sock = context.socket(zmq.REQ if index % 2 else zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(daemon.endpoint)
        socks.append(sock)
    for index, sock in enumerate(socks):
        sock.send(json.dumps({"id": str(index), "command": "numwatchers"}).encode())
    for index, sock in enumerate(socks):
        assert sock.poll(int(TIMEOUT * 1000))
        assert json.loads(sock.recv())["id"] == str(index)
        sock.close(linger=0)


def test_requests_split_byte_by_byte_are_answered(daemon: CircusdProcess) -> None:
    peer = RawPeer(control_path(daemon))
    request = b'{"id": "slow", "command": "numwatchers"}'
    for byte in bytes([0, len(request)]) + request:
        peer.sock.sendall(bytes([byte]))
    flags, body = peer.read_frame()
    peer.close()
    assert flags == 0
    reply = json.loads(body)
    assert (reply["id"], reply["numwatchers"]) == ("slow", 1)


def test_a_flood_does_not_stop_other_clients(daemon: CircusdProcess) -> None:
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                peer = RawPeer(control_path(daemon))
                with contextlib.suppress(OSError):
                    while not stop.is_set():
                        peer.sock.sendall(b"\x01\x00" * 4096)  # empty frames, never the last
                peer.close()

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    try:
        for _ in range(20):
            assert answers(daemon)
    finally:
        stop.set()
        thread.join(TIMEOUT)
    assert log_count(daemon, "more than 256 frames") >= 1


def test_connections_that_leave_while_waiting_for_an_identity_are_forgotten(
    tmp_path: Path,
) -> None:
    # A client reconnecting in a loop with an identity another connection holds must not make
    # the listener remember every attempt.
    from circus.binding import BindPolicy
    from circus.listeners import native_address
    from circus.listeners.native import NativeListener
    from circus.logthrottle import Throttle

    endpoint = f"ipc://{tmp_path}/waiting.sock"

    async def scenario() -> tuple[int, int]:
        address = native_address(endpoint)
        assert address is not None
        listener = NativeListener(endpoint, address, BindPolicy(), keep_bytes=1 << 20,
                                  hard_bytes=32 << 20, wakeup=lambda: None,
                                  warn=Throttle("test"))
        await listener.open()
        ctx = zmq.asyncio.Context()
        try:
            holder = ctx.socket(zmq.DEALER)
            holder.setsockopt(zmq.IDENTITY, b"taken")
            holder.connect(endpoint)
            await holder.send(b"hello")
            while listener.receive() is None:
                await asyncio.sleep(0.005)
            for _ in range(20):
                late = ctx.socket(zmq.DEALER)
                late.setsockopt(zmq.IDENTITY, b"taken")
                late.connect(endpoint)
                await late.send(b"me too")
                loop = asyncio.get_running_loop()
                deadline = loop.time() + TIMEOUT
                while len(listener.peers) < 2 and loop.time() < deadline:
                    await asyncio.sleep(0.005)
                late.close(linger=0)
                while len(listener.peers) > 1 and loop.time() < deadline:
                    await asyncio.sleep(0.005)
            waiting = sum(len(queue) for queue in listener._waiting.values())
            holder.close(linger=0)
            return waiting, len(listener.peers)
        finally:
            await listener.close(0)
            ctx.term()

    waiting, peers = asyncio.run(scenario())
    assert waiting == 0
    assert peers == 1
