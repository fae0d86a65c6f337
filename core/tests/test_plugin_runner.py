"""The ``circus-plugin`` runner as a real subprocess, against a real circusd where it matters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from circus.testing import CircusdProcess, wait_until

WAIT = 30.0

# The seed documentation's example, verbatim, plus helpers for the other cases.
MODULE = '''
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

class Reporter(CircusPlugin):
    """Writes its config and lifecycle to a file, flushed line by line."""
    name = 'reporter'
    def handle_init(self):
        self.out = open(self.config['out'], 'a', buffering=1)
        self.out.write(json.dumps({'config': self.config, 'check_delay': self.check_delay}) + '\\n')
        self.out.write('init\\n')
    def handle_recv(self, data):
        if data[0].endswith('.updated'):
            self.out.write('updated\\n')
            raise RuntimeError('handler failure on purpose')
    def handle_reload(self):
        self.out.write('reload\\n')
    def handle_stop(self):
        self.out.write('stop\\n')
        self.out.close()

class BrokenInit(CircusPlugin):
    def handle_init(self):
        raise OSError('disk on fire')
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "h4proj").mkdir(parents=True)
    (root / "h4proj" / "__init__.py").write_text("")
    (root / "h4proj" / "plugins.py").write_text(textwrap.dedent(MODULE))
    return root


@pytest.fixture
def daemon(circusd: Callable[..., CircusdProcess]) -> CircusdProcess:
    return circusd("[watcher:w]\ncmd = sleep 120\n", check_delay=1)


def runner(*args: str, project: Path | None = None, **kwargs: object) -> list[str]:
    return [sys.executable, "-m", "circus.plugins.runner", *args]


def env_for(project: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(project))


def run(*args: str, project: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = env_for(project) if project else None
    return subprocess.run(runner(*args), capture_output=True, text=True, timeout=WAIT,
                          env=env, check=False)


class Running:
    """A runner subprocess ended by pid in teardown, whatever happens."""

    def __init__(self, args: list[str], project: Path, log: Path) -> None:
        self.log = log
        self._out = open(log, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(runner(*args), env=env_for(project), stdout=self._out,
                                     stderr=subprocess.STDOUT)

    def signal(self, signum: int) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(WAIT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)
        self._out.close()

    def text(self) -> str:
        return self.log.read_text()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[object]:
    started: list[Running] = []

    def start(args: list[str], project: Path) -> Running:
        proc = Running(args, project, tmp_path / f"runner{len(started)}.log")
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def provoke_until(daemon: CircusdProcess, done: object, what: str) -> None:
    """Publish ``updated`` events until ``done()`` (the plugin may still be connecting)."""
    deadline = time.monotonic() + WAIT
    while not done():  # type: ignore[operator]
        daemon.call("set", name="w", options={"graceful_timeout": 30})
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_version_usage_and_argument_errors() -> None:
    version = run("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("circus-plugin ")
    usage = run()
    assert usage.returncode == 0
    assert "usage: circus-plugin" in usage.stdout
    ssh = run("--ssh", "me@host:22", "h4proj.plugins.Logger")
    assert ssh.returncode == 2
    assert "not supported" in ssh.stderr
    bad_extra = run("h4proj.plugins.Logger", "novalue")
    assert bad_extra.returncode == 2
    assert "expected key=value" in bad_extra.stderr
    bad_format = run("--log-format", "xml", "h4proj.plugins.Logger")
    assert bad_format.returncode == 2


def test_list_shows_installed_plugins() -> None:
    listing = run("--list")
    assert listing.returncode == 0, listing.stderr
    header, *rows = listing.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "DISTRIBUTION", "VERSION", "CLASS"]
    names = {row.split()[0]: row for row in rows}
    assert "circus-plugin-logger" in names["logger"]
    assert run("list").stdout == listing.stdout


def test_unknown_plugin_is_one_clear_line(project: Path) -> None:
    result = run("loger", project=project)
    assert result.returncode == 1
    assert "did you mean 'logger'?" in result.stderr
    assert "installed plugins:" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    missing = run("h4proj.nothing.Here", project=project)
    assert missing.returncode == 1
    assert "no module named 'h4proj.nothing'" in missing.stderr


def test_missing_constructor_option_is_one_clear_line(project: Path) -> None:
    result = run("--endpoint", "ipc:///nonexistent/c", "--pubsub", "ipc:///nonexistent/p",
                 "h4proj.plugins.Logger", project=project)
    assert result.returncode == 1
    assert "filename" in result.stderr
    assert "Traceback" not in result.stderr


def test_misspelt_command_line_option_is_warned(tmp_path: Path) -> None:
    result = run("--endpoint", f"ipc://{tmp_path}/nobody.sock", "--pubsub",
                 f"ipc://{tmp_path}/nobody-pub.sock", "--connect-timeout", "0.5",
                 "--config", "prefixx:a", "-o", "hots=x", "statsd", "sampel_rate=0.5",
                 "host=127.0.0.1")
    assert result.returncode == 1  # nobody answers: the warnings come before that
    warned = [line.split("[WARNING] ", 1)[1] for line in result.stdout.splitlines()
              if "[WARNING]" in line]
    note = "(not an option the plugin declares; passed to it anyway)"
    assert warned == [f"hots: unknown option; did you mean 'host'? {note}",
                      f"sampel_rate: unknown option; did you mean 'sample_rate'? {note}"]


def test_nothing_answering_at_the_endpoint_is_reported_within_the_timeout(
    project: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = run("--endpoint", f"ipc://{tmp_path}/nobody.sock", "--pubsub",
                 f"ipc://{tmp_path}/nobody-pub.sock", "--connect-timeout", "0.5",
                 "h4proj.plugins.Logger", f"filename={tmp_path / 'x.log'}", project=project)
    assert result.returncode == 1
    assert f"no circusd answered at ipc://{tmp_path}/nobody.sock within 0.5 s" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert time.monotonic() - started < WAIT


def test_seed_logger_by_dotted_path_and_sigterm_runs_handle_stop(
    daemon: CircusdProcess, project: Path, tmp_path: Path, spawn: object
) -> None:
    events = tmp_path / "events.txt"
    proc = spawn(["--endpoint", daemon.endpoint, "--pubsub", daemon.pubsub_endpoint,  # type: ignore[operator]
                  "h4proj.plugins.Logger", f"filename={events}"], project)
    # handle_init creates the file, after the SUB socket connected; the subscription itself
    # settles asynchronously, so publish a few spawns spread over a second
    wait_until(events.exists, "handle_init to open the file")
    for _ in range(4):
        daemon.call("incr", name="w", waiting=True)
        time.sleep(0.25)
    # the seed Logger never flushes: its lines reach the file only if handle_stop closes it
    assert proc.signal(signal.SIGTERM) == 0
    text = events.read_text()
    assert "watcher.w.spawn::" in text
    spawn_payload = text.split("watcher.w.spawn::", 2)[-1].split("}")[0] + "}"
    assert json.loads(spawn_payload)["process_pid"] in daemon.call("list", name="w")["pids"]
    log = proc.text()
    for line in ("Loading the plugin...", f"Endpoint: '{daemon.endpoint}'",
                 f"Pub/sub: '{daemon.pubsub_endpoint}'", "Starting", "Stopping"):
        assert line in log
    assert log.index("Starting") < log.index("Stopping")


def test_sigint_config_extras_reload_and_a_failing_handler(
    daemon: CircusdProcess, project: Path, tmp_path: Path, spawn: object
) -> None:
    out = tmp_path / "report.txt"
    log = tmp_path / "plugin.log"
    proc = spawn([  # type: ignore[operator]
        "--endpoint", daemon.endpoint, "--pubsub", daemon.pubsub_endpoint,
        "--check-delay", "1.5", "--config", f"out:{out}:::note:two words, 'quoted':::x:1",
        "--log-output", str(log), "--log-format", "json",
        "h4proj.plugins.Reporter", "x=2", "-o", "y=3",
    ], project)
    wait_until(lambda: out.exists() and "init" in out.read_text(), "handle_init")
    first = json.loads(out.read_text().splitlines()[0])
    assert first["check_delay"] == 1.5
    assert first["config"] == {"out": str(out), "note": "two words, 'quoted'", "x": "2", "y": "3"}
    # handle_recv raises on every `updated`: the plugin keeps receiving events
    provoke_until(daemon, lambda: out.read_text().count("updated") >= 2, "two updated events")
    proc.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload" in out.read_text(), "handle_reload")
    assert proc.signal(signal.SIGINT) == 0
    assert out.read_text().splitlines()[-1] == "stop"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    failures = [r for r in records if r["event"] == "handle_recv failed"]
    assert failures
    assert "handler failure on purpose" in failures[0]["exception"]
    assert any(r["event"] == "Stopping" for r in records)


def test_handle_init_failure_exits_1(daemon: CircusdProcess, project: Path) -> None:
    result = run("--endpoint", daemon.endpoint, "--pubsub", daemon.pubsub_endpoint,
                 "h4proj.plugins.BrokenInit", project=project)
    assert result.returncode == 1
    assert "disk on fire" in result.stdout + result.stderr


def test_inactive_plugin_idles_until_stopped(
    daemon: CircusdProcess, project: Path, tmp_path: Path, spawn: object
) -> None:
    out = tmp_path / "never.txt"
    proc = spawn(["--endpoint", daemon.endpoint, "--pubsub", daemon.pubsub_endpoint,  # type: ignore[operator]
                  "h4proj.plugins.Reporter", f"out={out}", "active=false"], project)
    wait_until(lambda: "not active" in proc.text(), "the idle message")
    assert proc.proc.poll() is None
    assert proc.signal(signal.SIGTERM) == 0
    assert not out.exists()
