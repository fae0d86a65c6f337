"""End to end: a real circusd supervising real children (respawn, counts, stop, quit, events)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from support import pid_state, wait_dead, wait_gone

from circus.testing import CircusdProcess, EventCollector


def _watcher(name: str, cmd: str, **options: object) -> str:
    lines = [f"[watcher:{name}]", f"cmd = {cmd}"]
    lines += [f"{key} = {value}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def _topic(name: str, action: str) -> str:
    return f"watcher.{name}.{action}"


def _fd_targets(pid: int) -> list[str]:
    targets = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return targets


#: both ways of noticing exits: pidfds, and the SIGCHLD fallback forced on (circus.child_exits)
EXIT_PATHS = pytest.mark.parametrize(
    "exit_env", [{}, {"CIRCUS_NO_PIDFD": "1"}], ids=["pidfd", "sigchld"]
)


@EXIT_PATHS
def test_respawn_after_kill9_publishes_reap_then_spawn(
    tmp_path: Path, exit_env: dict[str, str]
) -> None:
    config = _watcher("sleeper", "sleep 120", numprocesses=2, min_uptime=0)  # no backoff
    env = {**os.environ, **exit_env}
    with (
        CircusdProcess(config, tmp_path, env=env) as daemon,
        EventCollector(daemon.pubsub_endpoint) as ev,
    ):
        ev.wait_ready(daemon, "sleeper")
        pids = daemon.call("list", name="sleeper")["pids"]
        assert len(pids) == 2
        assert ("anon_inode:[pidfd]" in _fd_targets(daemon.pid)) == (not exit_env)  # path taken
        victim = pids[0]
        mark = len(ev.events)
        killed_at = time.time()
        os.kill(victim, signal.SIGKILL)
        _, reap = ev.wait_for(lambda t, p: t == _topic("sleeper", "reap"), start=mark)
        _, spawn = ev.wait_for(lambda t, p: t == _topic("sleeper", "spawn"), start=mark)
        assert reap["process_pid"] == victim
        assert reap["exit_code"] == -9
        assert reap["expected"] is False
        # noticed when it happened, not at the next check_delay tick (5 s by default)
        assert reap["time"] - killed_at < 1.0
        assert spawn["seq"] == reap["seq"] + 1
        assert list(reap) == ["process_pid", "time", "exit_code", "expected", "boot", "seq"]
        assert list(spawn) == ["process_pid", "time", "boot", "seq"]
        new_pids = daemon.call("list", name="sleeper")["pids"]
        assert len(new_pids) == 2
        assert victim not in new_pids
        assert spawn["process_pid"] in new_pids
        # the dead child was reaped: no zombie
        assert wait_gone(victim)


@EXIT_PATHS
def test_numprocesses_incr_decr_and_no_zombie(tmp_path: Path, exit_env: dict[str, str]) -> None:
    config = _watcher("w", "sleep 120", numprocesses=3, graceful_timeout=5)
    env = {**os.environ, **exit_env}
    with (
        CircusdProcess(config, tmp_path, env=env) as daemon,
        EventCollector(daemon.pubsub_endpoint) as ev,
    ):
        ev.wait_ready(daemon, "w")
        pids = daemon.call("list", name="w")["pids"]
        assert len(pids) == 3
        assert {p.pid for p in daemon.children()} == set(pids)
        reply = daemon.call("incr", name="w", nb=2, waiting=True)
        assert reply["numprocesses"] == 5
        assert len(daemon.call("list", name="w")["pids"]) == 5
        mark = len(ev.events)
        reply = daemon.call("decr", name="w", nb=3, waiting=True)
        assert reply["numprocesses"] == 2
        left = daemon.call("list", name="w")["pids"]
        assert left == daemon.call("list", name="w")["pids"]
        assert len(left) == 2
        # surplus processes are the oldest ones and, unlike 0.19 (E1), they are reaped
        reaps = ev.wait_count(
            lambda t, p: t == _topic("w", "reap") and p["seq"] > ev.events[mark - 1][1]["seq"], 3
        )
        assert all(p["expected"] is True for _, p in reaps)
        gone = [p["process_pid"] for _, p in reaps]
        assert set(gone) <= set(pids)
        for pid in gone:
            assert wait_gone(pid), f"{pid} left as {pid_state(pid)}"
        daemon.call("stop", name="w", waiting=True)
        for pid in left:
            assert wait_gone(pid), f"{pid} left as {pid_state(pid)}"


def test_graceful_stop_escalates_and_kills_grandchildren(tmp_path: Path) -> None:
    script = tmp_path / "stubborn.sh"
    script.write_text(
        textwrap.dedent(
            """\
            trap '' TERM
            sleep 300 &
            echo $! > "$1"
            while true; do sleep 0.2; done
            """
        )
    )
    child_file = tmp_path / "child.pid"
    config = _watcher(
        "stubborn", f"sh {script} {child_file}", graceful_timeout=1, stop_signal="TERM"
    )
    with CircusdProcess(config, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        ev.wait_ready(daemon, "stubborn")
        (parent,) = daemon.call("list", name="stubborn")["pids"]
        deadline = time.monotonic() + 20
        while not child_file.exists() or not child_file.read_text().strip():
            assert time.monotonic() < deadline, "the stubborn script never started its child"
            time.sleep(0.05)
        grandchild = int(child_file.read_text())
        mark = len(ev.events)
        started = time.monotonic()
        daemon.call("stop", name="stubborn", waiting=True)
        elapsed = time.monotonic() - started
        assert elapsed >= 0.9  # it waited graceful_timeout before SIGKILL
        kills = [p["process_pid"] for t, p in ev.events[mark:] if t.endswith(".kill")]
        ev.wait_for(lambda t, p: t == _topic("stubborn", "stop"), start=mark)
        kills = [p["process_pid"] for t, p in ev.events[mark:] if t.endswith(".kill")]
        assert kills[0] == parent
        assert kills.count(parent) == 2  # stop signal, then SIGKILL
        assert grandchild in kills
        _, reap = ev.wait_for(lambda t, p: t == _topic("stubborn", "reap"), start=mark)
        assert reap["exit_code"] == -9
        assert reap["expected"] is True
        _, stop = ev.wait_for(lambda t, p: t == _topic("stubborn", "stop"), start=mark)
        assert stop["expected"] is True
        assert wait_gone(parent)
        assert wait_dead(grandchild), "the child of the stopped process survived (E9)"


def test_quit_stops_all_children_and_exits_zero(tmp_path: Path) -> None:
    config = _watcher("a", "sleep 120", numprocesses=2) + _watcher("b", "sleep 120", priority=3)
    daemon = CircusdProcess(config, tmp_path).start()
    try:
        with EventCollector(daemon.pubsub_endpoint) as ev:
            ev.wait_ready(daemon, "a")
            children = [p.pid for p in daemon.children()]
            assert len(children) == 3
            daemon.call("quit")
            assert daemon.popen is not None
            assert daemon.popen.wait(30) == 0
            ev.wait_count(lambda t, p: t.endswith(".stop"), 2)
            seqs = [p["seq"] for _, p in ev.events]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            reaps = [p for t, p in ev.events if t.endswith(".reap")]
            assert len(reaps) == 3
            assert all(p["exit_code"] == -15 and p["expected"] for p in reaps)
        for pid in children:
            assert wait_gone(pid)
    finally:
        daemon.stop()


def test_sigterm_to_circusd_is_a_graceful_quit(tmp_path: Path) -> None:
    daemon = CircusdProcess(_watcher("a", "sleep 120"), tmp_path).start()
    try:
        children = [p.pid for p in daemon.children()]
        assert children
        os.kill(daemon.pid, signal.SIGTERM)
        assert daemon.popen is not None
        assert daemon.popen.wait(30) == 0
        for pid in children:
            assert wait_gone(pid)
    finally:
        daemon.stop()


def test_events_sequence_without_gaps_across_actions(tmp_path: Path) -> None:
    config = _watcher("w", "sleep 120", numprocesses=2)
    with CircusdProcess(config, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        ev.wait_ready(daemon, "w")
        mark = len(ev.events)
        daemon.call("restart", name="w", waiting=True)
        ev.wait_for(lambda t, p: t == _topic("w", "start"), start=mark)
        actions = [t.rsplit(".", 1)[1] for t, _ in ev.events[mark:]]
        assert actions == ["kill", "kill", "reap", "reap", "stop", "spawn", "spawn", "start"]
        seqs = [p["seq"] for _, p in ev.events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        payloads = [p for _, p in ev.events[mark:]]
        # 0.19's fields first, then the additive ones (``by``: events caused by a command)
        assert list(payloads[0])[:4] == ["process_pid", "time", "boot", "seq"]
        assert list(payloads[4])[:4] == ["time", "expected", "boot", "seq"]
        assert list(payloads[-1])[:3] == ["time", "boot", "seq"]
        extra = [set(p) - {"process_pid", "time", "expected", "boot", "seq"} for p in payloads]
        assert all(fields <= {"by", "exit_code"} for fields in extra), extra


def test_bad_config_exits_1_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ini"
    bad.write_text("[watcher:w]\ncmd = sleep 1\nnumprocesses = many\n")
    result = subprocess.run(
        [sys.executable, "-m", "circus.circusd", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "numprocesses" in lines[0]
    assert str(bad) in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("missing", ["nowhere.ini"])
def test_missing_config_exits_1(tmp_path: Path, missing: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "circus.circusd", str(tmp_path / missing)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_no_zombie_after_crash_loop(tmp_path: Path) -> None:
    # min_uptime = 0: a fast crash loop (no backoff) is what could leave zombies
    config = _watcher("crash", "sh -c 'exit 3'", numprocesses=2, min_uptime=0)
    with CircusdProcess(config, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        ev.wait_count(lambda t, p: t == _topic("crash", "reap") and p["exit_code"] == 3, 20)
        daemon.call("stop", name="crash", waiting=True)
        ev.wait_for(lambda t, p: t == _topic("crash", "stop"))
        zombies = [p for p in psutil.Process(daemon.pid).children() if p.status() == "zombie"]
        assert zombies == []


def test_stop_signal_is_used_to_stop(tmp_path: Path) -> None:
    config = _watcher("w", "sleep 120", numprocesses=2, stop_signal="INT")
    with CircusdProcess(config, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        ev.wait_ready(daemon, "w")
        mark = len(ev.events)
        daemon.call("stop", name="w", waiting=True)
        ev.wait_for(lambda t, p: t == _topic("w", "stop"), start=mark)
        reaps = [p for t, p in ev.events[mark:] if t == _topic("w", "reap")]
        assert [p["exit_code"] for p in reaps] == [-2, -2]


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_uid_gid_rlimits_env_and_working_dir(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    workdir.chmod(0o777)
    out = tmp_path / "out.log"
    config = (
        "[env:w]\nGREETING = hello\n\n"
        + _watcher(
            "w",
            "sh -c 'id -un; ulimit -n; pwd; echo \"$GREETING\" $(circus.wid); exec sleep 120'",
            uid="nobody",
            rlimit_nofile=77,
            working_dir=str(workdir),
        )
        + f"stdout_stream.class = FileStream\nstdout_stream.filename = {out}\n"
    )
    with CircusdProcess(config, tmp_path) as daemon:
        (pid,) = daemon.call("list", name="w")["pids"]
        deadline = time.monotonic() + 20
        while not out.exists() or out.read_text().count("\n") < 4:
            assert time.monotonic() < deadline, daemon.log_text()
            time.sleep(0.05)
        lines = out.read_text().splitlines()
        assert lines[0] == "nobody"
        assert lines[1] == "77"
        assert lines[2] == str(workdir)
        assert lines[3] == "hello 1"
        assert psutil.Process(pid).username() == "nobody"
