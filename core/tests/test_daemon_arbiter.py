"""circus.arbiter in-process: real sockets on ipc://, real children, the Python API."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio
from support import pid_state, wait_gone

from circus import get_arbiter
from circus.arbiter import Arbiter
from circus.config import load_config
from circus.errors import ConfigError, MessageError


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))


def endpoints(tmp_path: Path) -> dict[str, Any]:
    return {
        "endpoint": f"ipc://{tmp_path}/c.sock",
        "pubsub_endpoint": f"ipc://{tmp_path}/p.sock",
    }


class Subscriber:
    """A SUB socket on the arbiter's publisher, owned by the test's task."""

    def __init__(self, endpoint: str) -> None:
        self.ctx = zmq.asyncio.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)

    async def until(
        self, predicate: Callable[[str, dict[str, Any]], bool], timeout: float = 20
    ) -> list[tuple[str, dict[str, Any]]]:
        seen: list[tuple[str, dict[str, Any]]] = []

        async def loop() -> None:
            while True:
                topic, body = await self.sock.recv_multipart()
                seen.append((topic.decode(), json.loads(body)))
                if predicate(*seen[-1]):
                    return

        await asyncio.wait_for(loop(), timeout)
        return seen

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


def test_get_arbiter_starts_by_priority_and_quits(tmp_path: Path) -> None:
    arbiter = get_arbiter(
        [
            {"name": "low", "cmd": "sleep 120", "priority": 0},
            {"name": "High", "cmd": "sleep 120", "priority": 5, "numprocesses": 2},
            {"name": "manual", "cmd": "sleep 120", "autostart": False},
        ],
        **endpoints(tmp_path),
    )
    assert arbiter.check_delay == 1.0  # the Python API default (E5)

    async def main() -> None:
        await arbiter.start()
        try:
            assert [w.name for w in arbiter.watchers] == ["High", "low", "manual"]
            assert arbiter.get_watcher("high").state == "active"
            assert arbiter.get_watcher("manual").state == "stopped"
            high, low = arbiter.get_watcher("HIGH"), arbiter.get_watcher("low")
            assert min(p.started for p in high.processes.all()) <= min(
                p.started for p in low.processes.all()
            )
            with pytest.raises(MessageError, match="program nope not found"):
                arbiter.get_watcher("nope")
            opts = arbiter.global_options()
            assert opts["check_delay"] == 1.0
            assert opts["endpoint"] == endpoints(tmp_path)["endpoint"]
            assert (await arbiter.dstats())["children"] == []
            pids = high.pids() + low.pids()
        finally:
            await arbiter.quit()
            await arbiter.close()
        for pid in pids:
            assert wait_gone(pid)
        assert all(w.state == "stopped" for w in arbiter.watchers)

    run(main())


def test_get_arbiter_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        get_arbiter([], bogus=1)
    with pytest.raises(ConfigError, match="numprocesses"):
        get_arbiter([{"name": "w", "cmd": "x", "numprocesses": "many"}])


def test_add_and_remove_watchers_publish_events(tmp_path: Path) -> None:
    arbiter = get_arbiter([], **endpoints(tmp_path))

    async def main() -> None:
        await arbiter.start()
        sub = Subscriber(arbiter.pubsub_endpoint)
        try:
            # slow joiner: add watchers until the subscription sees one
            n = 0
            while True:
                n += 1
                await arbiter.add_watcher(f"probe{n}", "sleep 120", None, {}, start=False)
                try:
                    await sub.until(lambda t, p: t.endswith(".add"), timeout=0.3)
                    break
                except TimeoutError:
                    continue
            watcher = await arbiter.add_watcher(
                "Web App", "sleep", "120", {"numprocesses": 2}, start=True
            )
            seen = await sub.until(lambda t, p: t == "watcher.web_app.start")
            assert [t for t, _ in seen] == [
                "watcher.web_app.add",
                "watcher.web_app.spawn",
                "watcher.web_app.spawn",
                "watcher.web_app.start",
            ]
            pids = watcher.pids()
            with pytest.raises(Exception, match="already exist"):
                await arbiter.add_watcher("web app", "x", None, {}, start=False)
            with pytest.raises(MessageError):
                await arbiter.add_watcher("bad", "x", None, {"numprocesses": "x"}, start=False)
            await arbiter.remove_watcher("WEB APP")
            seen = await sub.until(lambda t, p: t == "watcher.web_app.stop")
            assert [t.rsplit(".", 1)[1] for t, _ in seen] == [
                "remove", "kill", "kill", "reap", "reap", "stop"
            ]  # fmt: skip
            for pid in pids:
                assert wait_gone(pid)
            assert "web app" not in [w.name.lower() for w in arbiter.watchers]
        finally:
            sub.close()
            await arbiter.quit()
            await arbiter.close()

    run(main())


def test_reload_config_diffs_by_name(tmp_path: Path) -> None:
    ini = tmp_path / "circus.ini"
    head = "[circus]\n" + "".join(f"{k} = {v}\n" for k, v in endpoints(tmp_path).items())
    ini.write_text(
        head
        + "[watcher:keep]\ncmd = sleep 120\n"
        + "[watcher:count]\ncmd = sleep 120\nnumprocesses = 1\n"
        + "[watcher:change]\ncmd = sleep 120\n"
        + "[watcher:gone]\ncmd = sleep 120\n"
    )
    arbiter = Arbiter.from_config(load_config(ini))

    async def main() -> None:
        await arbiter.start()
        try:
            keep = arbiter.get_watcher("keep").pids()
            count_watcher = arbiter.get_watcher("count")
            count_pid = count_watcher.pids()
            old_change = arbiter.get_watcher("change")
            gone = arbiter.get_watcher("gone").pids()
            ini.write_text(
                head
                + "[watcher:keep]\ncmd = sleep 120\n"
                + "[watcher:count]\ncmd = sleep 120\nnumprocesses = 3\n"
                + "[watcher:change]\ncmd = sleep 121\n"
                + "[watcher:new]\ncmd = sleep 120\n"
            )
            await arbiter.reload_config()
            names = sorted(w.name for w in arbiter.watchers)
            assert names == ["change", "count", "keep", "new"]
            assert arbiter.get_watcher("keep").pids() == keep
            assert arbiter.get_watcher("count") is count_watcher
            assert len(count_watcher.pids()) == 3
            assert count_watcher.pids()[0] == count_pid[0]
            assert arbiter.get_watcher("change") is not old_change
            assert arbiter.get_watcher("change").config.cmd == "sleep 121"
            assert arbiter.get_watcher("new").state == "active"
            for pid in gone:
                assert wait_gone(pid)
        finally:
            await arbiter.quit()
            await arbiter.close()

    run(main())


def test_bind_failure_propagates_before_children_start(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]

    async def main() -> None:
        arbiter = get_arbiter(
            [{"name": "b", "cmd": "sleep 120"}],
            endpoint=f"ipc://{tmp_path}/c.sock",
            pubsub_endpoint=f"tcp://127.0.0.1:{port}",
        )
        with pytest.raises(zmq.ZMQError):
            await arbiter.run()
        assert arbiter.get_watcher("b").pids() == []

    try:
        run(main())
    finally:
        holder.close()


def test_rm_nostop_leaves_processes_running_but_reaps_them(tmp_path: Path) -> None:
    arbiter = get_arbiter([{"name": "w", "cmd": "sleep 120"}], **endpoints(tmp_path))

    async def main() -> None:
        await arbiter.start()
        try:
            watcher = arbiter.get_watcher("w")
            (pid,) = watcher.pids()
            await arbiter.remove_watcher("w", nostop=True)
            assert [w.name for w in arbiter.watchers] == []
            assert pid_state(pid) in ("S", "R")  # still running
            proc = watcher.processes.get(pid)
            os.kill(pid, signal.SIGTERM)
            assert await asyncio.wait_for(proc.exited, 20) == -15
            assert watcher.pids() == []  # not respawned
            assert wait_gone(pid)  # reaped: no zombie
        finally:
            await arbiter.quit()
            await arbiter.close()

    run(main())
