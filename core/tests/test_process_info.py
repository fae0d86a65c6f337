"""circus.procinfo formats and circus.stats' sampler, against real processes and psutil."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest
from support import kill_tree

from circus.memguard import GrowthTrip, rss_bytes
from circus.procinfo import NO_SUCH_PROCESS, cpu_time, human_bytes, parse_human_bytes
from circus.stats import Sampler
from circus.stats.cpu import MIN_WINDOW, WINDOW, CpuTracker
from circus.stats.report import aggregate, daemon_stats, process_stats
from circus.stats.sampler import SETTLED_AGE

TIMEOUT = 20.0

FIELDS = {"pid", "create_time", "cpu", "mem", "mem_info1", "mem_info2", "ctime", "username",
          "nice", "cmdline", "age", "children"}  # fmt: skip


def test_human_bytes_and_cpu_time_formats() -> None:
    assert human_bytes(512) == "512B"
    assert human_bytes(1024) == "1.00K"
    assert human_bytes(1.45 * 1024 * 1024) == "1.45M"
    assert human_bytes(3 * 1024**3) == "3.00G"
    assert cpu_time(0) == "0:00.00"
    assert cpu_time(75.5) == "1:15.50"


def _wait_exec(pid: int, argv0: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            if psutil.Process(pid).cmdline()[:1] == [argv0]:
                return
        except (psutil.Error, IndexError):
            pass
        assert time.monotonic() < deadline, f"{pid} never ran {argv0}"
        time.sleep(0.01)


@pytest.fixture
def family() -> Iterator[tuple[int, list[int]]]:
    """A shell with two sleeping children: (shell pid, children pids)."""
    parent = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 61 & wait"], start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while len(psutil.Process(parent.pid).children()) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        kids = [c.pid for c in psutil.Process(parent.pid).children()]
        for kid in kids:
            _wait_exec(kid, "sleep")
        yield parent.pid, kids
    finally:
        kill_tree(parent.pid)
        parent.wait(TIMEOUT)


def test_sample_matches_psutil(family: tuple[int, list[int]]) -> None:
    shell, kids = family
    sampler = Sampler()
    try:
        sample = asyncio.run(sampler.sample([shell]))
    finally:
        sampler.close()
    info = sample.infos[shell]
    assert set(info) == FIELDS
    proc = psutil.Process(shell)
    assert info["pid"] == shell
    assert info["create_time"] == pytest.approx(proc.create_time(), abs=0.02)
    assert info["mem_info1"] == human_bytes(proc.memory_info().rss)
    assert info["mem_info2"] == human_bytes(proc.memory_info().vms)
    assert info["mem"] == pytest.approx(proc.memory_percent(), abs=0.01)
    assert info["username"] == proc.username()
    assert info["nice"] == proc.nice()
    assert info["cmdline"] == "sh"
    assert 0 <= info["age"] < TIMEOUT + 5
    assert sorted(child["pid"] for child in info["children"]) == sorted(kids)
    for child in info["children"]:
        assert set(child) == FIELDS
        assert child["cmdline"] == "sleep"
        assert child["children"] == []  # one level, as in 0.19


def test_vanished_process_and_the_stats_shape() -> None:
    child = subprocess.Popen(["sleep", "30"])
    _wait_exec(child.pid, "sleep")
    sampler = Sampler()
    try:
        before = asyncio.run(sampler.sample([child.pid]))
        child.kill()
        child.wait(TIMEOUT)
        after = asyncio.run(sampler.sample([child.pid]))
    finally:
        sampler.close()
    info = process_stats(before, child.pid, wid=3, started=time.time() - 2)
    assert isinstance(info, dict)
    assert info["wid"] == 3
    assert 1.5 < info["age"] < 10  # from the spawn time given, not the OS creation time
    assert set(info) == FIELDS | {"wid", "started"}
    assert after.get(child.pid) is None
    assert process_stats(after, child.pid, wid=3, started=1.0) == NO_SUCH_PROCESS


def test_daemon_stats_of_this_process() -> None:
    sampler = Sampler()
    try:
        info = daemon_stats(asyncio.run(sampler.sample([os.getpid()])), os.getpid())
    finally:
        sampler.close()
    assert info["pid"] == os.getpid()
    assert info["children"] == []
    assert "wid" not in info
    assert info["cmdline"] == os.path.basename(psutil.Process().cmdline()[0])


def test_a_busy_process_shows_more_cpu_than_a_sleeping_one() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    idle = subprocess.Popen(["sleep", "30"])
    sampler = Sampler()
    try:
        _wait_exec(idle.pid, "sleep")

        async def two_rounds() -> dict[int, float]:
            await sampler.sample([busy.pid, idle.pid])
            await asyncio.sleep(WINDOW)
            second = await sampler.sample([busy.pid, idle.pid])
            return {pid: info["cpu"] for pid, info in second.infos.items()}

        cpu = asyncio.run(two_rounds())
    finally:
        sampler.close()
        for proc in (busy, idle):
            proc.kill()
            proc.wait(TIMEOUT)
    assert cpu[idle.pid] == 0.0
    assert cpu[busy.pid] > 5.0  # a spinning process, even on a crowded machine


def test_cpu_tracker_window_and_lifetime_average() -> None:
    tracker = CpuTracker()
    key = (42, 1000.0)
    # no history: the lifetime average (2 s of CPU over 4 s of age)
    assert tracker.percent(key, now=10.0, cpu_seconds=2.0, age=4.0) == 50.0
    # too soon after the previous reading: still the lifetime average, not tick noise
    soon = tracker.percent(key, now=10.05, cpu_seconds=2.01, age=4.05)
    assert soon == pytest.approx(49.6, abs=0.1)
    # a reading at least WINDOW old exists: 0.25 s of CPU over 1.0 s
    assert tracker.percent(key, now=10.0 + WINDOW, cpu_seconds=2.25, age=5.0) == 25.0
    # between MIN_WINDOW and WINDOW after: measured against the oldest usable reading
    value = tracker.percent(key, now=10.0 + WINDOW + MIN_WINDOW, cpu_seconds=2.35, age=5.2)
    assert value == pytest.approx(0.35 / (WINDOW + MIN_WINDOW) * 100, abs=0.1)
    # history stays bounded however often it is read
    for step in range(1000):
        tracker.percent(key, now=20.0 + step * 0.1, cpu_seconds=3.0, age=10.0)
    assert len(tracker._history[key]) <= int(WINDOW / (MIN_WINDOW / 2)) + 2


def test_concurrent_requests_share_rounds(family: tuple[int, list[int]]) -> None:
    shell, kids = family
    sampler = Sampler()

    asked = [shell, *kids] * 10

    async def burst() -> list[set[int]]:
        samples = await asyncio.gather(*(sampler.sample([pid]) for pid in asked))
        return [set(s.infos) for s in samples]

    try:
        seen = asyncio.run(burst())
    finally:
        sampler.close()
    assert all(pid in found for pid, found in zip(asked, seen, strict=True))
    assert sampler.rounds < 30  # 30 requests, fewer rounds: queued requests share one


def test_the_loop_keeps_running_while_a_round_runs() -> None:
    """A round over every process on the machine, while the loop counts its own ticks."""
    sampler = Sampler()
    pids = [p.pid for p in psutil.process_iter()]

    async def measure() -> tuple[int, float]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        sample = await sampler.sample(pids)
        stop.set()
        await task
        return ticks, sample.duration

    try:
        ticks, _ = asyncio.run(measure())
    finally:
        sampler.close()
    assert ticks > 1  # the loop ran during the round instead of waiting for it


def test_aggregate_rules() -> None:
    infos = [{"pid": 1, "cpu": 10.0, "mem": 1.5, "age": 3.0},
             {"pid": 2, "cpu": 30.0, "mem": 2.5, "age": 7.0}]  # fmt: skip
    assert aggregate(infos) == {"pid": [1, 2], "cpu": 20.0, "mem": 4.0, "age": 7.0}
    infos[0]["cpu"] = "N/A"
    infos[1]["age"] = "N/A"
    assert aggregate(infos) == {"pid": [1, 2], "cpu": "N/A", "mem": 4.0, "age": 3.0}


def test_a_closed_sampler_refuses_work() -> None:
    sampler = Sampler()
    sampler.close()
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(sampler.sample([os.getpid()]))


def test_parse_human_bytes_inverts_human_bytes() -> None:
    for value in (0, 512, 1023, 1024, 1.45 * 1024 * 1024, 3 * 1024**3, 5 * 1024**5):
        back = parse_human_bytes(human_bytes(value))
        assert back is not None
        assert abs(back - value) <= max(value * 0.005, 1)
    for bad in ("N/A", "", "12X", "M", "-1K", "abcB"):
        assert parse_human_bytes(bad) is None


def test_an_exec_is_noticed_despite_the_identity_cache() -> None:
    """The command name is cached once a process has settled, but an exec changes it at once."""
    proc = subprocess.Popen(["sh", "-c", "read line; exec sleep 30"], stdin=subprocess.PIPE)
    sampler = Sampler()
    try:
        _wait_exec(proc.pid, "sh")
        time.sleep(SETTLED_AGE)  # not a wait for a condition: the age at which caching starts
        first = asyncio.run(sampler.sample([proc.pid])).infos[proc.pid]
        assert first["cmdline"] == "sh"
        assert any(key[0] == proc.pid for key in sampler._identity)  # cached
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        _wait_exec(proc.pid, "sleep")
        again = asyncio.run(sampler.sample([proc.pid])).infos[proc.pid]
        assert again["cmdline"] == "sleep"
    finally:
        sampler.close()
        proc.kill()
        proc.wait(TIMEOUT)


def test_the_memory_guard_reads_its_rss_as_the_stats_read_every_process() -> None:
    # one reading of statm (circus.stats.proc.memory) for the sampler and circusd's guard
    before = rss_bytes()
    assert before is not None
    assert abs(before - psutil.Process().memory_info().rss) < 8 << 20
    hold = bytearray(64 << 20)  # touched pages count: bytearray zero-fills them
    grown = rss_bytes()
    assert grown is not None
    assert grown - before > 48 << 20
    trip = GrowthTrip(limit=32 << 20, window=60)
    assert trip.check(before, now=0.0) is None
    assert trip.check(now=1.0) is not None  # sampled itself: the guard trips on real growth
    del hold
