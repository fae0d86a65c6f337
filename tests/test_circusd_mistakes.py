"""User mistakes are reported, not ignored (issue 10 item 4): --daemon bind failures, the
daemon's real pid in its logs, unknown keys (warned, refused under --strict), a bogus
circusctl endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from support import kill_tree, wait_gone

from circus.circusd import _report_startup
from circus.testing import CircusdProcess, wait_until
from circus.transports import CommandClient

CIRCUSD = [sys.executable, "-m", "circus.circusd"]
CIRCUSCTL = [sys.executable, "-m", "circus.circusctl"]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)


def processes_running(config: Path) -> list[int]:
    """Live processes whose command line names ``config`` (a circusd left behind)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if str(config) in (proc.info["cmdline"] or []):
            found.append(proc.pid)
    return found


def test_daemon_reports_a_bind_failure_before_detaching(tmp_path: Path) -> None:
    with CircusdProcess("[watcher:w]\ncmd = sleep 120\n", tmp_path / "first") as first:
        ini = tmp_path / "second.ini"
        ini.write_text(
            f"[circus]\nendpoint = {first.endpoint}\npubsub_endpoint = ipc://{tmp_path}/p2.sock\n"
            "[watcher:w]\ncmd = sleep 120\n"
        )
        result = run(*CIRCUSD, "--daemon", str(ini))
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            f"circusd: cannot bind: Address already in use: another process listens on "
            f"{first.endpoint}"
        ]
        deadline = time.monotonic() + 20
        while processes_running(ini):  # the daemon half exits right after its report
            assert time.monotonic() < deadline, "the failed daemon is still running"
            time.sleep(0.05)
        assert first.call("status")["statuses"] == {"w": "active"}


def test_daemon_logs_carry_the_daemon_pid(tmp_path: Path) -> None:
    pidfile, log, sock = tmp_path / "d.pid", tmp_path / "d.log", tmp_path / "c.sock"
    ini = tmp_path / "c.ini"
    ini.write_text(
        f"[circus]\nendpoint = ipc://{sock}\npubsub_endpoint = ipc://{tmp_path}/p.sock\n"
        f"logoutput = {log}\npidfile = {pidfile}\n[watcher:w]\ncmd = sleep 120\n"
    )
    result = run(*CIRCUSD, "--daemon", str(ini))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    pid = int(pidfile.read_text())  # written before the launcher returned
    try:
        with CommandClient(f"ipc://{sock}", timeout=20) as client:
            assert client.call("status")["statuses"] == {"w": "active"}
            started = [line for line in log.read_text().splitlines() if "circusd started" in line]
            assert len(started) == 1
            assert f"[{pid}] [INFO] circusd started" in started[0]
            assert client.call("quit", waiting=True)["status"] == "ok"
        assert wait_gone(pid, 30)
    finally:
        kill_tree(pid)


def test_unknown_keys_are_logged_and_refused_under_strict(tmp_path: Path) -> None:
    config = "[watcher:w]\ncmd = sleep 120\nnumprocess = 2\n"
    with CircusdProcess(config, tmp_path) as daemon:
        assert daemon.call("status")["statuses"] == {"w": "active"}
        assert (
            f"{daemon.config_path}: [watcher:w]: numprocess: unknown option; did you mean "
            "'numprocesses'?" in daemon.log_text()
        )
    result = run(*CIRCUSD, "--strict", str(daemon.config_path))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"{daemon.config_path}: [watcher:w]: numprocess: unknown option")
    assert line.endswith("(refused under strict mode)")


def test_malformed_section_header_stops_circusd(tmp_path: Path) -> None:
    ini = tmp_path / "c.ini"
    ini.write_text("[watcher:ok]\ncmd = sleep 1\n[wacher:web]\ncmd = sleep 1\n")
    result = run(*CIRCUSD, str(ini))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"{ini}: [wacher:web]: unknown section type; did you mean [watcher:web]? (known: "
        "[circus], [env], [env:PATTERNS], [watcher:NAME], [plugin:NAME], [socket:NAME])"
    ]


def test_circusctl_bogus_endpoint_is_one_line() -> None:
    result = run(*CIRCUSCTL, "--endpoint", "bogus", "status")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "circusctl status: error: --endpoint: invalid endpoint 'bogus': expected e.g. "
        "tcp://127.0.0.1:5555 or ipc://path"
    ]
    unusable = run(*CIRCUSCTL, "--endpoint", "tcp://127.0.0.1", "status")
    assert unusable.returncode == 1
    assert len(unusable.stderr.strip().splitlines()) == 1
    assert "Traceback" not in unusable.stderr


def test_shell_exit_and_quit_leave_the_shell_stop_daemon_stops(tmp_path: Path) -> None:
    with CircusdProcess("[watcher:w]\ncmd = sleep 120\n", tmp_path / "a") as daemon:
        shell = [*CIRCUSCTL, "--endpoint", daemon.endpoint]

        def session(text: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(shell, input=text, capture_output=True, text=True,
                                  timeout=60, check=False)

        left = session("exit\nstatus\n")  # the line after exit is never run
        assert left.returncode == 0
        assert left.stdout.count("active") == 1  # the status shown on entering only
        kept = session("quit\nn\n")
        assert "Stop circusd and every process it runs as well? [y/N] " in kept.stdout
        assert "circusd keeps running (stop-daemon stops it)" in kept.stdout
        assert daemon.call("status")["statuses"] == {"w": "active"}
        assert daemon.popen is not None
        stopped = session("stop-daemon --waiting\nstatus\n")
        assert stopped.returncode == 0
        assert daemon.popen.wait(30) == 0
    with CircusdProcess("[watcher:w]\ncmd = sleep 120\n", tmp_path / "b") as daemon:
        confirmed = subprocess.run([*CIRCUSCTL, "--endpoint", daemon.endpoint],
                                   input="quit --waiting\nyes\n", capture_output=True,
                                   text=True, timeout=60, check=False)
        assert confirmed.returncode == 0
        assert daemon.popen is not None
        assert daemon.popen.wait(30) == 0


def test_start_of_an_unspawnable_command_replies_the_reason(tmp_path: Path) -> None:
    config = ("[watcher:ghost]\ncmd = ghost-command-x2\nautostart = false\n"
              "[watcher:w]\ncmd = sleep 120\n")
    with CircusdProcess(config, tmp_path) as daemon:
        ctl = [*CIRCUSCTL, "--endpoint", daemon.endpoint]
        result = run(*ctl, "start", "ghost")  # no --waiting: 0.19 answers ok
        assert result.returncode == 3
        assert result.stderr.startswith(
            "error: ghost: started 0 of 1 process(es): cannot start 'ghost-command-x2': "
            "No such file or directory"
        )
        assert run(*ctl, "stop", "w").returncode == 0
        started = run(*ctl, "start", "w")  # a spawnable one is still answered at once
        assert (started.returncode, started.stdout) == (0, "ok\n")


def test_reloadconfig_warns_and_refuses_under_strict(tmp_path: Path) -> None:
    for strict in (False, True):
        folder = tmp_path / str(strict)
        args = ["--strict"] if strict else []
        with CircusdProcess("[watcher:w]\ncmd = sleep 120\n", folder, args=args) as daemon:
            text = daemon.config_path.read_text()
            daemon.config_path.write_text(text + "respwan = false\n")
            reply = daemon.call("reloadconfig", waiting=True)
            if strict:
                assert reply["status"] == "error"
                assert "[watcher:w]: respwan: unknown option; did you mean 'respawn'?" in (
                    reply["reason"])
            else:
                assert reply["status"] == "ok"
                wait_until(lambda: "did you mean 'respawn'?" in daemon.log_text(),
                           "the warning in circusd's log", daemon=daemon)
            assert daemon.call("status")["statuses"] == {"w": "active"}


def test_daemon_launcher_wait_is_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    """A daemon that never reports (stuck before binding) does not hold the launcher forever."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"circusd: a warning first\n")
        assert _report_startup(read_end, timeout=0.2) == 1
    finally:
        os.close(read_end)
        os.close(write_end)
    assert capsys.readouterr().err == (
        "circusd: a warning first\n"
        "circusd: the daemon is not listening after 0.2 s; not waiting longer (see its log)\n"
    )
