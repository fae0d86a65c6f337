"""http_observer under a real circusd, probing a real HTTP server (a watcher) that turns unhealthy.

The server (``health_server.py``) is told to fail through a marker file; a restart (new process)
or SIGUSR1 heals it. Timelines are read from circusd's events and the plugin's log lines.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

from circus.testing import CircusdProcess, EventCollector, free_port, log_count, wait_until

TIMEOUT = 30.0
LOGGER = "circus.plugins.http_observer"


def logged(daemon: CircusdProcess, text: str) -> int:
    return log_count(daemon, text, LOGGER)


def plugin_log(daemon: CircusdProcess) -> str:
    return "\n".join(line for line in daemon.log_text().splitlines() if LOGGER in line)
SERVER = Path(__file__).with_name("health_server.py")


def config(tmp_path: Path, port: int, **options: str) -> str:
    plugin = "".join(f"{k} = {v}\n" for k, v in options.items())
    return (
        "[circus]\ndebug = true\n\n"
        f"[watcher:web]\ncmd = {sys.executable} {SERVER} {port} {tmp_path}\n"
        "graceful_timeout = 5\n\n"
        "[plugin:health]\nuse = http_observer\n"
        f"check_url = http://127.0.0.1:{port}/health\nrestart_on_error = web\n{plugin}"
    )


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def start(daemon: CircusdProcess, port: int) -> None:
    """Wait until the server answers and the plugin has judged it healthy at least once."""
    wait_until(lambda: healthy(port), "the HTTP server", daemon=daemon)
    wait_until(lambda: logged(daemon, "observing http://") == 1, "the plugin", daemon=daemon)


def test_restarts_the_watcher_after_consecutive_failures(tmp_path: Path) -> None:
    port = free_port()
    cfg = config(tmp_path, port, loop_rate="0.2", timeout="2", max_failures="3",
                 cooldown="5", expected_body="ok")
    with CircusdProcess(cfg, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        start(daemon, port)
        old_pid = daemon.call("list", name="web")["pids"][0]
        (tmp_path / "unhealthy").write_text("status")
        _, spawn = ev.wait_for(
                lambda t, p: t == "watcher.web.spawn" and p["process_pid"] != old_pid,
                timeout=TIMEOUT)
        assert spawn["process_pid"] != old_pid
        wait_until(lambda: healthy(port), "the restarted server", daemon=daemon)
        wait_until(lambda: logged(daemon, "healthy again") == 1, "the recovery log", daemon=daemon)
        log = plugin_log(daemon)
        for n in (1, 2, 3):
            assert f"check failed ({n}/3): GET http://127.0.0.1:{port}/health: status 503" in log
        assert log.index("check failed (3/3)") < log.index("restarting web")
        # exactly one restart: one kill of the old process, one new process
        time.sleep(1.0)  # five more check periods: a repeated restart would show here
        ev.drain(0.2)
        kills = [p for t, p in ev.events if t == "watcher.web.kill"]
        assert [k["process_pid"] for k in kills] == [old_pid]
        starts = (tmp_path / "starts").read_text().split()
        assert starts == [str(old_pid), str(spawn["process_pid"])]
        assert logged(daemon, "restarting web") == 1


def test_body_mismatch_sends_the_signal_instead(tmp_path: Path) -> None:
    port = free_port()
    cfg = config(tmp_path, port, loop_rate="0.2", timeout="2", max_failures="2",
                 expected_body="ok", expected_status="200", signal="USR1", cooldown="3")
    with CircusdProcess(cfg, tmp_path) as daemon:
        start(daemon, port)
        pid = daemon.call("list", name="web")["pids"][0]
        (tmp_path / "unhealthy").write_text("body")
        wait_until((tmp_path / "signals").exists, "the signal", daemon=daemon)
        wait_until(lambda: logged(daemon, "healthy again") == 1, "the recovery log", daemon=daemon)
        assert (tmp_path / "signals").read_text().split() == [str(pid), "10"]
        assert daemon.call("list", name="web")["pids"] == [pid]  # not restarted
        log = plugin_log(daemon)
        assert "status 200 but the body lacks 'ok'" in log
        assert "sending SIGUSR1 to web" in log


def test_a_dead_server_is_one_failure_per_check_then_backoff(tmp_path: Path) -> None:
    """Nothing listens: connection errors count; after the action, the cooldown holds."""
    port = free_port()
    cfg = (
        "[circus]\ndebug = true\n\n"
        "[watcher:web]\ncmd = sleep 120\n\n"
        "[plugin:health]\nuse = http_observer\n"
        f"check_url = http://127.0.0.1:{port}/\nrestart_on_error = web\n"
        "loop_rate = 0.2\ntimeout = 1\nmax_failures = 2\ncooldown = 30\n"
    )
    with CircusdProcess(cfg, tmp_path) as daemon:
        wait_until(lambda: logged(daemon, "restarting web") == 1, "the restart", daemon=daemon)
        wait_until(lambda: logged(daemon, "during the cooldown (not counted)") >= 3,
                   "failures in the cooldown", daemon=daemon)
        assert logged(daemon, "restarting web") == 1
        assert "(2/2): GET http://127.0.0.1:" in plugin_log(daemon)
