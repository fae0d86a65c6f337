"""Our flapping plugin (run by our runner) against the ORIGINAL circusd 0.19.

The original publishes no ``expected`` field, notices deaths only at its ``check_delay`` ticks,
and rejects commands arriving during a tick with a lock conflict (contract F4): the crash loop
must still be stopped (the refused stop is retried) and a watcher stopped by hand must stay
stopped (the plugin falls back to the ``kill`` events to recognise expected exits).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

from circus.testing import EventCollector, run_plugin, wait_until
from circus.transports import CommandClient

TIMEOUT = 40.0
WATCHERS = """
[watcher:crasher]
cmd = sh -c "sleep 0.2; exit 1"
autostart = false

[watcher:web]
cmd = sleep 120
numprocesses = 2
"""


def our_flapping(endpoint: str, pubsub: str, log: Path, **options: str
                 ) -> contextlib.AbstractContextManager[object]:
    return run_plugin(endpoint, pubsub, "flapping", log, options, stop_timeout=TIMEOUT)


def read(log: Path) -> str:
    try:
        return log.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_plugin_ready(client: CommandClient, log: Path, watcher: str) -> None:
    """Poke ``watcher`` (``set`` -> ``updated``) until the plugin logs that it re-read it."""
    marker = f"{watcher}: attempts="
    deadline = time.monotonic() + TIMEOUT
    while True:
        before = read(log).count(marker)
        client.call("set", name=watcher, options={"graceful_timeout": 30})
        with contextlib.suppress(AssertionError):
            wait_until(lambda n=before: read(log).count(marker) > n, "the plugin", timeout=1.0)
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the plugin never reacted:\n{read(log)}")


def actions(events: list[tuple[str, dict[str, Any]]], watcher: str) -> list[str]:
    return [t.rsplit(".", 1)[1] for t, _ in events if t.startswith(f"watcher.{watcher}.")]


@pytest.mark.interop
def test_flapping_plugin_against_original_circusd(original_circusd: Any, tmp_path: Path) -> None:
    daemon = original_circusd(WATCHERS, circus_options={"check_delay": 1})
    log = tmp_path / "flapping.log"
    options = {"attempts": "2", "window": "3", "retry_in": "1", "max_retry": "1"}
    with CommandClient(daemon.endpoint, timeout=20.0) as client, \
            EventCollector(daemon.pubsub_endpoint) as ev, \
            our_flapping(daemon.endpoint, daemon.pubsub_endpoint, log, **options):
        wait_plugin_ready(client, log, "crasher")
        wait_plugin_ready(client, log, "web")
        daemon.remember_children()

        # A crash loop is stopped, retried once, then left stopped.
        mark = len(ev.events)
        client.call("start", name="crasher")
        ev.wait_count(lambda t, p: t == "watcher.crasher.stop", 2, timeout=TIMEOUT)
        wait_until(lambda: "crasher: left stopped after 1 retries" in read(log), "giving up")
        assert [a for a in actions(ev.events[mark:], "crasher") if a in ("start", "stop")] == [
            "start", "stop", "start", "stop"
        ]
        assert client.call("status", name="crasher")["status"] == "stopped"

        # A 2-process watcher stopped by hand stays stopped (no ``expected`` field here).
        mark = len(ev.events)
        client.call("stop", name="web")
        ev.wait_for(lambda t, p: t == "watcher.web.stop", timeout=TIMEOUT, start=mark)
        assert actions(ev.events[mark:], "web").count("reap") == 2
        with pytest.raises(AssertionError, match="no matching event"):
            ev.wait_for(lambda t, p: t == "watcher.web.start", timeout=3.0, start=mark)
        assert client.call("status", name="web")["status"] == "stopped"
        assert "web: flapping" not in read(log)
