"""``handle_stats``: a plugin receives circusd's stats stream (``statsd = true``).

A real circusd with its stats stream on an ipc endpoint; the plugin runs in-process (as the
runner would construct it, with ``stats_endpoint``) and one runs from circusd's config, where
circusd passes ``--stats-endpoint`` itself.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from circus.plugins import CircusPlugin
from circus.plugins.stats import parse_stat_topic
from circus.testing import CircusdProcess

WAIT = 30.0


class StatsRecorder(CircusPlugin):
    name = "stats-recorder"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.samples: list[tuple[str, int | None, dict[str, Any]]] = []
        self.threads: set[int] = set()

    def handle_init(self) -> None:
        self.threads.add(threading.get_ident())

    def handle_stats(self, watcher: str, pid: int | None, stats: dict[str, Any]) -> None:
        self.threads.add(threading.get_ident())
        self.samples.append((watcher, pid, stats))

    def handle_recv(self, data: tuple[str, str]) -> None:
        pass


def config(tmp_path: Path) -> str:
    return (f"[circus]\nstatsd = true\nstats_endpoint = ipc://{tmp_path}/stats.sock\n\n"
            "[watcher:web]\ncmd = sleep 120\nnumprocesses = 2\n")


def test_topics_are_parsed() -> None:
    assert parse_stat_topic("stat.web.42") == ("web", 42)
    assert parse_stat_topic("stat.web") == ("web", None)
    assert parse_stat_topic("stat.my.app.7") == ("my.app", 7)


def test_handle_stats_gets_process_and_watcher_samples(tmp_path: Path) -> None:
    with CircusdProcess(config(tmp_path), tmp_path, check_delay=1) as daemon:
        plugin = StatsRecorder(endpoint=daemon.endpoint, pubsub_endpoint=daemon.pubsub_endpoint,
                               stats_endpoint=f"ipc://{tmp_path}/stats.sock")
        runner = threading.Thread(target=plugin.start, daemon=True)
        runner.start()
        try:
            pids = set(daemon.call("list", name="web")["pids"])
            deadline = time.monotonic() + WAIT

            def seen() -> bool:
                per_pid = {pid for name, pid, _ in plugin.samples if name == "web" and pid}
                aggregate = [s for name, pid, s in plugin.samples if name == "web" and not pid]
                return per_pid >= pids and bool(aggregate)

            while not seen():
                assert time.monotonic() < deadline, f"samples: {plugin.samples[:5]}"
                time.sleep(0.05)
            one = next(s for name, pid, s in plugin.samples if pid in pids)
            assert {"cpu", "mem", "age"} <= set(one)
            aggregate = next(s for name, pid, s in plugin.samples if name == "web" and not pid)
            assert set(aggregate["pid"]) == pids
            assert len(plugin.threads) == 1  # the same handler thread as handle_init
        finally:
            plugin.stop()
            runner.join(WAIT)


def test_circusd_passes_the_stats_endpoint_to_its_plugins(tmp_path: Path) -> None:
    out = tmp_path / "samples.jsonl"
    module = tmp_path / "site" / "statsprobe.py"
    module.parent.mkdir()
    module.write_text(
        "import json\nfrom circus.plugins import CircusPlugin\n\n"
        "class Probe(CircusPlugin):\n"
        "    name = 'statsprobe'\n"
        "    def handle_recv(self, data):\n        pass\n"
        "    def handle_stats(self, watcher, pid, stats):\n"
        f"        with open({str(out)!r}, 'a') as f:\n"
        "            f.write(json.dumps([watcher, pid]) + '\\n')\n")
    text = config(tmp_path) + "\n[plugin:statsprobe]\nuse = statsprobe.Probe\n"
    env = dict(os.environ, PYTHONPATH=str(module.parent))
    with CircusdProcess(text, tmp_path, check_delay=1, env=env) as daemon:
        pids = set(daemon.call("list", name="web")["pids"])
        deadline = time.monotonic() + WAIT
        while True:
            lines = out.read_text().splitlines() if out.exists() else []
            seen = {tuple(json.loads(line)) for line in lines}
            if {("web", pid) for pid in pids} <= seen:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"no stats reached the plugin: {lines[:5]}\n{daemon.log_text()}")
            time.sleep(0.1)
