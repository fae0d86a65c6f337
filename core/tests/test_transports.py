"""Transport-level tests: the clients against real ROUTER/PUB peers on ipc:// sockets.

The peers here are deliberately minimal (they answer with the request's id, or misbehave on
purpose) so that id matching, timeouts, stale replies and reconnection can be provoked
deterministically; the end-to-end tests run the same classes against a real circusd.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from support.router import RouterPeer, echo

from circus.errors import CallError, CallTimeout
from circus.transports import DEFAULT_TIMEOUT, AsyncCommandClient, CommandClient, EventSubscriber
from circus.wire.async_dealer import (
    AsyncClient,
    NativeAsyncCommandClient,
    open_async_command_client,
)
from circus.wire.dealer import BlockingClient, NativeCommandClient, open_command_client

SyncClient = Callable[..., BlockingClient]


@pytest.fixture
def endpoint(tmp_path: Path) -> str:
    return f"ipc://{tmp_path}/control.sock"


def native(endpoint: str, timeout: float = DEFAULT_TIMEOUT) -> NativeCommandClient:
    client = open_command_client(endpoint, timeout=timeout)
    assert isinstance(client, NativeCommandClient)
    return client


#: both blocking clients obey the same rules: libzmq's and the one speaking ZMTP itself
SYNC_CLIENTS = pytest.mark.parametrize("client_of", [CommandClient, native],
                                       ids=["libzmq", "native"])


@SYNC_CLIENTS
def test_sync_call_round_trip_sets_an_id(endpoint: str, client_of: SyncClient) -> None:
    with RouterPeer(endpoint, echo) as peer, client_of(endpoint, timeout=10) as client:
        reply = client.call("list", name="web")
        assert reply["status"] == "ok"
        assert reply["properties"] == {"name": "web"}
        assert len(peer.requests[0]["id"]) == 32
        assert reply["id"] == peer.requests[0]["id"]
        assert len(peer.raw[0]) == 1  # one-frame DEALER request, as circusd requires


@SYNC_CLIENTS
def test_sync_timeout_then_stale_reply_is_discarded(endpoint: str, client_of: SyncClient
                                                    ) -> None:
    held: list[dict[str, Any]] = []

    def slow_first(request: dict[str, Any]) -> list[dict[str, Any]]:
        if request["command"] == "slow":
            held.append(request)  # answered only together with the next request
            return []
        replies = [{"status": "ok", "which": "stale", "id": r["id"]} for r in held]
        return [*replies, {"status": "ok", "which": "fresh", "id": request["id"]}]

    with RouterPeer(endpoint, slow_first), client_of(endpoint) as client:
        started = time.monotonic()
        with pytest.raises(CallTimeout, match="'slow'"):
            client.call("slow", timeout=0.2)
        assert time.monotonic() - started < 1.5
        assert client.call("fast", timeout=10)["which"] == "fresh"


def test_sync_cast_and_raw_frames(endpoint: str) -> None:
    with RouterPeer(endpoint, echo) as peer, CommandClient(endpoint, timeout=10) as client:
        client.cast("stop", name="web")
        client.send_raw([b"not json"])
        assert json.loads(client.recv_raw()[0]) == {"status": "error", "id": None}
        assert peer.requests[0]["msg_type"] == "cast"
        assert peer.requests[0]["properties"] == {"name": "web"}


@SYNC_CLIENTS
def test_sync_call_works_after_the_daemon_restarts(endpoint: str, client_of: SyncClient
                                                   ) -> None:
    with client_of(endpoint, timeout=10) as client:
        with RouterPeer(endpoint, echo):
            assert client.call("first")["command"] == "first"
        # CallTimeout, or (native client) CallError when the write still reached the closing
        # daemon's connection: "may or may not have run"; either way it must not run later
        with pytest.raises(CallError):
            client.call("while-down", timeout=0.3)
        with RouterPeer(endpoint, echo) as peer:
            assert client.call("after", timeout=15)["command"] == "after"
            # the request that timed out while the peer was down was never delivered late
            assert [r["command"] for r in peer.requests] == ["after"]


def native_async(endpoint: str, timeout: float = DEFAULT_TIMEOUT) -> NativeAsyncCommandClient:
    client = open_async_command_client(endpoint, timeout=timeout)
    assert isinstance(client, NativeAsyncCommandClient)
    return client


AsyncClientOf = Callable[..., AsyncClient]
#: both asyncio clients obey the same rules too
ASYNC_CLIENTS = pytest.mark.parametrize("client_of", [AsyncCommandClient, native_async],
                                        ids=["libzmq", "native"])


@ASYNC_CLIENTS
def test_async_concurrent_calls_match_out_of_order_replies(endpoint: str,
                                                           client_of: AsyncClientOf) -> None:
    held: list[dict[str, Any]] = []

    def reverse(request: dict[str, Any]) -> list[dict[str, Any]]:
        held.append(request)
        if len(held) < 3:
            return []
        return [{"status": "ok", "n": r["properties"]["n"], "id": r["id"]} for r in reversed(held)]

    async def main() -> list[int]:
        async with client_of(endpoint, timeout=10) as client:
            replies = await asyncio.gather(*(client.call("x", n=n) for n in range(3)))
            return [r["n"] for r in replies]

    with RouterPeer(endpoint, reverse):
        assert asyncio.run(main()) == [0, 1, 2]


@ASYNC_CLIENTS
def test_async_timeout_does_not_poison_later_calls(endpoint: str, client_of: AsyncClientOf
                                                  ) -> None:
    held: list[dict[str, Any]] = []

    def slow_first(request: dict[str, Any]) -> list[dict[str, Any]]:
        if request["command"] == "slow":
            held.append(request)
            return []
        stale = [{"status": "ok", "which": "stale", "id": r["id"]} for r in held]
        return [*stale, {"status": "ok", "which": "fresh", "id": request["id"]}]

    async def main() -> tuple[str, str]:
        async with client_of(endpoint) as client:
            started = time.monotonic()
            with pytest.raises(CallTimeout):
                await client.call("slow", timeout=0.2)
            assert time.monotonic() - started < 1.5
            fresh = await client.call("fast", timeout=10)
            if isinstance(client, NativeAsyncCommandClient):
                # the late reply came before the fresh one and matched nobody: counted, dropped
                stale = "stale" if client.unmatched == 1 else f"{client.unmatched} unmatched"
            else:
                # libzmq's client sets it aside for recv_raw
                stale = json.loads((await client.recv_raw(timeout=10))[0])["which"]
            await client.cast("noop")
            return fresh["which"], stale

    with RouterPeer(endpoint, slow_first):
        which, stale = asyncio.run(main())
    assert which == "fresh"
    assert stale == "stale"


@pytest.fixture
def publishers(tmp_path: Path) -> Iterator[list[tuple[str, zmq.Socket[bytes]]]]:
    ctx = zmq.Context.instance()
    socks = []
    for i in range(2):
        sock = ctx.socket(zmq.PUB)
        sock.setsockopt(zmq.LINGER, 0)
        endpoint = f"ipc://{tmp_path}/pub{i}.sock"
        sock.bind(endpoint)
        socks.append((endpoint, sock))
    yield socks
    for _, sock in socks:
        sock.close(linger=0)


def test_subscriber_filters_by_prefix_across_endpoints(
    publishers: list[tuple[str, zmq.Socket[bytes]]],
) -> None:
    async def main() -> list[tuple[bytes, bytes]]:
        sub = EventSubscriber([e for e, _ in publishers], topics=["watcher.web."])
        sub.connect()
        got: list[tuple[bytes, bytes]] = []
        try:
            seen: set[bytes] = set()
            async with asyncio.timeout(20):
                # publish until both connections are established (slow joiner)
                while len(seen) < 2:
                    for i, (_, pub) in enumerate(publishers):
                        pub.send_multipart([b"watcher.web.ping%d" % i, b"{}"])
                    try:
                        topic, _ = await asyncio.wait_for(sub.recv(), 0.1)
                        seen.add(topic)
                    except TimeoutError:
                        pass
            while True:  # drop the remaining pings
                try:
                    await asyncio.wait_for(sub.recv(), 0.3)
                except TimeoutError:
                    break
            publishers[0][1].send_multipart([b"watcher.db.spawn", b"{}"])
            publishers[0][1].send_multipart([b"watcher.web.spawn", b'{"n": 0}'])
            publishers[1][1].send_multipart([b"watcher.web.reap", b'{"n": 1}'])
            publishers[1][1].send_multipart([b"bogus-three-frames", b"x", b"y"])
            async with asyncio.timeout(20):
                while len(got) < 2:
                    got.extend(await sub.recv_batch())
        finally:
            sub.close()
        return got

    try:
        events = asyncio.run(main())
    except TimeoutError:
        pytest.fail("events not received in time")
    assert sorted(events) == [(b"watcher.web.reap", b'{"n": 1}'),
                              (b"watcher.web.spawn", b'{"n": 0}')]


@ASYNC_CLIENTS
def test_async_call_works_after_the_daemon_restarts(endpoint: str, client_of: AsyncClientOf
                                                   ) -> None:
    async def main(peers: list[RouterPeer]) -> list[str]:
        async with client_of(endpoint, timeout=10) as client:
            with peers[0]:
                first = await client.call("first")
            with pytest.raises(CallError):  # see the sync test
                await client.call("while-down", timeout=0.3)
            # the new daemon starts while the loop runs (binding it on the loop's thread would
            # stall the libzmq client's pump, which drops the timed-out request on its next turn)
            await asyncio.to_thread(peers[1].__enter__)
            try:
                after = await client.call("after", timeout=15)
            finally:
                peers[1].__exit__()
            return [first["command"], after["command"]]

    peers = [RouterPeer(endpoint, echo), RouterPeer(endpoint, echo)]
    assert asyncio.run(main(peers)) == ["first", "after"]
    # the request that timed out while no daemon listened was dropped, not delivered late
    assert [r["command"] for r in peers[1].requests] == ["after"]
