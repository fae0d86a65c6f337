"""circus.procinfo: the formats of the stats/dstats commands (contract 3.3)."""

from __future__ import annotations

import os
import subprocess
import time

import psutil

from circus.procinfo import NO_SUCH_PROCESS, child_stats, cpu_time, daemon_stats, human_bytes


def test_human_bytes_and_cpu_time_formats() -> None:
    assert human_bytes(512) == "512B"
    assert human_bytes(1024) == "1.00K"
    assert human_bytes(1.45 * 1024 * 1024) == "1.45M"
    assert human_bytes(3 * 1024**3) == "3.00G"
    assert cpu_time(0) == "0:00.00"
    assert cpu_time(75.5) == "1:15.50"


def test_child_stats_of_a_real_process_and_a_vanished_one() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        deadline = time.monotonic() + 20
        while psutil.Process(child.pid).cmdline() != ["sleep", "30"]:  # exec done
            assert time.monotonic() < deadline
            time.sleep(0.01)
        info = child_stats(psutil.Process(child.pid), wid=3, started=1.0)
        assert isinstance(info, dict)
        assert info["pid"] == child.pid
        assert info["wid"] == 3
        assert info["started"] == 1.0
        assert info["cmdline"] == "sleep"
        assert info["mem_info1"][-1] in "BKMG"
        assert info["children"] == []
        handle = psutil.Process(child.pid)
    finally:
        child.kill()
        child.wait(10)
    assert child_stats(handle, wid=3, started=1.0) == NO_SUCH_PROCESS


def test_daemon_stats() -> None:
    info = daemon_stats()
    assert info["pid"] == os.getpid()
    assert info["children"] == []
    assert "wid" not in info
