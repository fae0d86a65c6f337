"""Event sequences and payloads of contract 4.2/4.3, driven through the control channel."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import zmq

from circus.testing import CircusdProcess, EventCollector

Event = tuple[str, dict[str, Any]]


def actions(events: list[Event], name: str) -> list[str]:
    prefix = f"watcher.{name}."
    return [t[len(prefix) :] for t, _ in events if t.startswith(prefix)]


def test_contract_sequences_through_commands(tmp_path: Path) -> None:
    config = "[watcher:base]\ncmd = sleep 120\n"
    with CircusdProcess(config, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        ev.wait_ready(daemon, "base")

        mark = len(ev.events)
        reply = daemon.call("add", name="Web App", cmd="sleep 120", options={"numprocesses": 2})
        assert reply["status"] == "ok"
        daemon.call("start", name="web app", waiting=True)
        ev.wait_for(lambda t, p: t == "watcher.web_app.start", start=mark)
        assert actions(ev.events[mark:], "web_app") == ["add", "spawn", "spawn", "start"]

        mark = len(ev.events)
        options = {"graceful_timeout": 5.0, "numprocesses": 3}
        daemon.call("set", name="web app", options=options, waiting=True)
        ev.wait_for(lambda t, p: t == "watcher.web_app.spawn", start=mark)
        assert actions(ev.events[mark:], "web_app") == ["updated", "updated", "spawn"]

        mark = len(ev.events)
        pid = daemon.call("list", name="web app")["pids"][0]
        daemon.call("signal", name="web app", signum="KILL", pid=pid)
        ev.wait_for(lambda t, p: t == "watcher.web_app.spawn", start=mark)
        (reap,) = [p for t, p in ev.events[mark:] if t.endswith(".reap")]
        assert reap["exit_code"] == -9
        assert reap["expected"] is True  # the signal command asked for it
        assert actions(ev.events[mark:], "web_app") == ["reap", "spawn"]

        mark = len(ev.events)
        daemon.call("rm", name="web app", waiting=True)
        ev.wait_for(lambda t, p: t == "watcher.web_app.stop", start=mark)
        assert actions(ev.events[mark:], "web_app") == [
            "remove", "kill", "kill", "kill", "reap", "reap", "reap", "stop"
        ]  # fmt: skip

        seqs = [p["seq"] for _, p in ev.events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        for topic, event in ev.events:
            action = topic.rsplit(".", 1)[1]
            assert isinstance(event["time"], float)
            payload = {k: v for k, v in event.items() if k != "by"}  # who asked (additive)
            if action in ("spawn", "kill"):
                assert list(payload) == ["process_pid", "time", "boot", "seq"]
            elif action == "reap":
                assert list(payload) == [
                    "process_pid", "time", "exit_code", "expected", "boot", "seq"]
            elif action == "stop":
                assert list(payload) == ["time", "expected", "boot", "seq"]
            else:
                assert list(payload) == ["time", "boot", "seq"]


def test_wire_format_is_two_frames_with_0_19_json_separators(tmp_path: Path) -> None:
    config = "[watcher:w]\ncmd = sleep 120\n"
    with CircusdProcess(config, tmp_path) as daemon:
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"watcher.w.")
        sub.connect(daemon.pubsub_endpoint)
        try:
            deadline = time.monotonic() + 20
            frames: list[bytes] = []
            while time.monotonic() < deadline:
                daemon.call("set", name="w", options={"graceful_timeout": 30.0})
                if sub.poll(300):
                    frames = sub.recv_multipart()
                    break
            assert frames, "no event received"
            assert len(frames) == 2
            assert frames[0] == b"watcher.w.updated"
            body = json.loads(frames[1])
            assert frames[1].decode() == json.dumps(body)  # ", " and ": " separators
        finally:
            sub.close()
            ctx.term()


def test_reap_latency_is_far_below_the_tick(tmp_path: Path) -> None:
    config = "[watcher:w]\ncmd = sleep 120\n"
    with CircusdProcess(config, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        ev.wait_ready(daemon, "w")
        latencies = []
        for _ in range(5):
            pid = daemon.call("list", name="w")["pids"][0]
            mark = len(ev.events)
            killed = time.time()
            os.kill(pid, signal.SIGKILL)
            _, reap = ev.wait_for(lambda t, p: t == "watcher.w.reap", start=mark)
            ev.wait_for(lambda t, p: t == "watcher.w.spawn", start=mark)
            latencies.append(reap["time"] - killed)
        assert max(latencies) < 1.0, latencies
