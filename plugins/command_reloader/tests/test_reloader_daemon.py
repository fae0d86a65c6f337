"""command_reloader under a real circusd: real files replaced, real restarts observed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from circus.testing import CircusdProcess, EventCollector, log_count, wait_until

TIMEOUT = 30.0


LOGGER = "circus.plugins.command_reloader"


def wait_log(daemon: CircusdProcess, text: str, count: int = 1) -> None:
    wait_until(lambda: log_count(daemon, text, LOGGER) >= count, repr(text), daemon=daemon)


def script(path: Path, version: str) -> Path:
    """An executable program; replaced the way deploys do (write, then rename over)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"#!/bin/sh\n# {version}\nexec sleep 1000\n")
    tmp.chmod(0o755)
    os.replace(tmp, path)
    return path


def config(watchers: str, **options: str) -> str:
    extra = "".join(f"{k} = {v}\n" for k, v in options.items())
    return (f"[circus]\ndebug = true\n\n{watchers}\n[plugin:reloader]\n"
            f"use = command_reloader\n{extra}")


def of(watcher: str, action: str) -> Any:
    return lambda t, p: t == f"watcher.{watcher}.{action}"


@pytest.mark.parametrize("force_polling", ["false", "true"])
def test_replacing_the_program_restarts_only_its_watcher(tmp_path: Path,
                                                         force_polling: str) -> None:
    web = script(tmp_path / "web", "v1")
    api = script(tmp_path / "api", "v1")
    watchers = (f"[watcher:web]\ncmd = {web} --port 8080\nnumprocesses = 2\n\n"  # args: B8
                f"[watcher:api]\ncmd = {api}\n\n")
    cfg = config(watchers, force_polling=force_polling, loop_rate="0.2")
    with CircusdProcess(cfg, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        wait_log(daemon, "notifications active")
        ev.wait_ready(daemon, "web")
        old = set(daemon.call("list", name="web")["pids"])
        api_pids = daemon.call("list", name="api")["pids"]
        mark = len(ev.events)
        script(web, "v2")
        # from the mark: web's start-up spawns may have reached the collector too (under load
        # the subscription can be quicker than circusd's first spawns)
        ev.wait_count(of("web", "spawn"), 2, timeout=TIMEOUT, start=mark)
        kills = {p["process_pid"] for t, p in ev.events[mark:] if t == "watcher.web.kill"}
        assert kills == old
        wait_log(daemon, f"web: {web} modified. Restarting.")
        ev.assert_quiet(lambda t, p: t.endswith((".kill", ".spawn")), 1.5)  # one restart only
        assert daemon.call("list", name="api")["pids"] == api_pids
        assert not set(daemon.call("list", name="web")["pids"]) & old


def test_a_configured_directory_and_a_stopped_watcher(tmp_path: Path) -> None:
    app = script(tmp_path / "app", "v1")
    conf = tmp_path / "conf"
    conf.mkdir()
    watchers = (f"[watcher:app]\ncmd = {app}\ncommand_reloader.watch = conf\n"
                f"working_dir = {tmp_path}\n\n"
                f"[watcher:idle]\ncmd = {app}\nautostart = false\n\n")
    with CircusdProcess(config(watchers), tmp_path) as daemon, \
            EventCollector(daemon.pubsub_endpoint) as ev:
        wait_log(daemon, "notifications active", count=2)  # files and directories
        ev.wait_ready(daemon, "app")
        mark = len(ev.events)
        (conf / "settings.ini").write_text("x = 1\n")
        ev.wait_for(of("app", "spawn"), timeout=TIMEOUT, start=mark)
        # app's program is also idle's: idle is stopped and stays stopped
        script(app, "v2")
        wait_log(daemon, f"idle: {app} modified; the watcher is stopped, not restarting it")
        ev.wait_for(of("app", "kill"), timeout=TIMEOUT, start=mark)
        assert daemon.call("status", name="idle")["status"] == "stopped"


def test_a_watcher_added_later_is_watched(tmp_path: Path) -> None:
    late = script(tmp_path / "late", "v1")
    with CircusdProcess(config("[watcher:first]\ncmd = sleep 1000\n\n", loop_rate="0.2"),
                        tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        wait_log(daemon, "notifications active")
        daemon.call("add", name="late", cmd=str(late), start=True)
        ev.wait_for(of("late", "spawn"), timeout=TIMEOUT)
        wait_log(daemon, "notifications active", count=2)  # restarted with late's directory
        mark = len(ev.events)
        script(late, "v2")
        ev.wait_for(of("late", "kill"), timeout=TIMEOUT, start=mark)
        ev.wait_for(of("late", "spawn"), timeout=TIMEOUT, start=mark)


def test_a_crash_loop_in_backoff_or_fatal_is_restarted_with_the_new_program(
        tmp_path: Path) -> None:
    """The fix for a crashing program is deployed: circusd holds one watcher back (backoff for
    60 s) and gave up on the other (fatal); both try the new program at once."""
    broken = tmp_path / "app"
    tmp = broken.with_name("app.tmp")
    tmp.write_text("#!/bin/sh\nexit 3\n")
    tmp.chmod(0o755)
    os.replace(tmp, broken)
    watchers = (f"[watcher:held]\ncmd = {broken}\nbackoff_start = 60\nbackoff_max = 60\n\n"
                f"[watcher:doomed]\ncmd = {broken}\ngive_up_after = 2\n"
                "backoff_start = 0.05\nbackoff_max = 0.1\n\n")
    with CircusdProcess(config(watchers, loop_rate="0.2"), tmp_path) as daemon, \
            EventCollector(daemon.pubsub_endpoint) as ev:
        wait_log(daemon, "notifications active")
        for name, state in (("held", "backoff"), ("doomed", "fatal")):
            wait_until(lambda n=name, s=state: daemon.call("status", name=n)["status"] == s,
                       f"{name} {state}", daemon=daemon)
        mark = len(ev.events)
        script(broken, "v2")  # the fixed program
        for name in ("held", "doomed"):
            wait_log(daemon, f"{name}: {broken} modified. Restarting.")
            ev.wait_for(of(name, "spawn"), timeout=TIMEOUT, start=mark)
            wait_until(lambda n=name: daemon.call("status", name=n)["status"] == "active",
                       f"{name} active", daemon=daemon)
