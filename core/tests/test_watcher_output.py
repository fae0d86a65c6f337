"""Output of a watcher's processes to circusd's log (LogStream, the plugin default)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import structlog.testing

from circus.config import WatcherConfig
from circus.streams import LogStream
from circus.testing import CircusdProcess
from circus.watcher import Watcher

TIMEOUT = 20.0


def test_log_stream_one_record_per_line_and_bounded_partial_lines() -> None:
    stream = LogStream(tag="plugin:x", max_line=8)
    with structlog.testing.capture_logs() as logs:
        stream({"data": b"first\nsec", "pid": 7, "name": "stderr"})
        stream({"data": b"ond\r\n", "pid": 7, "name": "stderr"})
        stream({"data": b"0123456789", "pid": 7, "name": "stdout"})  # no newline, too long
        stream({"data": b"tail", "pid": 8, "name": "stdout"})
        stream.close()  # what is left is logged, not lost
    assert [(r["event"], r["source"], r["pid"], r["stream"]) for r in logs] == [
        ("first", "plugin:x", 7, "stderr"),
        ("second", "plugin:x", 7, "stderr"),
        ("0123456789", "plugin:x", 7, "stdout"),
        ("tail", "plugin:x", 8, "stdout"),
    ]


def test_a_real_process_output_reaches_the_log() -> None:
    async def main() -> list[dict[str, Any]]:
        cfg = WatcherConfig(
            name="plugin:talk",
            cmd="sh",
            args=["-c", "echo hello; echo oops >&2; sleep 120"],
            stdout_stream={"class": "LogStream", "tag": "plugin:talk"},
            stderr_stream={"class": "LogStream", "tag": "plugin:talk"},
            graceful_timeout=5.0,
        )
        watcher = Watcher(cfg, lambda *_: 0)
        with structlog.testing.capture_logs() as logs:
            try:
                await watcher.start()
                deadline = time.monotonic() + TIMEOUT
                while len([r for r in logs if r.get("source") == "plugin:talk"]) < 2:
                    assert time.monotonic() < deadline, logs
                    await asyncio.sleep(0.02)
            finally:
                await watcher.stop()
                watcher.close()
        return logs

    logs = asyncio.run(main())
    lines = {(r["event"], r["stream"]) for r in logs if r.get("source") == "plugin:talk"}
    assert lines == {("hello", "stdout"), ("oops", "stderr")}


CRASHING_PLUGIN = '''
from circus.plugins import CircusPlugin


class Boom(CircusPlugin):
    def handle_init(self):
        raise RuntimeError("boom at init, line for the log")

    def handle_recv(self, data):
        pass
'''


def test_a_crashing_plugin_shows_backoff_and_its_traceback_reaches_circusds_log(
    tmp_path: Path,
) -> None:
    (tmp_path / "crashing_plugin.py").write_text(CRASHING_PLUGIN)
    config = "[plugin:boom]\nuse = crashing_plugin.Boom\n"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    with CircusdProcess(config, tmp_path / "run", env=env) as daemon:
        deadline = time.monotonic() + TIMEOUT
        states: set[str] = set()
        while "backoff" not in states:
            assert time.monotonic() < deadline, (states, daemon.log_text())
            states.add(daemon.call("status", name="plugin:boom")["status"])
            time.sleep(0.02)
        while "boom at init, line for the log" not in daemon.log_text():
            assert time.monotonic() < deadline, daemon.log_text()
            time.sleep(0.05)
    lines = [line for line in daemon.log_text().splitlines() if "boom at init" in line]
    assert all("source='plugin:boom'" in line for line in lines), lines
