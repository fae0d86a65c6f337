"""Plugin actions benchmark (issue 12): time from a condition to the plugin's corrective action.

For every bundled plugin that has a Circus 0.19 original, OUR plugin and the ORIGINAL one run,
one after the other with the same options, against OUR circusd (the original through the 0.19
plugin runner of ``.cache/circus-0.19``). Each *case* provokes its condition several times
(a heartbeat stops, a process exceeds its memory limit, a file changes, a health URL fails)
and reads the action from circusd's events. Reported per case and plugin: p50 / p95 of
"condition -> action", and the samples where the action was missed, repeated or aimed at a
process that did nothing wrong.

Adding a case: write a class with the attributes and methods of :class:`Case` (see
:class:`WatchdogCase`) and append an instance to ``CASES``. ``Case.measure`` gets a
:class:`Run` (our circusd's client, an event :class:`Recorder` started before the plugin,
the work directory) and returns a :class:`Result`.

Usage: ``.venv/bin/python bench/bench_plugin_actions.py [--quick] [--write] [--only a,b]
[--shard K/N]``.
``--quick`` (the CI smoke run) takes one sample per case and waits 0.2 s, not a check period,
for late or repeated actions: it proves each case runs end to end, its figures mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from harness import (
    BENCH_DIR,
    Recorder,
    fmt_ms,
    machine_line,
    median,
    original,
    percentile,
    ratio,
    table,
    wait_pids,
    write_section,
)
from original_circus import OriginalCircus

from circus.client import CircusClient
from circus.plugins.codec import encode_config
from circus.testing import CircusdProcess, free_port, terminate, wait_until

OURS, ORIGINAL = "ours", "original 0.19"
READY_TIMEOUT = 60.0


@dataclass
class Result:
    """Delays (seconds, condition -> action) and what went wrong, for one plugin."""

    delays: list[float] = field(default_factory=list)
    missed: int = 0  # condition provoked, no action within the case's timeout
    repeated: int = 0  # more than one action for one condition
    wrong: int = 0  # an action against a process (or watcher) that met no condition


@dataclass
class Run:
    """What a case gets to provoke conditions and observe actions."""

    label: str  # OURS or ORIGINAL
    daemon: CircusdProcess
    client: CircusClient
    events: Recorder
    work: Path
    quick: bool  # a --quick smoke run: shorter settling (see :meth:`settle`)

    def settle(self, seconds: float) -> None:
        """Give late or repeated actions ``seconds`` to show up before they are counted; a
        ``--quick`` run (a smoke test whose counts mean nothing) waits 0.2 s at most."""
        time.sleep(min(seconds, 0.2) if self.quick else seconds)

    def first_event(self, topic: str, start: int, timeout: float,
                    pid: int | None = None) -> float | None:
        """The daemon's ``time`` of the first ``topic`` event (about process ``pid`` when
        given) from index ``start`` of the recorded events, waiting up to ``timeout`` seconds;
        None if none came."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((p["time"] for _, t, p in self.events.events[start:]
                          if t == topic and pid in (None, p.get("process_pid"))), None)
            if found is not None or time.monotonic() > deadline:
                return found
            time.sleep(0.01)


class Case(Protocol):
    name: str  # row label
    condition: str  # "what happens → what the plugin does", for the summary table
    ours: str  # our plugin (short name)
    original: str  # the 0.19 class path
    #: text that each runner's log shows once the plugin can act (ours, original)
    ready: tuple[str, str]

    def watchers(self, work: Path) -> str:
        """INI text of the watchers (our circusd runs them; no plugin section)."""
        ...

    def options(self, work: Path) -> dict[str, str]:
        """Plugin options, the same for both plugins."""
        ...

    def prepare(self, run: Run) -> None:
        """Called after circusd started, before the plugin (e.g. start heartbeats)."""
        ...

    def measure(self, run: Run, samples: int) -> Result:
        ...

    def finish(self, run: Run) -> None:
        """Called before circusd stops (end threads, servers...)."""
        ...


def _slug(label: str) -> str:
    return label.split(maxsplit=1)[0]


# -- the plugin process ---------------------------------------------------------------------------

@contextlib.contextmanager
def plugin_process(label: str, installed: OriginalCircus, case: Case, daemon: CircusdProcess,
                   work: Path) -> Iterator[Path]:
    """Run our runner or the original one with the case's plugin; yields its log file."""
    log = work / f"plugin-{_slug(label)}-{case.name}-{time.monotonic_ns()}.log"
    config = encode_config(case.options(work))
    if label == OURS:
        argv = [sys.executable, "-m", "circus.plugins.runner", "--log-level", "debug",
                "--log-format", "text", case.ours]
    else:
        argv = [*installed.runner_command(), "--log-level", "debug", case.original]
    argv[-1:-1] = ["--endpoint", daemon.endpoint, "--pubsub", daemon.pubsub_endpoint,
                   "--check-delay", "1", "--config", config]
    stream = getattr(case, "stats_endpoint", None)
    if label == OURS and stream is not None:  # what circusd passes its plugins (statsd = true)
        argv[-1:-1] = ["--stats-endpoint", stream(work)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=work,
                                env={**os.environ, "PYTHONPATH": str(BENCH_DIR)})
    try:
        marker = case.ready[0 if label == OURS else 1]
        deadline = time.monotonic() + READY_TIMEOUT
        while marker not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{label} {case.name} never logged {marker!r}:\n"
                                   + log.read_text(errors="replace")[-3000:])
            time.sleep(0.05)
        yield log
    finally:
        terminate(proc, timeout=10.0)


def run_case(case: Case, label: str, installed: OriginalCircus, workdir: Path, *,
             samples: int, quick: bool) -> Result:
    work = workdir / f"{case.name}-{_slug(label)}"
    work.mkdir(parents=True, exist_ok=True)
    daemon = CircusdProcess(case.watchers(work), work, start_timeout=READY_TIMEOUT).start()
    try:
        with CircusClient(daemon.endpoint, 20) as client, \
                Recorder(daemon.pubsub_endpoint) as events:
            run = Run(label, daemon, client, events, work, quick)
            case.prepare(run)
            try:
                with plugin_process(label, installed, case, daemon, work):
                    return case.measure(run, samples)
            except RuntimeError as exc:
                broken = getattr(case, "original_broken", None)
                if label != ORIGINAL or broken is None:
                    raise
                # the original fails as the contract says: every condition goes unanswered
                print(f"{case.name} {label}: {broken}\n{str(exc)[-400:]}", flush=True)
                return Result(missed=samples)
            finally:
                case.finish(run)
    finally:
        daemon.stop(60.0)


# -- watchdog: a heartbeat stops ------------------------------------------------------------------

class Heartbeats:
    """Sends heartbeats for a set of pids every ``interval`` s (on behalf of the processes).

    The bench, not the processes, beats, so it knows each pid's last beat exactly: the
    condition "silent for the limit" starts at ``last beat + limit``.
    """

    def __init__(self, port: int, interval: float) -> None:
        self.port = port
        self.interval = interval
        self.beating: set[int] = set()
        self.last: dict[int, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def add(self, pid: int) -> None:
        with self._lock:
            self.beating.add(pid)

    def silence(self, pid: int) -> float:
        """Stop beating for ``pid``; returns the wall time of its last beat."""
        with self._lock:
            self.beating.discard(pid)
            return self.last.get(pid, time.time())

    def _run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            while not self._stop.wait(self.interval):
                with self._lock:
                    for pid in self.beating:
                        now = time.time()
                        sock.sendto(f"{pid};{now}".encode(), ("127.0.0.1", self.port))
                        self.last[pid] = now


class WatchdogCase:
    """Processes stop beating (one at a time, then three at once); the action is circusd's
    ``kill`` event for the pid."""

    name = "watchdog"
    ours = "watchdog"
    original = "circus.plugins.watchdog.WatchDog"
    condition = "heartbeat stops → kill"
    ready = ("monitoring ", "discovered: ")
    processes = 4
    burst = 3  # processes silenced at once in the last round
    loop_rate = 1.0
    max_count = 2

    def __init__(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.beats: Heartbeats | None = None

    @property
    def limit(self) -> float:
        return self.loop_rate * self.max_count

    def watchers(self, work: Path) -> str:
        return f"[watcher:hb]\ncmd = sleep 100000\nnumprocesses = {self.processes}\n"

    def options(self, work: Path) -> dict[str, str]:
        return {"loop_rate": f"{self.loop_rate:g}", "max_count": str(self.max_count),
                "port": str(self.port), "watchers_regex": "hb"}

    def prepare(self, run: Run) -> None:
        self.beats = Heartbeats(self.port, interval=0.1)
        for pid in wait_pids(run.client, "hb", self.processes):
            self.beats.add(pid)
        self.beats.start()

    def finish(self, run: Run) -> None:
        if self.beats is not None:
            self.beats.stop()

    def measure(self, run: Run, samples: int) -> Result:
        assert self.beats is not None
        result = Result()
        seen_spawns = len(run.events.events)
        # the original discovers processes at its first check: let it see everyone beating
        time.sleep(self.loop_rate * 1.5)
        silenced: dict[int, float] = {}  # pid -> condition time (wall clock)
        # one process at a time, then several at once (0.19 killed one per check: B5)
        for index, size in enumerate([1] * samples + [self.burst]):
            pids = sorted(self.beats.beating)[:size]
            # spread the silences over the original's check period (its phase matters)
            time.sleep(self.loop_rate * ((index * 0.37) % 1.0) + 0.05)
            for pid in pids:
                silenced[pid] = self.beats.silence(pid) + self.limit
            deadline = time.monotonic() + self.limit + (size + 1) * self.loop_rate + 5.0
            while time.monotonic() < deadline:
                for _, topic, payload in run.events.events[seen_spawns:]:
                    if topic == "watcher.hb.spawn" and payload["process_pid"] not in silenced:
                        self.beats.add(payload["process_pid"])
                seen_spawns = len(run.events.events)
                if len(self.beats.beating) >= self.processes and all(
                        self._killed(run, pid) for pid in pids):
                    break
                time.sleep(0.01)
        run.settle(self.loop_rate + 0.5)  # late or repeated kills show up here
        for pid, condition in silenced.items():
            kills = self._killed(run, pid)
            if not kills:
                result.missed += 1
                continue
            result.delays.append(kills[0] - condition)
            result.repeated += len(kills) - 1
        result.wrong = len({payload["process_pid"] for _, topic, payload in run.events.events
                            if topic == "watcher.hb.kill"} - set(silenced))
        return result

    @staticmethod
    def _killed(run: Run, pid: int) -> list[float]:
        return [payload["time"] for _, topic, payload in list(run.events.events)
                if topic == "watcher.hb.kill" and payload["process_pid"] == pid]


# -- command_reloader: the program is replaced ----------------------------------------------------

class CommandReloaderCase:
    """A deploy replaces ``app``'s program (write + rename); the action is the first ``kill``."""

    name = "command_reloader"
    ours = "command_reloader"
    original = "circus.plugins.command_reloader.CommandReloader"
    condition = "program replaced → restart"
    ready = ("notifications active", "Starting")
    loop_rate = 1.0

    def watchers(self, work: Path) -> str:
        for name in ("app", "bystander"):
            self._write(work / name, "v0")
        # 0.19 needs cmd to be exactly the program's path (B8): no arguments here
        return (f"[watcher:app]\ncmd = {work / 'app'}\n\n"
                f"[watcher:bystander]\ncmd = {work / 'bystander'}\n")

    def options(self, work: Path) -> dict[str, str]:
        return {"loop_rate": f"{self.loop_rate:g}"}

    def prepare(self, run: Run) -> None:
        wait_pids(run.client, "app", 1)

    def finish(self, run: Run) -> None:
        pass

    @staticmethod
    def _write(path: Path, version: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(f"#!/bin/sh\n# {version}\nexec sleep 100000\n")
        tmp.chmod(0o755)
        os.replace(tmp, path)

    def measure(self, run: Run, samples: int) -> Result:
        result = Result()
        # the original records the programs' mtimes at its first check, one loop_rate in
        time.sleep(self.loop_rate * 1.5)
        start = len(run.events.events)
        for index in range(samples):
            time.sleep(self.loop_rate * ((index * 0.37) % 1.0) + 0.3)
            mark = len(run.events.events)
            self._write(run.work / "app", f"v{index + 1}")
            changed = time.time()
            kill = run.first_event("watcher.app.kill", mark, 2 * self.loop_rate + 10.0)
            if kill is None:
                result.missed += 1
                continue
            result.delays.append(kill - changed)
            # back to one running process before the next change
            wait_pids(run.client, "app", 1)
        run.settle(self.loop_rate + 0.5)  # late or repeated restarts show up here
        spawns = [t for _, t, _ in run.events.events[start:] if t == "watcher.app.spawn"]
        result.repeated = max(0, len(spawns) - len(result.delays))
        result.wrong = sum(1 for _, t, _ in run.events.events[start:]
                           if t == "watcher.bystander.kill")
        return result


# -- the health-check plugins: http_observer, redis_observer -------------------------------------

class ObserverCase:
    """A health-check plugin watching a server that ``watcher`` runs on ``port``: each sample
    waits until the server answers, lets the previous restart's cooldown pass, breaks the server
    (:meth:`provoke`) and times circusd's ``kill`` of that very process. A ``bystander`` watcher
    must never be killed.

    Subclasses give the watcher's command, the plugin options, the probe (``request`` and the
    start of a good ``answer``) and how to break and afterwards release the server.
    """

    watcher: str
    request: bytes
    answer: bytes
    loop_rate = 1.0
    cooldown = 2.0

    def __init__(self) -> None:
        self.port = free_port()

    def prepare(self, run: Run) -> None:
        wait_pids(run.client, self.watcher, 1)

    def finish(self, run: Run) -> None:
        pass

    def answers(self) -> bool:
        """One probe on a fresh connection: does the server give a good answer?"""
        with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.port), timeout=1.0) as sock:
            sock.sendall(self.request)
            return sock.recv(64).startswith(self.answer)
        return False

    def provoke(self, run: Run, pid: int) -> float:
        """Break the server (process ``pid``); returns the wall time it broke."""
        raise NotImplementedError

    def release(self, run: Run, pid: int, acted: bool) -> None:
        """After the plugin acted on ``pid`` (or missed it): whatever lets the next sample start
        from a healthy server."""

    def measure(self, run: Run, samples: int) -> Result:
        result = Result()
        start = len(run.events.events)
        kill_topic = f"watcher.{self.watcher}.kill"
        for index in range(samples):
            wait_until(self.answers, f"{self.watcher} to answer")
            # past the cooldown of the previous restart, at a varying phase of the check period
            time.sleep(self.cooldown + self.loop_rate * ((index * 0.37) % 1.0))
            pid = wait_pids(run.client, self.watcher, 1)[0]
            mark = len(run.events.events)
            broke = self.provoke(run, pid)
            kill = run.first_event(kill_topic, mark, 2 * self.loop_rate + 10.0, pid=pid)
            self.release(run, pid, kill is not None)
            if kill is None:
                result.missed += 1
                continue
            result.delays.append(kill - broke)
            wait_until(lambda p=pid: p not in wait_pids(run.client, self.watcher, 1),
                       f"{self.watcher} {pid} to be replaced")
        run.settle(2 * self.loop_rate + 0.5)  # late or repeated restarts show up here
        killed = {p["process_pid"] for _, t, p in run.events.events[start:] if t == kill_topic}
        result.repeated = max(0, len(killed) - len(result.delays))
        result.wrong = sum(1 for _, t, _ in run.events.events[start:]
                           if t == "watcher.bystander.kill")
        return result


HEALTH_SERVER = BENCH_DIR.parent / "plugins" / "http_observer" / "tests" / "health_server.py"


class HttpObserverCase(ObserverCase):
    """``web``'s health URL starts answering 503; the action is circusd's ``kill`` of ``web``.

    The server (the http_observer tests' ``health_server.py``) heals when restarted, so each
    sample is one failure episode. Both plugins get 0.19's semantics: act on the first failed
    check (``max_failures = 1``), every ``loop_rate``; ours adds a 2 s cooldown after a restart.
    """

    name = "http_observer"
    ours = "http_observer"
    original = "circus.plugins.http_observer.HttpObserver"
    condition = "health URL fails → restart"
    ready = ("observing http://", "Starting")
    #: the original cannot be constructed with tornado >= 5 (contract B6)
    original_broken = "AsyncHTTPClient(io_loop=...) fails with tornado >= 5 (B6): never runs"
    watcher = "web"
    request = b"GET /health HTTP/1.0\r\n\r\n"
    answer = b"HTTP/1.0 200"

    def watchers(self, work: Path) -> str:
        return (f"[watcher:web]\ncmd = {sys.executable} {HEALTH_SERVER} {self.port} {work}\n"
                "graceful_timeout = 5\n\n[watcher:bystander]\ncmd = sleep 100000\n")

    def options(self, work: Path) -> dict[str, str]:
        return {"check_url": f"http://127.0.0.1:{self.port}/health", "timeout": "1",
                "loop_rate": f"{self.loop_rate:g}", "restart_on_error": "web",
                "cooldown": f"{self.cooldown:g}"}

    def provoke(self, run: Run, pid: int) -> float:
        (run.work / "unhealthy").write_text("status")
        return time.time()

    def release(self, run: Run, pid: int, acted: bool) -> None:
        if not acted:  # a restarted server removes the marker itself
            (run.work / "unhealthy").unlink(missing_ok=True)


# -- resource_watcher: a process goes over its memory limit ---------------------------------------

HOG = """\
import os, sys, time
trigger = os.path.join(sys.argv[1], str(os.getpid()))
while not os.path.exists(trigger):
    time.sleep(0.01)
with open(trigger + ".tmp", "w") as out:
    out.write(repr(time.time()))
os.replace(trigger + ".tmp", trigger + ".filling")
data = b"x" * (120 * 1024 * 1024)
while True:
    time.sleep(1)
"""


class ResourceWatcherCase:
    """A process allocates 120 MiB (limit 60M); the action is the watcher's first ``kill``.

    Both plugins restart the whole watcher (0.19's only action). The condition time is the
    moment the hog starts filling its memory (it writes that time to a file first): it
    crosses the limit within the few tens of ms the filling takes, which both sides pay.
    """

    name = "resource_watcher"
    ours = "resource_watcher"
    original = "circus.plugins.resource_watcher.ResourceWatcher"
    condition = "over max_mem → restart"
    ready = ("watching app every", "Starting")
    loop_rate = 5.0
    max_count = 0

    @property
    def settings_label(self) -> str:
        return f"loop_rate {self.loop_rate:g}, max_count {self.max_count}"

    def watchers(self, work: Path) -> str:
        (work / "hog.py").write_text(HOG)
        (work / "triggers").mkdir(exist_ok=True)
        return (f"[watcher:app]\ncmd = {sys.executable} {work / 'hog.py'} {work / 'triggers'}"
                "\nnumprocesses = 2\n")

    def options(self, work: Path) -> dict[str, str]:
        return {"watcher": "app", "max_mem": "60M", "max_cpu": "0", "health_threshold": "0",
                "loop_rate": f"{self.loop_rate:g}", "max_count": str(self.max_count)}

    def prepare(self, run: Run) -> None:
        wait_pids(run.client, "app", 2)

    def finish(self, run: Run) -> None:
        pass

    def measure(self, run: Run, samples: int) -> Result:
        result = Result()
        start = len(run.events.events)
        timeout = self.loop_rate * (self.max_count + 2) + 15.0
        for index in range(samples):
            time.sleep(self.loop_rate * ((index * 0.37) % 1.0) + 0.3)
            pid = wait_pids(run.client, "app", 2)[0]
            mark = len(run.events.events)
            (run.work / "triggers" / str(pid)).touch()
            filling = run.work / "triggers" / f"{pid}.filling"
            kill = run.first_event("watcher.app.kill", mark, timeout)
            if kill is None:
                result.missed += 1
                continue
            result.delays.append(kill - float(filling.read_text()))
            deadline = time.monotonic() + timeout
            while pid in run.client.call("list", name="app")["pids"] or len(
                    run.client.call("list", name="app")["pids"]) < 2:
                if time.monotonic() > deadline:
                    raise RuntimeError("app did not come back after its restart")
                time.sleep(0.05)
        run.settle(self.loop_rate + 0.5)  # late or repeated restarts show up here
        stops = sum(1 for _, t, _ in run.events.events[start:] if t == "watcher.app.stop")
        result.repeated = max(0, stops - len(result.delays))
        return result


class ResourceWatcherWindowCase(ResourceWatcherCase):
    """The same with a window: over the limit for ``loop_rate * max_count`` seconds."""

    name = "resource_watcher_window"
    loop_rate = 1.0
    max_count = 2


class ResourceWatcherStreamCase(ResourceWatcherCase):
    """The first case with circusd's stats stream on: ours reads it (one reading a second,
    judged as it arrives) instead of calling ``stats`` every 0.5 s; 0.19's plugin polls."""

    name = "resource_watcher_stream"

    @property
    def settings_label(self) -> str:
        return super().settings_label + ", ours on the stats stream"

    def stats_endpoint(self, work: Path) -> str:
        return f"ipc://{work}/stats.sock"

    def watchers(self, work: Path) -> str:
        return (f"[circus]\nstatsd = true\nstats_endpoint = {self.stats_endpoint(work)}\n\n"
                + super().watchers(work))


# -- redis_observer: Redis hangs ------------------------------------------------------------------

class RedisObserverCase(ObserverCase):
    """``redis`` (a real redis-server, a watcher) is frozen with SIGSTOP: it keeps its socket
    but answers nothing. The action is circusd's ``kill`` of it; SIGCONT then lets it die."""

    name = "redis_observer"
    ours = "redis_observer"
    original = "circus.plugins.redis_observer.RedisObserver"
    condition = "redis stops answering → kill"
    ready = ("observing redis://", "Starting")
    original_broken = ("needs the redis library, absent from the 0.19 install; with it, "
                       "timeout is passed positionally to the URL factory (B7)")
    watcher = "redis"
    request = b"PING\r\n"
    answer = b"+PONG"
    timeout = 0.5

    def watchers(self, work: Path) -> str:
        conf = work / "redis.conf"
        conf.write_text(f'port {self.port}\nbind 127.0.0.1\ndaemonize no\nsave ""\n'
                        f'appendonly no\ndir {work}\nlogfile ""\n')
        return (f"[watcher:redis]\ncmd = {shutil.which('redis-server')} {conf}\n"
                "graceful_timeout = 1\n\n[watcher:bystander]\ncmd = sleep 100000\n")

    def options(self, work: Path) -> dict[str, str]:
        return {"redis_url": f"redis://127.0.0.1:{self.port}/0",
                "loop_rate": f"{self.loop_rate:g}", "timeout": f"{self.timeout:g}",
                "restart_on_timeout": "redis", "cooldown": f"{self.cooldown:g}"}

    def provoke(self, run: Run, pid: int) -> float:
        os.kill(pid, signal.SIGSTOP)
        return time.time()

    def release(self, run: Run, pid: int, acted: bool) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)  # let the SIGTERM act (or thaw a missed one)


#: the redis_observer case needs a real redis-server (Debian package redis-server)
CASES: list[Callable[[], Case]] = [
    WatchdogCase, CommandReloaderCase, HttpObserverCase, ResourceWatcherCase,
    ResourceWatcherStreamCase, ResourceWatcherWindowCase,
    *([RedisObserverCase] if shutil.which("redis-server") else []),
]


# -- report ------------------------------------------------------------------------------------

def _cell(result: Result) -> str:
    return f"{fmt_ms(median(result.delays))} / {fmt_ms(percentile(result.delays, 95))}"


def _never(case: Case) -> str:
    """The original's cell when it never acted: with the contract's bug number if known."""
    bug = re.search(r"\((B\d+)\)", getattr(case, "original_broken", ""))
    return f"never ({bug.group(1)})" if bug else "never"


def _faults(result: Result) -> str:
    return f"{result.missed} / {result.repeated} / {result.wrong}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one sample per case (CI smoke run)")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--shard", default="0/1", metavar="K/N",
                        help="every N-th of the chosen cases from the K-th (0-based), so that "
                        "N runs side by side cover them all (the CI smoke run does)")
    args = parser.parse_args()
    factories = {factory().name: factory for factory in CASES}
    chosen = [n.strip() for n in args.only.split(",") if n.strip()] or list(factories)
    unknown = set(chosen) - set(factories)
    if unknown:
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}; "
                     f"known: {', '.join(factories)}")
    shard = re.fullmatch(r"(\d+)/(\d+)", args.shard)
    if shard is None or not int(shard[1]) < int(shard[2]):
        parser.error(f"--shard wants K/N with 0 <= K < N, not {args.shard!r}")
    if args.write and shard[2] != "1":
        parser.error("--write replaces the whole table: run every case (no --shard)")
    chosen = chosen[int(shard[1])::int(shard[2])]
    samples = 1 if args.quick else 12
    header = machine_line()
    installed = original()
    rows = []
    short: list[list[str]] = []  # the summary rows (docs/benchmarks.md, README)
    with tempfile.TemporaryDirectory(prefix="circus-bench-") as tmp:
        for name in chosen:
            results = {}
            for label in (OURS, ORIGINAL):
                results[label] = run_case(factories[name](), label, installed, Path(tmp),
                                          samples=samples, quick=args.quick)
                print(f"{name} {label}: {results[label]}", flush=True)
            ours, theirs = results[OURS], results[ORIGINAL]
            case = factories[name]()
            label = getattr(case, "settings_label", "")
            title = f"{case.ours} ({label})" if label else name
            speedup = ratio(median(theirs.delays), median(ours.delays))
            rows.append([title, _cell(ours), _cell(theirs), speedup,
                         str(len(ours.delays)), _faults(ours), _faults(theirs)])
            condition = getattr(case, "condition", "condition → action")
            short.append([f"{title}: {condition} (p50)", fmt_ms(median(ours.delays)),
                          fmt_ms(median(theirs.delays)) if theirs.delays else _never(case),
                          f"{speedup} faster" if theirs.delays else ""])
    text = (f"Measured {header}, {'--quick' if args.quick else f'{samples} samples per case'} "
            "(`bench/bench_plugin_actions.py`). Both plugins run with the same options "
            "against our circusd; the action is read from circusd's events.\n\n"
            + table(["plugin", "ours p50 / p95", "original 0.19 p50 / p95", "p50 ratio",
                     "samples", "ours missed / repeated / wrong",
                     "original missed / repeated / wrong"], rows))
    print()
    print(text)
    if args.write:
        write_section("plugin-actions", text)
        write_section("summary-plugin-actions",
                      table(["", OURS, ORIGINAL, "ratio"], short))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
