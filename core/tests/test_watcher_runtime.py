"""circus.watcher in-process: real children, events recorded as the publisher would send them."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from support import kill_tree, wait_dead, wait_gone

from circus.config import WatcherConfig
from circus.events import REQUESTER, requested_by
from circus.stats import Sampler
from circus.watcher import SpawnFailed, Watcher

TIMEOUT = 20.0


class Recorder:
    """Stands where the EventPublisher is: keeps (action, payload) with a seq, like publish."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.changed = asyncio.Event()
        self.watchers: list[Watcher] = []

    def __call__(self, name: str, action: str, payload: dict[str, Any]) -> int:
        self.events.append((action, {**payload, "seq": len(self.events) + 1}))
        self.changed.set()
        return len(self.events)

    def actions(self, start: int = 0) -> list[str]:
        return [a for a, _ in self.events[start:]]

    async def wait(self, predicate: Callable[[list[str]], bool], start: int = 0) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not predicate(self.actions(start)):
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"events so far: {self.events[start:]}")
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                continue


def make(rec: Recorder, **options: Any) -> Watcher:
    options.setdefault("cmd", "sleep 120")
    options.setdefault("graceful_timeout", 5.0)
    watcher = Watcher(WatcherConfig(name="w", **options), rec)
    rec.watchers.append(watcher)
    return watcher


def run(factory: Callable[[Recorder], Awaitable[None]]) -> None:
    async def main() -> None:
        rec = Recorder()
        try:
            await asyncio.wait_for(factory(rec), 60)
        finally:  # a failed test must not leave children behind
            for watcher in rec.watchers:
                for proc in watcher.processes.all():
                    kill_tree(proc.pid)
                watcher.close()

    asyncio.run(main())


def test_start_stop_events_and_expected_flags() -> None:
    async def body(rec: Recorder) -> None:
        w = make(rec, numprocesses=2)
        result = await w.start()
        assert w.state == "active"
        assert len(result["started"]) == 2
        assert result["kept"] == []
        assert rec.actions() == ["spawn", "spawn", "start"]
        pids = w.pids()
        await w.stop()
        assert w.state == "stopped"
        assert rec.actions(3) == ["kill", "kill", "reap", "reap", "stop"]
        reaps = [p for a, p in rec.events if a == "reap"]
        assert all(p["exit_code"] == -15 and p["expected"] is True for p in reaps)
        assert rec.events[-1][1]["expected"] is True
        for pid in pids:
            assert wait_gone(pid)

    run(body)


def test_crash_is_reaped_and_respawned_at_once() -> None:
    async def body(rec: Recorder) -> None:
        w = make(rec, min_uptime=0.0)  # any exit counts as healthy: no backoff
        await w.start()
        (pid,) = w.pids()
        mark = len(rec.events)
        os.kill(pid, signal.SIGKILL)
        await rec.wait(lambda a: a == ["reap", "spawn"], mark)
        assert rec.events[mark][1]["expected"] is False
        assert rec.events[mark][1]["exit_code"] == -9
        assert w.pids() == [rec.events[mark + 1][1]["process_pid"]]
        await w.stop()

    run(body)


def test_respawn_false_stops_the_watcher_when_the_last_process_dies() -> None:
    async def body(rec: Recorder) -> None:
        w = make(rec, respawn=False)
        await w.start()
        os.kill(w.pids()[0], signal.SIGTERM)
        await rec.wait(lambda a: a[-1:] == ["stop"])
        assert rec.actions() == ["spawn", "start", "reap", "stop"]
        assert rec.events[-1][1]["expected"] is False
        assert w.state == "stopped"

    run(body)


def test_max_retry_gives_up_and_minus_one_keeps_trying_without_freezing() -> None:
    async def body(rec: Recorder) -> None:
        w = make(rec, cmd="/nonexistent/prog", max_retry=2, backoff_start=0.05)
        with pytest.raises(SpawnFailed, match=r"started 0 of 1 .*\(ENOENT\); next try in"):
            await w.start()
        assert w.state == "backoff"
        await rec.wait(lambda a: a[-1:] == ["stop"])
        # three failed spawns (max_retry + 1), each followed by a backoff until the last
        assert rec.actions() == ["start", "backoff", "backoff", "stop"]
        assert rec.events[-1][1]["expected"] is False
        assert w.state == "stopped"
        forever = make(rec, cmd="/nonexistent/prog", max_retry=-1, backoff_start=0.01)
        with pytest.raises(SpawnFailed):
            await forever.start()
        mark = len(rec.events)
        await rec.wait(lambda a: a.count("backoff") >= 4, mark)
        delays = [p["delay"] for a, p in rec.events[mark:] if a == "backoff"]
        assert delays[:4] == [0.02, 0.04, 0.08, 0.16]  # the loop stays responsive meanwhile
        assert forever.state == "backoff"
        await forever.stop()
        assert forever.state == "stopped"
        assert rec.actions()[-1] == "stop"

    run(body)


def test_incr_decr_retire_oldest_with_reap_events() -> None:
    async def body(rec: Recorder) -> None:
        w = make(rec, numprocesses=2)
        await w.start()
        first = w.pids()
        assert await w.incr(2) == 4
        assert len(w.pids()) == 4
        mark = len(rec.events)
        assert await w.decr(3) == 1
        assert w.pids() == [pid for pid in w.pids() if pid not in first]
        assert len(w.pids()) == 1
        reaped = [p["process_pid"] for a, p in rec.events[mark:] if a == "reap"]
        assert len(reaped) == 3
        assert set(first) <= set(reaped)
        assert all(p["expected"] for a, p in rec.events[mark:] if a == "reap")
        assert await w.decr(5) == 0
        assert w.pids() == []
        await w.stop()

    run(body)


def test_singleton_ignores_incr() -> None:
    async def body(rec: Recorder) -> None:
        w = make(rec, singleton=True)
        await w.start()
        assert await w.incr(3) == 1
        assert len(w.pids()) == 1
        await w.stop()

    run(body)


def test_reload_variants() -> None:
    async def body(rec: Recorder) -> None:
        w = make(rec, numprocesses=2)
        await w.start()
        old = w.pids()
        mark = len(rec.events)
        info = await w.reload()
        assert info["stopped"] == old
        assert len(info["started"]) == 2
        acts = rec.actions(mark)
        assert acts[:2] == ["spawn", "spawn"]
        assert acts[-1] == "reload"
        assert sorted(acts[2:-1]) == ["kill", "kill", "reap", "reap"]
        assert set(w.pids()) == set(info["started"])

        mark = len(rec.events)
        info = await w.reload(sequential=True)
        acts = rec.actions(mark)
        assert acts == ["kill", "reap", "spawn", "kill", "reap", "spawn", "reload"]

        mark = len(rec.events)
        info = await w.reload(graceful=False)
        assert rec.actions(mark)[-1] == "start"
        assert "reload" not in rec.actions(mark)
        await w.stop()
        mark = len(rec.events)
        await w.reload()
        assert rec.actions(mark) == ["spawn", "spawn", "start", "reload"]
        await w.stop()

    run(body)


def test_reload_with_send_hup_signals_processes(tmp_path: Path) -> None:
    marker = tmp_path / "hup"
    ready = tmp_path / "ready"

    async def body(rec: Recorder) -> None:
        script = f"trap 'echo hup >> {marker}' HUP; touch {ready}; while true; do sleep 0.1; done"
        w = make(rec, cmd="sh", args=["-c", script], send_hup=True)
        await w.start()
        pids = w.pids()
        deadline = time.monotonic() + TIMEOUT
        while not ready.exists():  # the trap is installed
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        mark = len(rec.events)
        await w.reload()
        assert rec.actions(mark) == ["reload"]
        deadline = time.monotonic() + TIMEOUT
        while not marker.exists():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert w.pids() == pids
        await w.stop()

    run(body)


def test_apply_options_updates_then_manages_or_reloads() -> None:
    async def body(rec: Recorder) -> None:
        w = make(rec, numprocesses=1)
        await w.start()
        mark = len(rec.events)
        await w.apply_options({"graceful_timeout": 3.0, "numprocesses": 2})
        assert rec.actions(mark) == ["updated", "updated", "spawn"]
        assert w.get_option("graceful_timeout") == 3.0
        mark = len(rec.events)
        await w.apply_options({"cmd": "sleep 121"})
        acts = rec.actions(mark)
        assert acts[0] == "updated"
        assert acts[-1] == "reload"
        assert acts.count("spawn") == 2
        await w.stop()

    run(body)


def test_options_shape_and_extras() -> None:
    async def body(rec: Recorder) -> None:
        w = make(rec, extra={"flapping.max_retry": "7", "__name__": "watcher:w"})
        opts = w.options()
        assert list(opts) == sorted(opts)
        assert opts["flapping.max_retry"] == "7"
        assert "__name__" not in opts
        assert opts["stop_signal"] == 15
        assert opts["graceful_timeout"] == 5.0
        assert opts["executable"] is None
        with pytest.raises(KeyError):
            w.get_option("nope")

    run(body)


def test_kill_and_signal_commands_count_as_expected() -> None:
    async def body(rec: Recorder) -> None:
        w = make(rec)
        await w.start()
        (pid,) = w.pids()
        mark = len(rec.events)
        # Not SIGINT: a shell starting a background job (pytest ... &) makes its children
        # ignore SIGINT and SIGQUIT, and the child inherited that, so the kill waited for the
        # graceful timeout and escalated ("kill, kill, reap"). SIGUSR2 is never ignored that way.
        await w.kill(signum=signal.SIGUSR2)
        await rec.wait(lambda a: a[-1:] == ["spawn"], mark)
        assert rec.actions(mark) == ["kill", "reap", "spawn"]
        assert rec.events[mark + 1][1] | {"time": 0} == {
            "process_pid": pid, "time": 0, "exit_code": -signal.SIGUSR2, "expected": True,
            "seq": rec.events[mark + 1][1]["seq"],
        }  # fmt: skip
        mark = len(rec.events)
        w.send_signal(signal.SIGUSR1)
        await rec.wait(lambda a: a == ["reap", "spawn"], mark)
        assert rec.events[mark][1]["expected"] is True
        with pytest.raises(Exception, match="childpid without pid"):
            w.send_signal(signal.SIGTERM, childpid=1)
        await w.stop()

    run(body)


def test_kill_escalates_to_sigkill_after_graceful_timeout(tmp_path: Path) -> None:
    ready = tmp_path / "ready"

    async def body(rec: Recorder) -> None:
        script = f"trap '' TERM; touch {ready}; while true; do sleep 0.1; done"
        # the final stop meets the respawned (as stubborn) process: 1 s, not make's 5 s
        w = make(rec, cmd="sh", args=["-c", script], graceful_timeout=1.0)
        await w.start()
        (pid,) = w.pids()
        deadline = time.monotonic() + TIMEOUT
        while not ready.exists():  # SIGTERM is ignored from now on
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        started = time.monotonic()
        await w.kill(graceful_timeout=0.5)
        assert time.monotonic() - started >= 0.45
        kills = [p["process_pid"] for a, p in rec.events if a == "kill"]
        assert kills[:2] == [pid, pid]
        reap = next(p for a, p in rec.events if a == "reap")
        assert reap["exit_code"] == -9
        await w.stop()

    run(body)


async def exec_done(pid: int, program: bytes, timeout: float = 20.0) -> None:
    """Until ``pid`` runs ``program`` (its ``argv[0]``), bounded."""
    deadline = time.monotonic() + timeout
    while True:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if f.read().split(b"\0", 1)[0] == program:
                return
        assert time.monotonic() < deadline, f"{pid} never ran {program!r}"
        await asyncio.sleep(0.01)


def test_stats_fields() -> None:
    async def body(rec: Recorder) -> None:
        w = make(rec)
        await w.start()
        (pid,) = w.pids()
        # spawned means forked: while the child execs, /proc/<pid>/cmdline is empty (the
        # kernel has no argument area yet) and the sampler rightly says "N/A". Sample once
        # the exec is over.
        await exec_done(pid, b"sleep")
        sampler = Sampler()
        try:
            sample = await sampler.sample(w.pids())
        finally:
            sampler.close()
        stats = w.stats(sample)
        info = stats[str(pid)]
        for key in ("pid", "wid", "started", "age", "create_time", "cpu", "mem", "mem_info1",
                    "mem_info2", "ctime", "username", "nice", "cmdline", "children"):  # fmt: skip
            assert key in info
        assert info["cmdline"] == "sleep"
        assert info["wid"] == 1
        assert w.stats(sample, pid)["pid"] == pid
        with pytest.raises(Exception, match="process 1 not found in 'w'"):
            w.stats(sample, 1)
        await w.stop()

    run(body)


def test_warmup_delay_and_stdout_stream(tmp_path: Path) -> None:
    out = tmp_path / "out.log"

    async def body(rec: Recorder) -> None:
        w = make(
            rec,
            cmd="sh",
            args=["-c", "echo worker $WORKER; sleep 120"],
            env={"WORKER": "$(circus.wid)"},
            numprocesses=2,
            warmup_delay=0.3,
            stdout_stream={"class": "FileStream", "filename": str(out)},
        )
        await w.start()
        spawns = [p["time"] for a, p in rec.events if a == "spawn"]
        assert spawns[1] - spawns[0] >= 0.25
        deadline = time.monotonic() + TIMEOUT
        while out.read_bytes().count(b"\n") < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await w.stop()
        w.close_streams()

    run(body)


def test_plugin_watcher_crash_backoff_grows() -> None:
    async def body(rec: Recorder) -> None:
        w = make(rec, cmd="sh", args=["-c", "exit 1"], singleton=True, is_plugin=True)
        await w.start()
        await rec.wait(lambda a: a.count("spawn") >= 5)
        spawns = [p["time"] for a, p in rec.events if a == "spawn"]
        gaps = [b - a for a, b in itertools.pairwise(spawns)]
        assert gaps[1] >= 0.15  # 0.1, 0.2, 0.4...: not a tight loop
        assert gaps[3] >= gaps[1]
        # a plugin in a crash loop does not look active: it is held back between tries
        assert rec.actions().count("backoff") >= 4
        await w.stop()

    run(body)


def test_max_age_replaces_old_processes_at_the_housekeeping_pass() -> None:
    async def body(rec: Recorder) -> None:
        w = make(rec, max_age=1, max_age_variance=0)
        await w.start()
        (old,) = w.pids()
        mark = len(rec.events)
        deadline = time.monotonic() + TIMEOUT
        while "reap" not in rec.actions(mark):
            assert time.monotonic() < deadline
            await w.tick()  # what the arbiter runs every check_delay
            await asyncio.sleep(0.1)
        await rec.wait(lambda a: "reap" in a, mark)
        acts = rec.actions(mark)
        assert acts[:2] == ["spawn", "kill"]  # the replacement first, then the old one goes
        reap = next(p for a, p in rec.events[mark:] if a == "reap")
        assert reap["process_pid"] == old
        assert reap["expected"] is True
        assert len(w.pids()) == 1
        assert w.pids() != [old]
        await w.stop()

    run(body)


def test_stop_children_signals_the_whole_tree(tmp_path: Path) -> None:
    ready = tmp_path / "child"

    async def body(rec: Recorder) -> None:
        script = f"sleep 300 & echo $! > {ready}; wait"
        w = make(rec, cmd="sh", args=["-c", script], stop_children=True)
        await w.start()
        (parent,) = w.pids()
        deadline = time.monotonic() + TIMEOUT
        while not ready.exists() or not ready.read_text().strip():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        child = int(ready.read_text())
        await w.stop()
        kills = [p["process_pid"] for a, p in rec.events if a == "kill"]
        assert kills[0] == parent
        assert child in kills
        assert wait_dead(child)

    run(body)


def test_a_start_queued_behind_a_stop_does_not_cancel_its_request() -> None:
    """start (spawning), then stop and start queued: the running start yields to the stop.
    Before, the queued start cleared the stop's request before it got the lock, so the first
    start spawned every process only for the stop to kill them."""

    async def body(rec: Recorder) -> None:
        w = make(rec, numprocesses=20, warmup_delay=0.05)
        first = asyncio.ensure_future(w.start())
        await rec.wait(lambda a: "spawn" in a)
        stop = asyncio.ensure_future(w.stop())
        again = asyncio.ensure_future(w.start())
        await asyncio.gather(first, stop, again)
        actions = rec.actions()
        assert actions[: actions.index("kill")].count("spawn") < 20
        assert w.state == "active"
        assert len(w.pids()) == 20
        await w.stop()

    run(body)


async def child_written_by(folder: Path, pid: int) -> int:
    """The pid of the ``sleep`` that shell ``pid`` started and wrote down (see SHELL_WITH_CHILD)."""
    path = folder / f"child.{pid}"
    deadline = time.monotonic() + TIMEOUT
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"no child written by {pid}"
        await asyncio.sleep(0.02)
    return int(path.read_text())


#: a shell that starts a ``sleep``, writes its pid into ``child.<shell pid>``, and waits for it
SHELL_WITH_CHILD = "sleep 300 & echo $! > {folder}/child.$$; wait"


def test_signal_reaches_one_child_or_every_child(tmp_path: Path) -> None:
    """``signal`` with ``childpid`` reaches that child only; with ``children`` every child of
    every process (their shells then end and are replaced)."""

    async def body(rec: Recorder) -> None:
        script = SHELL_WITH_CHILD.format(folder=tmp_path)
        w = make(rec, cmd="sh", args=["-c", script], numprocesses=2)
        await w.start()
        first, second = w.pids()
        child1 = await child_written_by(tmp_path, first)
        child2 = await child_written_by(tmp_path, second)
        w.send_signal(signal.SIGTERM, pid=first, childpid=child2)  # not first's child
        w.send_signal(signal.SIGTERM, pid=first, childpid=child1)
        assert wait_dead(child1)
        assert psutil.pid_exists(child2)
        assert psutil.Process(child2).status() != psutil.STATUS_ZOMBIE
        w.send_signal(signal.SIGTERM, children=True)
        assert wait_dead(child2)

    run(body)


def test_signal_recursive_reaches_every_process_and_descendant(tmp_path: Path) -> None:
    async def body(rec: Recorder) -> None:
        script = SHELL_WITH_CHILD.format(folder=tmp_path)
        w = make(rec, cmd="sh", args=["-c", script], numprocesses=2)
        await w.start()
        shells = w.pids()
        kids = [await child_written_by(tmp_path, pid) for pid in shells]
        mark = len(rec.events)
        w.send_signal(signal.SIGUSR2, recursive=True)
        for kid in kids:
            assert wait_dead(kid)
        await rec.wait(lambda a: a.count("reap") == 2, mark)
        assert sorted(p["process_pid"] for a, p in rec.events[mark:] if a == "reap") == sorted(
            shells
        )

    run(body)


def test_setting_a_stream_reloads_so_output_reaches_it(tmp_path: Path) -> None:
    out = tmp_path / "late.log"

    async def body(rec: Recorder) -> None:
        w = make(rec, cmd="sh", args=["-c", "while true; do echo tick; sleep 0.1; done"])
        await w.start()
        mark = len(rec.events)
        await w.apply_options({"stdout_stream": {"class": "FileStream", "filename": str(out)}})
        assert rec.actions(mark)[0] == "updated"
        assert rec.actions(mark)[-1] == "reload"
        deadline = time.monotonic() + TIMEOUT
        while not out.exists() or b"tick" not in out.read_bytes():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await w.stop()
        w.close_streams()

    run(body)


def test_crash_loop_backs_off_then_gives_up_and_start_tries_again() -> None:
    async def body(rec: Recorder) -> None:
        w = make(rec, cmd="sh", args=["-c", "exit 1"], backoff_start=0.05, give_up_after=4)
        await w.start()
        await rec.wait(lambda a: "fatal" in a)
        assert w.state == "fatal"
        acts = rec.actions()
        assert acts[:2] == ["spawn", "start"]
        assert acts.count("backoff") == 3
        assert acts[-2:] == ["reap", "fatal"]
        backoffs = [p for a, p in rec.events if a == "backoff"]
        assert [p["delay"] for p in backoffs] == [0.05, 0.1, 0.2]
        assert all(p["retry_at"] > p["time"] and "min_uptime" in p["reason"] for p in backoffs)
        gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(
            [p for a, p in rec.events if a == "spawn"])]  # fmt: skip
        assert gaps[1] >= 0.09  # the second retry waited its 0.1 s
        fatal = rec.events[-1][1]
        assert fatal["failures"] == 4
        assert w.pids() == []
        mark = len(rec.events)
        await w.start()  # a fresh start: the count starts over
        assert rec.actions(mark)[:2] == ["spawn", "start"]
        await rec.wait(lambda a: "backoff" in a, mark)
        await w.stop()
        assert w.state == "stopped"
        assert rec.actions()[-1] == "stop"

    run(body)


def test_a_process_that_ran_normally_is_respawned_at_once() -> None:
    async def body(rec: Recorder) -> None:
        w = make(rec, min_uptime=0.3, backoff_start=5.0)
        await w.start()
        (pid,) = w.pids()
        await asyncio.sleep(0.4)  # past min_uptime
        mark = len(rec.events)
        os.kill(pid, signal.SIGKILL)
        await rec.wait(lambda a: a == ["reap", "spawn"], mark)
        (young,) = w.pids()
        mark = len(rec.events)
        os.kill(young, signal.SIGKILL)  # died young: held back 5 s
        await rec.wait(lambda a: a == ["reap", "backoff"], mark)
        assert w.state == "backoff"
        assert w.pids() == []
        await w.stop()  # stop while backing off: no late respawn
        assert w.state == "stopped"
        await asyncio.sleep(0.1)
        assert rec.actions(mark)[-1] == "stop"
        assert "spawn" not in rec.actions(mark)

    run(body)


class ByRecorder(Recorder):
    """Adds ``by`` as the EventPublisher does: whoever the events.REQUESTER says asked."""

    def __call__(self, name: str, action: str, payload: dict[str, Any]) -> int:
        by = REQUESTER.get()
        return super().__call__(name, action, {**payload, **({"by": by} if by else {})})

    def spawns(self, start: int = 0) -> list[tuple[int, str | None]]:
        return [(p["process_pid"], p.get("by")) for a, p in self.events[start:] if a == "spawn"]


def run_by(factory: Callable[[ByRecorder], Awaitable[None]]) -> None:
    async def main() -> None:
        rec = ByRecorder()
        try:
            await asyncio.wait_for(factory(rec), 60)
        finally:
            for watcher in rec.watchers:
                for proc in watcher.processes.all():
                    kill_tree(proc.pid)
                watcher.close()

    asyncio.run(main())


def test_a_crash_during_an_operation_is_respawned_on_the_daemons_account() -> None:
    # A crash while a plugin's start holds the lock is replaced when the start ends; that
    # respawn is the daemon's doing, not the plugin's (it ran in the start's context)
    async def body(rec: ByRecorder) -> None:
        w = make(rec, numprocesses=2, warmup_delay=1.5, min_uptime=0.0)
        with requested_by("plugin:autoscale"):
            start = asyncio.ensure_future(w.start())
        await rec.wait(lambda a: a.count("spawn") == 1)
        (first,) = w.pids()
        os.kill(first, signal.SIGKILL)  # during the warmup pause: the lock is held
        await rec.wait(lambda a: "reap" in a)
        assert not start.done()
        await start
        await rec.wait(lambda a: a.count("spawn") == 3)
        spawns = rec.spawns()
        assert [by for _, by in spawns[:2]] == ["plugin:autoscale"] * 2  # what it asked for
        assert spawns[2] == (spawns[2][0], None)  # the crash's replacement
        reap = next(p for a, p in rec.events if a == "reap")
        assert "by" not in reap
        await w.stop()

    run_by(body)


def test_an_incr_replacing_a_crashed_process_spawns_that_one_on_the_daemons_account() -> None:
    # incr's reconciliation also replaces what crashed while it waited for the lock: only the
    # processes the request added carry its "by"
    async def body(rec: ByRecorder) -> None:
        w = make(rec, numprocesses=2, min_uptime=0.0)
        await w.start()
        victim = w.pids()[0]
        async with w.lock:  # another operation holds the watcher
            mark = len(rec.events)
            os.kill(victim, signal.SIGKILL)
            await rec.wait(lambda a: "reap" in a, mark)
            with requested_by("plugin:autoscale"):
                incr = asyncio.ensure_future(w.incr(1))
            await asyncio.sleep(0)
        assert await incr == 3
        await rec.wait(lambda a: a.count("spawn") == 2, mark)
        assert sorted(by or "" for _, by in rec.spawns(mark)) == ["", "plugin:autoscale"]
        assert len(w.pids()) == 3
        # decr: what crashed is replaced on the daemon's account (3 -> 2 with 2 left: one)
        mark = len(rec.events)
        async with w.lock:
            for pid in w.pids()[:2]:
                os.kill(pid, signal.SIGKILL)
            await rec.wait(lambda a: a.count("reap") == 2, mark)
            with requested_by("circusctl"):
                decr = asyncio.ensure_future(w.decr(1))
            await asyncio.sleep(0)
        assert await decr == 2
        await rec.wait(lambda a: a.count("spawn") == 1, mark)
        assert [by for _, by in rec.spawns(mark)] == [None]
        assert len(w.pids()) == 2
        await w.stop()

    run_by(body)
