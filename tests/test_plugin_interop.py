"""Our runner and plugins against the ORIGINAL circusd 0.19 (installed in .cache/circus-0.19).

A plugin written for circus must work unchanged when the daemon is the original one: DEALER
framing, replies matched by the ids 0.19 echoes, two-frame events without our additive fields.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from circus.testing import wait_until
from circus.transports import CommandClient

WAIT = 30.0

PLUGINS = '''
import json
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

class RoundTrip(CircusPlugin):
    name = 'roundtrip'
    def handle_init(self):
        self.out = open(self.config['out'], 'a', buffering=1)
        self.out.write(json.dumps({'list': self.call('list')}) + '\\n')
    def handle_recv(self, data):
        topic, msg = data
        if topic == 'watcher.w.spawn':
            name, action, payload = self.split_data(data)
            pid = self.load_message(payload)['process_pid']
            status = self.call('status', name=name)
            self.out.write(json.dumps({'spawn': pid, 'status': status['status']}) + '\\n')
    def handle_stop(self):
        self.out.write('stopped\\n')
        self.out.close()
'''

pytestmark = pytest.mark.interop


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "h4interop").mkdir(parents=True)
    (root / "h4interop" / "__init__.py").write_text("")
    (root / "h4interop" / "plugins.py").write_text(textwrap.dedent(PLUGINS))
    return root


@pytest.fixture
def runner(project: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(daemon: Any, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "circus.plugins.runner", "--endpoint", daemon.endpoint,
             "--pubsub", daemon.pubsub_endpoint, *args],
            env=dict(os.environ, PYTHONPATH=str(project)),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_seed_logger_via_our_runner_against_circusd_019(
    original_circusd: Callable[..., Any], runner: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    daemon = original_circusd("[watcher:w]\ncmd = sleep 120\n", circus_options={"check_delay": 1})
    events = tmp_path / "events.txt"
    proc = runner(daemon, "h4interop.plugins.Logger", f"filename={events}")
    wait_until(events.exists, "handle_init")
    with CommandClient(daemon.endpoint, timeout=WAIT) as client:
        for _ in range(3):
            assert client.call("incr", name="w")["status"] == "ok"
            time.sleep(0.3)
        pids = client.call("list", name="w")["pids"]
    proc.terminate()
    assert proc.wait(WAIT) == 0
    text = read(events)  # present only because handle_stop ran on SIGTERM
    spawned = {json.loads(chunk.split("}")[0] + "}")["process_pid"]
               for chunk in text.split("watcher.w.spawn::")[1:]}
    assert spawned
    assert spawned <= set(pids)


def test_calls_from_a_plugin_against_circusd_019(
    original_circusd: Callable[..., Any], runner: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    daemon = original_circusd("[watcher:w]\ncmd = sleep 120\n", circus_options={"check_delay": 1})
    out = tmp_path / "out.txt"
    proc = runner(daemon, "h4interop.plugins.RoundTrip", f"out={out}")
    wait_until(lambda: "list" in read(out), "handle_init's call")
    first = json.loads(read(out).splitlines()[0])["list"]
    assert first["status"] == "ok"
    assert first["watchers"] == ["w"]

    def reported_spawn() -> bool:
        with CommandClient(daemon.endpoint, timeout=WAIT) as client:
            client.call("incr", name="w")
        time.sleep(0.2)
        return '"spawn"' in read(out)

    wait_until(reported_spawn, "a spawn handled with a call inside handle_recv")
    spawn = json.loads(next(line for line in read(out).splitlines() if '"spawn"' in line))
    assert spawn["status"] == "active"  # the 0.19 `status NAME` override (C5) came through
    proc.terminate()
    assert proc.wait(WAIT) == 0
    assert read(out).splitlines()[-1] == "stopped"


def test_bundled_logger_by_short_name_against_circusd_019(
    original_circusd: Callable[..., Any], runner: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    daemon = original_circusd("[watcher:w]\ncmd = sleep 120\n", circus_options={"check_delay": 1})
    events = tmp_path / "bundled.log"
    proc = runner(daemon, "logger", f"filename={events}", "topics=watcher.w.*")

    def logged() -> bool:
        with CommandClient(daemon.endpoint, timeout=WAIT) as client:
            client.call("incr", name="w")
        time.sleep(0.2)
        return "watcher.w.spawn::" in read(events)

    wait_until(events.exists, "the logger to open its file")
    wait_until(logged, "spawn lines from circusd 0.19")
    proc.terminate()
    assert proc.wait(WAIT) == 0
