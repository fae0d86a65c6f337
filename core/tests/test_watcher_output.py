"""Output of a watcher's processes to circusd's log (LogStream, the plugin default)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog.testing

from circus.config import WatcherConfig
from circus.streams import LogStream
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
