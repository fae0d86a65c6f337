"""redis_observer under a real circusd, watching a real redis-server.

The redis-server is a circusd watcher; the test freezes it with SIGSTOP (it keeps its socket
but answers nothing), and the plugin must restart the watcher once after ``max_failures``
timeouts, then see it healthy again. Metrics go to a real UDP socket standing in for statsd.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

from redis_servers import redis_conf, redis_server_path

from circus.testing import CircusdProcess, EventCollector, free_port, log_count, wait_until

TIMEOUT = 30.0
LOGGER = "circus.plugins.redis_observer"


def logged(daemon: CircusdProcess, text: str) -> int:
    return log_count(daemon, text, LOGGER)


def plugin_log(daemon: CircusdProcess) -> str:
    return "\n".join(line for line in daemon.log_text().splitlines() if LOGGER in line)


def config(tmp_path: Path, redis_port: int, **options: str) -> str:
    plugin = "".join(f"{k} = {v}\n" for k, v in options.items())
    return (
        "[circus]\ndebug = true\n\n"
        f"[watcher:redis]\ncmd = {redis_server_path()} {redis_conf(tmp_path, redis_port)}\n"
        "graceful_timeout = 1\n\n"
        "[plugin:redis-health]\nuse = redis_observer\n"
        f"redis_url = redis://127.0.0.1:{redis_port}/0\n{plugin}"
    )


def test_frozen_redis_is_restarted_once(tmp_path: Path) -> None:
    port = free_port()
    cfg = config(tmp_path, port, loop_rate="0.2", timeout="0.5", max_failures="3",
                 cooldown="5", restart_on_timeout="redis")
    with CircusdProcess(cfg, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        wait_until(lambda: logged(daemon, "observing redis://127.0.0.1") == 1, "the plugin",
                   daemon=daemon)
        old_pid = daemon.call("list", name="redis")["pids"][0]
        ev.wait_ready(daemon, "redis")
        os.kill(old_pid, signal.SIGSTOP)
        try:
            _, spawn = ev.wait_for(
                lambda t, p: t == "watcher.redis.spawn" and p["process_pid"] != old_pid,
                timeout=TIMEOUT)
        finally:
            # SIGCONT in case the plugin did not act (so teardown can stop it); harmless once
            # circusd killed the process (a zombie or gone pid: ProcessLookupError ignored)
            with contextlib.suppress(ProcessLookupError):
                os.kill(old_pid, signal.SIGCONT)
        new_pid = spawn["process_pid"]
        assert new_pid != old_pid
        wait_until(lambda: logged(daemon, "healthy again") == 1, "the recovery", daemon=daemon)
        log = plugin_log(daemon)
        for n in (1, 2, 3):
            assert f"check failed ({n}/3): no answer within 0.5s" in log
        assert log.index("check failed (3/3)") < log.index("restarting redis")
        assert "PONG (Redis " in log
        time.sleep(1.0)  # five more check periods: a second restart would show here
        ev.drain(0.2)
        killed = {p["process_pid"] for t, p in ev.events if t == "watcher.redis.kill"}
        assert killed == {old_pid}
        assert daemon.call("list", name="redis")["pids"] == [new_pid]
        assert logged(daemon, "restarting redis") == 1


def test_info_fields_reach_statsd_as_gauges(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(0.5)
        statsd_port = udp.getsockname()[1]
        cfg = config(tmp_path, port, loop_rate="0.2", timeout="1", host="127.0.0.1",
                     port=str(statsd_port), application_name="cache")
        with CircusdProcess(cfg, tmp_path) as daemon:
            lines: list[str] = []
            deadline = time.monotonic() + TIMEOUT
            prefix = "circus.cache.watcher.redis_stats."
            while not any(line.startswith(prefix + "connected_clients:") for line in lines):
                assert time.monotonic() < deadline, (lines, daemon.log_text())
                try:
                    lines += udp.recv(65536).decode().splitlines()
                except TimeoutError:
                    continue
            gauge = next(x for x in lines if x.startswith(prefix + "connected_clients:"))
            assert gauge.endswith("|g")
            assert float(gauge[len(prefix + "connected_clients:"):-2]) >= 1
            assert any(x.startswith(prefix + "used_memory:") for x in lines)
            assert not any("error" in x for x in lines)
