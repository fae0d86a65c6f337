"""The blocking command client that speaks ZMTP itself (circus.wire.dealer).

The rules it shares with libzmq's client (ids, stale replies, timeouts, a restarted daemon) are
tested on both in ``test_transports.py``; what is its own is here.

Its peers are real: circusd (our own listener), and a libzmq ROUTER (what the original circusd
0.19 runs, so the plugin's calls keep working against it). Faults no real daemon produces on
demand (a connection dropped mid-call, a daemon that never answers) come from a Unix socket
server written for the purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from support.router import RouterPeer, echo

from circus.credentials import PLUGIN_PREFIX, TOKEN_ENV
from circus.curve import PUBLIC_KEY_ENV, SECRET_KEY_ENV, SERVER_KEY_ENV
from circus.errors import CallError, CallTimeout
from circus.testing import CircusdProcess, wait_until
from circus.transports import AsyncCommandClient, CommandClient
from circus.wire import OPT_OUT_ENV
from circus.wire.async_dealer import NativeAsyncCommandClient, open_async_command_client
from circus.wire.dealer import NativeCommandClient, open_command_client
from circus.wire.zmtp import SERVER_GREETING, ready


@pytest.fixture
def endpoint(tmp_path: Path) -> str:
    return f"ipc://{tmp_path}/control.sock"


def native(endpoint: str, **options: float) -> NativeCommandClient:
    client = open_command_client(endpoint, **options)
    assert isinstance(client, NativeCommandClient)
    return client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- against real peers ------------------------------------------------------------------------

def test_calls_to_a_real_circusd(tmp_path: Path) -> None:
    daemon = CircusdProcess("[watcher:sleeper]\ncmd = sleep 300\n", tmp_path).start()
    try:
        with native(daemon.endpoint, timeout=10) as client:
            assert client.call("numwatchers")["numwatchers"] == 1
            assert client.call("list", name="sleeper")["status"] == "ok"
            client.cast("incr", name="sleeper")
            wait_until(lambda: client.call("numprocesses", name="sleeper")["numprocesses"] == 2,
                       "the cast incr to take effect", timeout=20)
            error = client.call("list", name="nope")
            assert error["status"] == "error"
    finally:
        daemon.stop()


def test_a_libzmq_router_sees_one_frame_and_the_plugin_token(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "tok123")
    with RouterPeer(endpoint, echo) as peer, native(endpoint, timeout=10) as client:
        reply = client.call("list", name="web")
        assert reply["properties"] == {"name": "web"}
        assert reply["id"] == peer.requests[0]["id"]
        assert peer.raw[0] == [peer.raw[0][0]]  # one frame, as circusd requires
        assert peer.identities[0].startswith(PLUGIN_PREFIX + b"tok123:")


def test_tcp_endpoint(tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with RouterPeer(endpoint, echo), native(endpoint, timeout=10) as client:
        assert client.call("status")["command"] == "status"


def test_a_call_made_before_the_daemon_listens_is_answered_once_it_does(endpoint: str) -> None:
    peer = RouterPeer(endpoint, echo)
    starter = threading.Timer(0.3, peer.__enter__)
    starter.start()
    try:
        with native(endpoint, timeout=20) as client:
            assert client.call("early")["status"] == "ok"
    finally:
        starter.join(10)
        peer.__exit__()


def test_nothing_listening_times_out_on_time(endpoint: str) -> None:
    started = time.monotonic()
    with native(endpoint) as client, pytest.raises(CallTimeout, match="nothing accepted"):
        client.call("status", timeout=0.3)
    assert time.monotonic() - started < 1.5


def test_the_wrong_endpoint_gets_a_clear_error(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/events.sock"
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.bind(endpoint)
    try:
        started = time.monotonic()
        with native(endpoint) as client, \
                pytest.raises(CallTimeout, match="closed every connection during the ZMTP"):
            client.call("status", timeout=1.0)
        assert time.monotonic() - started < 3
    finally:
        pub.close(linger=0)


# -- faults: a hand-made server ----------------------------------------------------------------

@contextlib.contextmanager
def hand_made_server(path: str, after_request: str) -> Iterator[list[bytes]]:
    """A Unix socket server that greets as a ROUTER, reads one request, then either closes
    (``"close"``) or keeps the connection open without answering (``"mute"``)."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(4)
    listener.settimeout(10)
    received: list[bytes] = []
    done = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                conn.sendall(SERVER_GREETING + ready("ROUTER"))
                data = b""
                while b"status" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                received.append(data)
                if after_request == "mute":
                    done.wait(10)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        done.set()
        listener.close()
        thread.join(10)


def test_a_connection_lost_mid_call_fails_at_once_and_says_so(tmp_path: Path) -> None:
    path = str(tmp_path / "control.sock")
    with hand_made_server(path, "close"), native(f"ipc://{path}", timeout=20) as client:
        started = time.monotonic()
        with pytest.raises(CallError, match="may or may not have run"):
            client.call("status")
        assert time.monotonic() - started < 5  # not the 20 s timeout


def test_a_mute_daemon_times_out_on_time(tmp_path: Path) -> None:
    path = str(tmp_path / "control.sock")
    with hand_made_server(path, "mute") as received, native(f"ipc://{path}") as client:
        started = time.monotonic()
        with pytest.raises(CallTimeout, match=r"within 0\.3 s"):
            client.call("status", timeout=0.3)
        assert time.monotonic() - started < 1.5
        wait_until(lambda: bool(received), "the server to read the request", timeout=10)
        assert b"status" in received[0]


# -- which client ------------------------------------------------------------------------------

def test_libzmq_is_kept_for_curve_and_for_endpoints_it_alone_parses(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(open_command_client(endpoint), NativeCommandClient)
    assert isinstance(open_command_client("tcp://localhost:5555"), NativeCommandClient)
    for only_libzmq in ("ipc://@abstract", "tcp://example.org:5555", "tcp://eth0:5555",
                        "tcp://*:5555"):
        assert isinstance(open_command_client(only_libzmq), CommandClient), only_libzmq
    monkeypatch.setenv(OPT_OUT_ENV, "1")  # one switch turns every native client off
    assert isinstance(open_command_client(endpoint), CommandClient)
    assert isinstance(open_async_command_client(endpoint), AsyncCommandClient)
    monkeypatch.delenv(OPT_OUT_ENV)
    keys = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
    for name in (SERVER_KEY_ENV, PUBLIC_KEY_ENV, SECRET_KEY_ENV):
        monkeypatch.setenv(name, keys)
    assert isinstance(open_command_client(endpoint), CommandClient)
    assert isinstance(open_async_command_client(endpoint), AsyncCommandClient)


# -- the asyncio client ------------------------------------------------------------------------

def native_async(endpoint: str, **options: float) -> NativeAsyncCommandClient:
    client = open_async_command_client(endpoint, **options)
    assert isinstance(client, NativeAsyncCommandClient)
    return client


def test_async_calls_and_an_early_cast_to_a_real_circusd(tmp_path: Path) -> None:
    daemon = CircusdProcess("[watcher:sleeper]\ncmd = sleep 300\n", tmp_path).start()

    async def main() -> list[int]:
        async with native_async(daemon.endpoint, timeout=10) as client:
            client.cast_nowait("incr", name="sleeper")  # before any connection exists
            counts = [(await client.call("numwatchers"))["numwatchers"]]
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                count = (await client.call("numprocesses", name="sleeper"))["numprocesses"]
                if count == 2:
                    break
                await asyncio.sleep(0.05)
            counts.append(count)
            replies = await asyncio.gather(*(client.call("list", name="sleeper")
                                             for _ in range(20)))
            counts.append(sum(r["status"] == "ok" for r in replies))
            return counts

    try:
        assert asyncio.run(main()) == [1, 2, 20]
    finally:
        daemon.stop()


def test_async_connection_lost_mid_call_fails_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "control.sock")

    async def main() -> float:
        async with native_async(f"ipc://{path}", timeout=20) as client:
            started = time.monotonic()
            with pytest.raises(CallError, match="may or may not have run"):
                await client.call("status")
            return time.monotonic() - started

    with hand_made_server(path, "close"):
        assert asyncio.run(main()) < 5  # not the 20 s timeout


def test_async_nothing_listening_times_out_on_time(endpoint: str) -> None:
    async def main() -> None:
        async with native_async(endpoint) as client:
            await client.call("status", timeout=0.3)

    started = time.monotonic()
    with pytest.raises(CallTimeout, match="could not connect"):
        asyncio.run(main())
    assert time.monotonic() - started < 1.5


def test_async_close_fails_the_calls_still_waiting(tmp_path: Path) -> None:
    path = str(tmp_path / "control.sock")

    async def main() -> None:
        client = native_async(f"ipc://{path}", timeout=20)
        waiting = asyncio.ensure_future(client.call("status"))
        deadline = time.monotonic() + 10
        while not client._pending:  # the request is written and awaited
            assert time.monotonic() < deadline, "the call never got under way"
            await asyncio.sleep(0.01)
        await client.close()
        with pytest.raises(CallError, match="closed"):
            await asyncio.wait_for(waiting, 5)

    with hand_made_server(path, "mute"):
        asyncio.run(main())
