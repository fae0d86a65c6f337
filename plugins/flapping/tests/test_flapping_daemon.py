"""The flapping plugin under a real circusd: real crash loops, timelines read from events.

Every test waits until the plugin provably receives events (see ``wait_plugin_ready``), then
starts its crasher by hand, so the plugin sees the whole crash loop. The only fixed waits are
the bounded "nothing more happens" windows after the last expected event.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from circus.testing import CircusdProcess, EventCollector

Event = tuple[str, dict[str, Any]]
TIMEOUT = 30.0


def config(watchers: str, **plugin_options: str) -> str:
    options = "".join(f"{k} = {v}\n" for k, v in plugin_options.items())
    # debug = true streams the plugin's log into circusd.log, which the tests read.
    return f"[circus]\ndebug = true\n\n{watchers}\n[plugin:flapping]\nuse = flapping\n{options}"


def crasher(name: str, extra: str = "", cmd: str = 'sh -c "sleep 0.2; exit 1"') -> str:
    return f"[watcher:{name}]\ncmd = {cmd}\nautostart = false\n{extra}\n"


def plugin_log(daemon: CircusdProcess) -> list[str]:
    return [line for line in daemon.log_text().splitlines() if "circus.plugins.flapping" in line]


def wait_plugin_ready(daemon: CircusdProcess, watcher: str) -> None:
    """Poke ``watcher`` (``set`` -> ``updated``) until the plugin logs that it re-read it."""
    marker = f"{watcher}: attempts="
    value = daemon.call("get", name=watcher, keys=["graceful_timeout"])["options"]
    deadline = time.monotonic() + TIMEOUT
    while True:
        before = sum(marker in line for line in plugin_log(daemon))
        daemon.call("set", name=watcher, options=value)
        poke_deadline = time.monotonic() + 0.5
        while time.monotonic() < poke_deadline:
            if sum(marker in line for line in plugin_log(daemon)) > before:
                return
            time.sleep(0.02)
        if time.monotonic() > deadline:
            raise AssertionError(f"flapping plugin never reacted:\n{daemon.log_text()}")


def of(watcher: str, action: str) -> Any:
    return lambda t, p: t == f"watcher.{watcher}.{action}"


def timeline(events: list[Event], watcher: str) -> list[tuple[str, dict[str, Any]]]:
    prefix = f"watcher.{watcher}."
    return [(t[len(prefix):], p) for t, p in events if t.startswith(prefix)]


def quiet(ev: EventCollector, predicate: Any, seconds: float) -> None:
    """Assert that no event matching ``predicate`` arrives within ``seconds``."""
    mark = len(ev.events)
    try:
        topic, payload = ev.wait_for(predicate, timeout=seconds, start=mark)
    except AssertionError:
        return
    raise AssertionError(f"unexpected {topic} {payload}")


def check_detections(tl: list[tuple[str, dict[str, Any]]], attempts: int, window: float) -> None:
    """Before every stop, at least ``attempts`` unexpected exits within ``window`` seconds."""
    crashes: list[float] = []
    for action, payload in tl:
        if action == "reap" and payload.get("expected") is False:
            crashes.append(payload["time"])
        elif action == "stop":
            assert len(crashes) >= attempts, tl
            assert crashes[attempts - 1] - crashes[0] <= window, crashes
            crashes = []
        elif action == "start":
            crashes = []


def test_exhausts_max_retry_then_stays_stopped(tmp_path: Path) -> None:
    cfg = config(crasher("crasher"), attempts="3", window="2", retry_in="1", max_retry="2")
    with CircusdProcess(cfg, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        wait_plugin_ready(daemon, "crasher")
        mark = len(ev.events)
        daemon.call("start", name="crasher")
        # 3 detections: stop, start (retry 1), stop, start (retry 2), stop for good.
        ev.wait_count(of("crasher", "stop"), 3, timeout=TIMEOUT)
        quiet(ev, of("crasher", "start"), 3.0)  # retry_in (1 s) + margin: no restart
        tl = timeline(ev.events[mark:], "crasher")
        plugin_actions = [a for a, _ in tl if a in ("start", "stop")]
        assert plugin_actions == ["start", "stop", "start", "stop", "start", "stop"]
        check_detections(tl, attempts=3, window=2.0)
        stops = [p["time"] for a, p in tl if a == "stop"]
        starts = [p["time"] for a, p in tl if a == "start"][1:]  # after the manual one
        for stopped, restarted in zip(stops, starts, strict=False):
            assert restarted - stopped >= 1.0  # retry_in, measured on the daemon's clock
        assert daemon.call("status", name="crasher")["status"] == "stopped"
        log = "\n".join(plugin_log(daemon))
        assert "retry 1/2 in 1s" in log
        assert "retry 2/2 in 1s" in log
        assert "after 2 retries (max_retry = 2): stopping it for good" in log
        assert "crasher: left stopped after 2 retries" in log


def flaky_command(tmp_path: Path) -> str:
    """A command that crashes on its first three runs, then stays up.

    The run count survives restarts in a file, updated by write-then-rename: a stop's SIGTERM
    between a truncation and a write would otherwise reset it.
    """
    script = tmp_path / "flaky.sh"
    script.write_text(
        'n=$(cat "$1" 2>/dev/null || echo 0); n=$((n+1))\n'
        'echo "$n" > "$1.tmp" && mv "$1.tmp" "$1"\n'
        'if [ "$n" -le 3 ]; then sleep 0.2; exit 1; fi\nexec sleep 120\n'
    )
    return f"sh {script} {tmp_path / 'runs'}"


def test_recovering_watcher_keeps_running(tmp_path: Path) -> None:
    cmd = flaky_command(tmp_path)
    cfg = config(crasher("flaky", cmd=cmd), attempts="3", window="3", retry_in="1")
    with CircusdProcess(cfg, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        wait_plugin_ready(daemon, "flaky")
        mark = len(ev.events)
        daemon.call("start", name="flaky")
        stopped = ev.wait_for(of("flaky", "stop"), timeout=TIMEOUT, start=mark)
        restarted = ev.wait_for(of("flaky", "start"), timeout=TIMEOUT,
                                start=ev.events.index(stopped))
        # Running again: the new process stays up well past the flapping window.
        quiet(ev, lambda t, p: t == "watcher.flaky.reap", 4.0)
        tl = timeline(ev.events[mark:], "flaky")
        assert [a for a, _ in tl].count("stop") == 1
        check_detections(tl, attempts=3, window=3.0)
        assert restarted[1]["time"] - stopped[1]["time"] >= 1.0
        assert daemon.call("status", name="flaky")["status"] == "active"
        assert len(daemon.call("list", name="flaky")["pids"]) == 1


def test_per_watcher_overrides(tmp_path: Path) -> None:
    watchers = crasher("plain") + crasher(
        "tuned", "flapping.attempts = 2\nflapping.max_retry = 1\nflapping.retry_in = 0.5\n"
    )
    cfg = config(watchers, attempts="3", window="2", retry_in="30", max_retry="0")
    with CircusdProcess(cfg, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        wait_plugin_ready(daemon, "plain")
        wait_plugin_ready(daemon, "tuned")
        mark = len(ev.events)
        daemon.call("start", name="plain")
        daemon.call("start", name="tuned")
        ev.wait_count(of("tuned", "stop"), 2, timeout=TIMEOUT)
        ev.wait_count(of("plain", "stop"), 1, timeout=TIMEOUT)
        quiet(ev, lambda t, p: t.endswith(".start"), 2.0)
        tuned = timeline(ev.events[mark:], "tuned")
        plain = timeline(ev.events[mark:], "plain")
        # tuned: one retry after 0.5 s, then left stopped; plain: max_retry 0, never restarted.
        assert [a for a, _ in tuned if a in ("start", "stop")] == ["start", "stop", "start", "stop"]
        assert [a for a, _ in plain if a in ("start", "stop")] == ["start", "stop"]
        check_detections(tuned, attempts=2, window=2.0)
        check_detections(plain, attempts=3, window=2.0)
        log = "\n".join(plugin_log(daemon))
        assert "tuned: flapping (2 unexpected exits within 2s): stopping it, retry 1/1 in 0.5s" \
            in log
        assert "plain: flapping (3 unexpected exits within 2s) after 0 retries" in log


def test_manual_stop_of_two_processes_stays_stopped(tmp_path: Path) -> None:
    watchers = "[watcher:web]\ncmd = sleep 120\nnumprocesses = 2\n"
    cfg = config(watchers, attempts="2", window="5", retry_in="1")
    with CircusdProcess(cfg, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        wait_plugin_ready(daemon, "web")
        mark = len(ev.events)
        daemon.call("stop", name="web")
        ev.wait_for(of("web", "stop"), timeout=TIMEOUT, start=mark)
        reaps = [p for a, p in timeline(ev.events[mark:], "web") if a == "reap"]
        assert len(reaps) == 2  # two exits within the window: the original calls that flapping
        # The original plugin restarts it retry_in (1 s) later; we wait well past that.
        quiet(ev, of("web", "start"), 3.0)
        assert daemon.call("status", name="web")["status"] == "stopped"
        assert not any("web: flapping" in line for line in plugin_log(daemon))
        # A start by hand afterwards is the operator's business: it just runs.
        daemon.call("start", name="web")
        ev.wait_for(of("web", "start"), timeout=TIMEOUT, start=mark)
        assert len(daemon.call("list", name="web")["pids"]) == 2


def test_manual_start_cancels_the_pending_retry(tmp_path: Path) -> None:
    cmd = flaky_command(tmp_path)
    cfg = config(crasher("flaky", cmd=cmd), attempts="3", window="3", retry_in="3")
    with CircusdProcess(cfg, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        wait_plugin_ready(daemon, "flaky")
        mark = len(ev.events)
        daemon.call("start", name="flaky")
        stopped = ev.wait_for(of("flaky", "stop"), timeout=TIMEOUT, start=mark)
        daemon.call("start", name="flaky")  # the operator does not wait for the retry
        ev.wait_for(of("flaky", "start"), timeout=TIMEOUT, start=ev.events.index(stopped))
        deadline = time.monotonic() + TIMEOUT
        while not any("flaky: started by someone else: retry cancelled" in line
                      for line in plugin_log(daemon)):
            assert time.monotonic() < deadline, daemon.log_text()
            time.sleep(0.05)
        quiet(ev, lambda t, p: t.startswith("watcher.flaky."), 4.0)  # past retry_in (3 s)
        assert not any("flaky: started again" in line for line in plugin_log(daemon))
        assert daemon.call("status", name="flaky")["status"] == "active"
