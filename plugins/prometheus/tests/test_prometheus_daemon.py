"""The Prometheus plugin run by a real circusd (``use = prometheus``), scraped over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psutil
from prometheus_client.parser import text_string_to_metric_families

from circus.testing import CircusdProcess, free_port, run_plugin, wait_until

TIMEOUT = 30.0
Values = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Values | None:
    """``/metrics`` parsed, or ``None`` while nothing answers yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            assert reply.status == 200
            assert reply.headers["Content-Type"].startswith("text/plain")
            text = reply.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def w(name: str, **extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"watcher": name, **extra}.items()))


def config(port: int) -> str:
    return (
        "[watcher:Web App]\ncmd = sleep 120\nnumprocesses = 2\n\n"
        f"[plugin:prometheus]\nuse = prometheus\nport = {port}\nrefresh_interval = 0.3\n"
    )


def test_scrape_follows_the_daemon(tmp_path: Path) -> None:
    port = free_port()
    with CircusdProcess(config(port), tmp_path) as daemon:
        last: dict[str, Values] = {}

        def shows(**wanted: float) -> bool:
            values = scrape(port)
            if values is None:
                return False
            last["values"] = values
            return all(values.get(key) == value for key, value in _keys(wanted).items())

        wait_until(lambda: shows(processes=2, active=1, up=1), "two processes shown", daemon=daemon)
        values = last["values"]
        assert values[("circus_watcher_memory_rss_bytes", w("web_app"))] > 0
        assert values[("circus_watcher_memory_percent", w("web_app"))] > 0
        assert values[("circus_process_spawns_total", w("web_app"))] >= 0
        assert values[("circus_daemon_memory_rss_bytes", ())] > 0
        assert values[("circus_watcher_processes", w("plugin:prometheus"))] == 1

        pid = daemon.call("list", name="Web App")["pids"][0]
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: shows(crashes=1, restarts=1, processes=2), "the crash counted",
                   daemon=daemon)  # fmt: skip
        daemon.call("stop", name="Web App", waiting=True)
        wait_until(lambda: shows(processes=0, stopped=1, active=0), "the stop shown",
                   daemon=daemon)  # fmt: skip
        values = last["values"]
        assert values[("circus_process_crashes_total", w("web_app"))] == 1  # stops are no crash
        assert values[("circus_process_reaps_total", w("web_app"))] == 3


def test_a_watcher_circusd_gave_up_on_shows_fatal(tmp_path: Path) -> None:
    """A real crash loop: ``backoff`` while circusd retries, then ``fatal`` (give_up_after)."""
    port = free_port()
    cfg = ("[watcher:doomed]\ncmd = sh -c 'exit 3'\nbackoff_start = 0.05\nbackoff_max = 0.1\n"
           "give_up_after = 3\n\n"
           f"[plugin:prometheus]\nuse = prometheus\nport = {port}\nrefresh_interval = 0.2\n")
    with CircusdProcess(cfg, tmp_path) as daemon:
        def state(name: str) -> float | None:
            values = scrape(port) or {}
            return values.get(("circus_watcher_state", w("doomed", state=name)))

        wait_until(lambda: state("fatal") == 1, "doomed shown fatal", daemon=daemon)
        assert daemon.call("status", name="doomed")["status"] == "fatal"
        assert state("active") == 0
        assert state("backoff") == 0


def _keys(wanted: dict[str, float]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    names = {
        "processes": ("circus_watcher_processes", w("web_app")),
        "crashes": ("circus_process_crashes_total", w("web_app")),
        "restarts": ("circus_watcher_restarts_total", w("web_app")),
        "active": ("circus_watcher_state", w("web_app", state="active")),
        "stopped": ("circus_watcher_state", w("web_app", state="stopped")),
        "up": ("circus_up", ()),
    }
    return {names[key]: value for key, value in wanted.items()}


def test_a_bad_option_stops_circusd_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "circus.ini").write_text(
        f"[circus]\nendpoint = ipc://{tmp_path}/c.sock\npubsub_endpoint = ipc://{tmp_path}/p.sock\n"
        "[plugin:prometheus]\nuse = prometheus\nport = 99999\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "circus.circusd", str(tmp_path / "circus.ini")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "port" in done.stderr
    assert "must be at most 65535" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_taken_port_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with CircusdProcess("[watcher:w]\ncmd = sleep 120\n", tmp_path / "d") as daemon, \
                run_plugin(daemon.endpoint, daemon.pubsub_endpoint, "prometheus",
                           tmp_path / "plugin.log", {"port": str(port)}) as plugin:  # fmt: skip
            assert plugin.wait(TIMEOUT) == 1
    log = (tmp_path / "plugin.log").read_text()
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in log
    assert "Traceback" not in log


def test_cpu_and_memory_follow_the_stats_stream(tmp_path: Path) -> None:
    """With ``statsd = true`` circusd passes its stats endpoint and the cpu/mem gauges come from
    the stream (``handle_stats``), one second fresh: the refresh here runs once at start, yet
    memory follows an ``incr`` while the (polled) process count does not."""
    port = free_port()
    stats = f"ipc://{tmp_path}/stats.sock"
    text = (
        f"[circus]\nstatsd = true\nstats_endpoint = {stats}\n\n"
        "[watcher:Web App]\ncmd = sleep 120\n\n"
        f"[plugin:prometheus]\nuse = prometheus\nport = {port}\nrefresh_interval = 3600\n"
    )
    with CircusdProcess(text, tmp_path) as daemon:
        key = ("circus_watcher_memory_rss_bytes", w("web_app"))
        wait_until(lambda: (scrape(port) or {}).get(key, 0) > 0, "memory shown", daemon=daemon)
        daemon.call("incr", name="Web App", nb=3, waiting=True)
        pids = daemon.call("list", name="Web App")["pids"]
        assert len(pids) == 4

        def follows() -> bool:
            values = scrape(port) or {}
            real = sum(psutil.Process(pid).memory_info().rss for pid in pids)
            return abs(values.get(key, 0) - real) < real * 0.3

        wait_until(follows, "memory of the four processes", daemon=daemon)
        assert (scrape(port) or {})[("circus_watcher_processes", w("web_app"))] == 1  # polled

