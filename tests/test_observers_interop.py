"""http_observer and notify (run by our runner) against the ORIGINAL circusd 0.19.

The original refuses commands during its ``check_delay`` tick (contract C3/F4), notices deaths
only at ticks, and publishes neither ``expected`` nor ``by``: the observer's refused restart
must be sent again, and notify must still tell a crash loop (one alert) from a manual stop
(nothing) by the ``kill`` events that precede expected exits.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from circus.testing import EventCollector, free_port, run_plugin, wait_until
from circus.transports import CommandClient

ROOT = Path(__file__).resolve().parents[1]
HEALTH_SERVER = ROOT / "plugins" / "http_observer" / "tests" / "health_server.py"
sys.path.insert(0, str(ROOT / "plugins" / "notify" / "tests"))

from receivers import WebhookReceiver  # noqa: E402

TIMEOUT = 40.0
pytestmark = pytest.mark.interop


def our_plugin(daemon: Any, log: Path, plugin: str, **options: str
               ) -> contextlib.AbstractContextManager[object]:
    return run_plugin(daemon.endpoint, daemon.pubsub_endpoint, plugin, log, options,
                      stop_timeout=TIMEOUT)


def read(log: Path) -> str:
    try:
        return log.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def call_ok(client: CommandClient, command: str, **props: Any) -> None:
    """Send until accepted: circusd 0.19 refuses commands that arrive during its tick (C3)."""
    deadline = time.monotonic() + TIMEOUT
    while (reply := client.call(command, **props))["status"] != "ok":
        assert "already running" in str(reply.get("reason")), reply
        assert time.monotonic() < deadline, reply
        time.sleep(0.1)


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def test_http_observer_restarts_a_watcher_of_circusd_019(
    original_circusd: Any, tmp_path: Path
) -> None:
    port = free_port()
    work = tmp_path / "web"
    work.mkdir()
    daemon = original_circusd(
        f"[watcher:web]\ncmd = {sys.executable} {HEALTH_SERVER} {port} {work}\n",
        circus_options={"check_delay": 1},
    )
    log = tmp_path / "observer.log"
    with CommandClient(daemon.endpoint, timeout=20.0) as client, \
            EventCollector(daemon.pubsub_endpoint) as ev, \
            our_plugin(daemon, log, "circus.plugins.http_observer.HttpObserver",
                       check_url=f"http://127.0.0.1:{port}/health", loop_rate="0.2",
                       timeout="1", max_failures="2", cooldown="5", restart_on_error="web"):
        wait_until(lambda: healthy(port), "the HTTP server", TIMEOUT)
        wait_until(lambda: "observing http://" in read(log), "the plugin", TIMEOUT)
        daemon.remember_children()
        old_pid = client.call("list", name="web")["pids"][0]
        (work / "unhealthy").write_text("status")
        ev.wait_for(lambda t, p: t == "watcher.web.kill" and p["process_pid"] == old_pid,
                    timeout=TIMEOUT)
        wait_until(lambda: "healthy again" in read(log), "the recovery", TIMEOUT)
        assert read(log).count("restarting web") == 1
        new_pids = client.call("list", name="web")["pids"]
        assert len(new_pids) == 1
        assert new_pids[0] != old_pid
        daemon.remember_children()


def test_notify_against_circusd_019(original_circusd: Any, tmp_path: Path) -> None:
    daemon = original_circusd(
        '[watcher:crasher]\ncmd = sh -c "sleep 0.2; exit 1"\nautostart = false\n\n'
        "[watcher:web]\ncmd = sleep 120\nnumprocesses = 2\n",
        circus_options={"check_delay": 1},
    )
    log = tmp_path / "notify.log"
    webhook = WebhookReceiver()
    try:
        with CommandClient(daemon.endpoint, timeout=20.0) as client, \
                EventCollector(daemon.pubsub_endpoint) as ev, \
                our_plugin(daemon, log, "notify", webhook_url=webhook.url, crashes="3",
                           crash_window="10", recovery_time="5"):
            wait_until(lambda: "notifying " in read(log), "the plugin", TIMEOUT)
            call_ok(client, "start", name="crasher")
            (alert,) = webhook.wait(1, timeout=TIMEOUT)
            assert alert["kind"] == "crashing"
            assert alert["watcher"] == "crasher"
            # the operator stops both watchers: kill events first, so nothing is reported
            mark = len(ev.events)
            call_ok(client, "stop", name="web")
            ev.wait_for(lambda t, p: t == "watcher.web.stop", timeout=TIMEOUT, start=mark)
            time.sleep(1.5)  # a tick or more: the crash loop goes on, still one alert
            call_ok(client, "stop", name="crasher")
            wait_until(lambda: client.call("status", name="crasher")["status"] == "stopped",
                       "the crasher stopped", TIMEOUT)
            # without ``by`` a stop right after crashes cannot be told from the flapping
            # plugin's: reported once, as an escalation of the open incident (README)
            (_, stopped) = webhook.wait(2, timeout=TIMEOUT)
            assert stopped["kind"] == "flapping"
            assert stopped["details"]["escalated_from"] == "crashing"
            time.sleep(2.0)  # the bounded "nothing more" window
            assert [b["kind"] for b in webhook.bodies] == ["crashing", "flapping"]
            assert "web:" not in read(log)  # the healthy watcher's manual stop: nothing
    finally:
        webhook.close()
