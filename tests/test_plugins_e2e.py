"""Plugins run by a real circusd from ``[plugin:NAME]`` sections, and by the runner by short name.

The plugin code lives in a throw-away project in tmp (the seed documentation's Logger verbatim),
made "installed" with a real dist-info folder on PYTHONPATH, exactly how pip lays a
distribution out in site-packages: the entry points are found by importlib.metadata.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from circus.testing import CircusdProcess, EventCollector, wait_until

WAIT = 30.0

SEED = '''
from circus.plugins import CircusPlugin

class Logger(CircusPlugin):
    name = 'logger'
    def __init__(self, filename, **kwargs):
        super(Logger, self).__init__(**kwargs)
        self.filename = filename
        self.file = None
    def handle_init(self):
        self.file = open(self.filename, 'a+')
    def handle_stop(self):
        self.file.close()
    def handle_recv(self, data):
        topic, msg = data
        self.file.write('%s::%s' % (topic, msg))
'''

ROUND_TRIP = '''
import json
from circus.plugins import CircusPlugin

class RoundTrip(CircusPlugin):
    """On every `updated` of watcher w: cast incr, then call numprocesses; report each step."""
    name = 'roundtrip'
    required_commands = frozenset({'incr'})  # beyond the read-only default
    def handle_init(self):
        self.out = open(self.config['out'], 'a', buffering=1)
        self.out.write(json.dumps({'init': self.call('list')}) + '\\n')
    def handle_recv(self, data):
        topic, msg = data
        if topic == 'watcher.w.updated':
            self.cast('incr', name='w')
            reply = self.call('numprocesses', name='w')
            self.out.write(json.dumps({'numprocesses': reply['numprocesses']}) + '\\n')
    def handle_stop(self):
        self.out.write('stopped\\n')
        self.out.close()
'''

HOOKS = '''
from circus.hooks import hookimpl

@hookimpl
def circus_plugin_event(plugin, event):
    if plugin.config.get('h4_drop'):
        if event.topic.endswith(plugin.config['h4_drop']):
            event.drop()
'''


def make_dist(root: Path, dist: str, groups: dict[str, dict[str, str]]) -> None:
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    text = ""
    for group, entries in groups.items():
        text += f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items())
    (info / "entry_points.txt").write_text(text)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    pkg = root / "h4e2e"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "seed.py").write_text(textwrap.dedent(SEED))
    (pkg / "roundtrip.py").write_text(textwrap.dedent(ROUND_TRIP))
    (pkg / "hooks.py").write_text(textwrap.dedent(HOOKS))
    make_dist(root, "h4-e2e-plugins", {
        "circus.plugins": {"h4seed": "h4e2e.seed:Logger"},
        # a broken third-party hook module is logged and skipped by every plugin process
        "circus.hooks": {"h4drop": "h4e2e.hooks", "h4broken": "h4e2e.nonexistent"},
    })
    return root


def env_with(project: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(project))
    env.pop("CIRCUS_LOAD_HOOKS", None)  # these tests are about loading third-party hooks
    return env


@pytest.fixture
def circusd(
    circusd: Callable[..., CircusdProcess], project: Path
) -> Callable[..., CircusdProcess]:
    """circus-core's ``circusd`` fixture, with the test project importable (and hook loading
    on) in circusd and the plugins it starts."""

    def start(config: str) -> CircusdProcess:
        return circusd(config, check_delay=1, env=env_with(project))

    return start


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def plugin_pid(daemon: CircusdProcess, name: str) -> int:
    pids: list[int] = []

    def found() -> bool:
        pids[:] = daemon.call("list", name=f"plugin:{name}").get("pids", [])
        return bool(pids)

    wait_until(found, f"plugin:{name} to run")
    return pids[0]


@pytest.mark.parametrize("use", ["h4e2e.seed.Logger", "h4e2e.seed:Logger", "h4seed"])
def test_seed_logger_from_config_and_handle_stop_when_circusd_stops_it(
    circusd: Callable[..., CircusdProcess], tmp_path: Path, use: str
) -> None:
    events = tmp_path / "events with spaces.txt"
    daemon = circusd(f"[watcher:w]\ncmd = sleep 120\n\n"
                     f"[plugin:logger]\nuse = {use}\nfilename = {events}\n")
    pid = plugin_pid(daemon, "logger")
    wait_until(events.exists, "handle_init to create the file")  # SUB connected before this
    with EventCollector(daemon.pubsub_endpoint) as collector:
        collector.wait_ready(daemon, "w")
        # The seed never flushes, so its subscription cannot be observed from here: spread the
        # spawns over ~2 s so the last ones surely follow the SUB handshake (ZeroMQ's slow
        # joiner; the collector's own readiness probes can come before it).
        for _ in range(8):
            daemon.call("incr", name="w", waiting=True)
            time.sleep(0.25)
        last_pid = daemon.call("list", name="w")["pids"][-1]
        daemon.call("stop", name="plugin:logger", waiting=True)
        _, reap = collector.wait_for(
            lambda t, p: t == "watcher.plugin:logger.reap" and p["process_pid"] == pid)
    assert reap["exit_code"] == 0  # stopped cleanly by SIGTERM, not killed by it
    text = events.read_text()  # the seed never flushes: this is there only via handle_stop
    assert f'watcher.w.spawn::{{"process_pid": {last_pid}, ' in text


def test_bundled_logger_by_short_name_from_config_with_topics_filter(
    circusd: Callable[..., CircusdProcess], tmp_path: Path
) -> None:
    events = tmp_path / "bundled.log"
    daemon = circusd(f"[watcher:w]\ncmd = sleep 120\n\n[plugin:log]\nuse = logger\n"
                     f"filename = {events}\ntopics = watcher.w.spawn\n")
    plugin_pid(daemon, "log")
    wait_until(events.exists, "the logger to open its file")

    def logged_spawn() -> bool:
        daemon.call("incr", name="w", waiting=True)
        time.sleep(0.1)
        return "watcher.w.spawn" in read(events)

    wait_until(logged_spawn, "a spawn line")
    lines = read(events).splitlines()
    assert lines
    assert all(line.startswith("watcher.w.spawn::") for line in lines)  # updated/kill filtered


def test_short_names_via_the_runner_and_a_third_party_hook(
    circusd: Callable[..., CircusdProcess], project: Path, tmp_path: Path
) -> None:
    daemon = circusd("[watcher:w]\ncmd = sleep 120\n")
    bundled = tmp_path / "bundled.log"
    seed = tmp_path / "seed.log"
    procs = [
        subprocess.Popen([sys.executable, "-m", "circus.plugins.runner", "--endpoint",
                          daemon.endpoint, "--pubsub", daemon.pubsub_endpoint, *args],
                         env=env_with(project), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        for args in (["logger", f"filename={bundled}", "h4_drop=.updated"],
                     ["h4seed", f"filename={seed}"])
    ]
    try:
        wait_until(lambda: bundled.exists() and seed.exists(), "both plugins to start")

        def logged() -> bool:
            daemon.call("set", name="w", options={"graceful_timeout": 30})
            daemon.call("incr", name="w", waiting=True)
            time.sleep(0.1)
            return "watcher.w.spawn" in read(bundled)

        wait_until(logged, "the bundled logger to log a spawn")
        for proc in procs:
            proc.terminate()
            assert proc.wait(WAIT) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(WAIT)
    assert ".updated::" not in read(bundled)  # dropped by the h4drop entry-point hook
    assert "watcher.w.spawn::" in read(seed)
    assert "watcher.w.updated::" in read(seed)  # the hook only applies to plugins that ask


def test_call_and_cast_round_trip_under_circusd(
    circusd: Callable[..., CircusdProcess], tmp_path: Path
) -> None:
    out = tmp_path / "roundtrip.txt"
    daemon = circusd(f"[watcher:w]\ncmd = sleep 120\n\n[plugin:rt]\n"
                     f"use = h4e2e.roundtrip.RoundTrip\nout = {out}\n")
    wait_until(lambda: "init" in read(out), "handle_init's call")
    init = json.loads(read(out).splitlines()[0])["init"]
    assert init["status"] == "ok"
    assert sorted(init["watchers"]) == ["plugin:rt", "w"]

    def counted() -> bool:
        daemon.call("set", name="w", options={"graceful_timeout": 30})
        time.sleep(0.05)
        return "numprocesses" in read(out)

    wait_until(counted, "a call from handle_recv")
    wait_until(lambda: daemon.call("numprocesses", name="w")["numprocesses"] >= 2, "the cast incr")
    daemon.call("stop", name="plugin:rt", waiting=True)
    assert read(out).splitlines()[-1] == "stopped"


def test_unknown_plugin_stops_circusd_with_a_clear_message(tmp_path: Path,
                                                           project: Path) -> None:
    config = tmp_path / "bad.ini"
    config.write_text(f"[circus]\nendpoint = ipc://{tmp_path}/c.sock\n"
                      f"pubsub_endpoint = ipc://{tmp_path}/p.sock\n\n"
                      "[plugin:oops]\nuse = h4sed\nfilename = /tmp/x\n")
    result = subprocess.run([sys.executable, "-m", "circus.circusd", str(config)],
                            capture_output=True, text=True, timeout=WAIT,
                            env=env_with(project), check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "plugin:oops" in output
    assert "h4seed" in output  # the closest installed name is suggested
    assert "Traceback" not in output
