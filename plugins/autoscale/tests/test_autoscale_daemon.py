"""autoscale under a real circusd, with real cpu-burning children.

Each child burns cpu (a busy loop) while a "load" file exists and sleeps otherwise. Thresholds
are far apart (up above 15 %, down below 3 %) so a loaded 2-core machine, which gives a busy
loop far less than 100 %, still reads as busy, and an idle child as idle.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from circus.testing import CircusdProcess, EventCollector

TIMEOUT = 60.0
BURNER = """\
import os, sys, time
load = sys.argv[1]
while True:
    if os.path.exists(load):
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            pass
    else:
        time.sleep(0.1)
"""


def config(tmp_path: Path, stream: bool = False, **options: str) -> str:
    (tmp_path / "burner.py").write_text(BURNER)
    base = {"watcher": "burn", "min": "1", "max": "3", "scale_up": "15", "scale_down": "3",
            "up_after": "0.5", "down_after": "0.5", "cooldown": "1.5", "sample_rate": "0.25"}
    extra = "".join(f"{k} = {v}\n" for k, v in {**base, **options}.items())
    statsd = f"statsd = true\nstats_endpoint = ipc://{tmp_path}/stats.sock\n" if stream else ""
    return (f"[circus]\ndebug = true\n{statsd}\n[watcher:burn]\n"
            f"cmd = {sys.executable} {tmp_path / 'burner.py'} {tmp_path / 'load'}\n\n"
            f"[plugin:autoscale]\nuse = autoscale\n{extra}")


def decisions(daemon: CircusdProcess) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in re.findall(
        r"burn: (\d+) -> (\d+) processes", daemon.log_text())]


def wait_count(daemon: CircusdProcess, count: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while len(daemon.call("list", name="burn")["pids"]) != count:
        assert time.monotonic() < deadline, (count, decisions(daemon), daemon.log_text()[-3000:])
        time.sleep(0.1)


@pytest.mark.parametrize("stream", [False, True], ids=["stats", "stream"])
def test_scales_up_to_max_under_load_and_back_to_min(tmp_path: Path, stream: bool) -> None:
    """Without ``statsd`` the cpu comes from ``stats`` calls; with it, from circusd's stats
    stream (once it flows, every later round reads it: no ``stats`` call after that)."""
    with CircusdProcess(config(tmp_path, stream), tmp_path) as daemon, \
            EventCollector(daemon.pubsub_endpoint) as ev:
        ev.wait_ready(daemon, "burn")
        deadline = time.monotonic() + TIMEOUT
        while "scaling burn between 1 and 3 processes" not in daemon.log_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        mark = len(ev.events)
        (tmp_path / "load").touch()
        wait_count(daemon, 3)
        up = decisions(daemon)
        assert up == [(1, 2), (2, 3)]  # one step at a time, never beyond max
        spawns = ev.wait_count(lambda t, p: t == "watcher.burn.spawn", 2, timeout=TIMEOUT,
                               start=mark)
        spawned_at = [p["time"] for _, p in spawns[-2:]]
        # the decisions are visible on the event channel: circusd names who asked
        assert [p.get("by") for _, p in spawns[-2:]] == ["plugin:autoscale"] * 2
        assert spawned_at[1] - spawned_at[0] >= 1.5  # the cooldown between two changes
        (tmp_path / "load").unlink()
        wait_count(daemon, 1)
        assert decisions(daemon) == [(1, 2), (2, 3), (3, 2), (2, 1)]  # no back-and-forth
        assert "cpu" in daemon.log_text().split("burn: 3 -> 2 processes (")[1].split(")")[0]
        # idle at min: nothing more happens
        time.sleep(2.0)
        assert decisions(daemon) == [(1, 2), (2, 3), (3, 2), (2, 1)]
        assert len(daemon.call("list", name="burn")["pids"]) == 1
        log = daemon.log_text()
        if stream:
            assert "cpu read from stats" not in log.split("cpu read from circusd's stats stream")[1]
        else:
            assert "cpu read from circusd's stats stream" not in log
            assert "burn: cpu read from stats" in log


def test_count_outside_the_bounds_is_corrected_and_command_metric(tmp_path: Path) -> None:
    metric = tmp_path / "metric"
    metric.write_text("50\n")
    cfg = config(tmp_path, min="2", max="3", metric="command",
                 metric_command=f"cat {metric}", scale_up="80", scale_down="10")
    with CircusdProcess(cfg, tmp_path) as daemon:
        wait_count(daemon, 2)  # started with 1, below min
        daemon.call("incr", name="burn", nb=3)  # someone adds processes: 5 > max
        wait_count(daemon, 3)
        metric.write_text("99\n")  # at max already: nothing to add
        metric.write_text("not a number\n")
        deadline = time.monotonic() + TIMEOUT
        while "no command value: metric_command gave 'not a number'" not in daemon.log_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        metric.write_text("1\n")
        wait_count(daemon, 2)
        assert decisions(daemon) == [(1, 2), (5, 3), (3, 2)]
