"""Our circus-top, used as a person would: in tmux against a real circusd, keys sent, the screen
read. What it shows is checked against the daemon (pids from ``list``, a real crash's restart).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from original_circus import OriginalDaemon
from support.curve import curve_as_admin
from tmux_session import TmuxSession

from circus.clientopts import client_keys
from circus.curve import (
    PUBLIC_KEY_ENV,
    SECRET_KEY_ENV,
    SERVER_KEY_ENV,
    ClientKeys,
)
from circus.testing import CircusdProcess
from circus.top.feeds import Feeds
from circus.top.model import TopModel

HOG = "import time; hold = bytearray(60_000_000); time.sleep(1000)"
TOP = f"{sys.executable} -m circus.top.cli"


def data_rows(screen: str) -> list[list[str]]:
    """The table's rows (header, title and help lines left out), split on blanks."""
    lines = screen.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("WATCHER")) + 1
    return [line.split() for line in lines[start:]
            if line.strip() and not line.startswith(("sort c/", "filter:"))]


def pids(daemon: CircusdProcess, name: str) -> list[int]:
    return list(daemon.call("list", name=name)["pids"])


def test_circus_top_shows_sorts_filters_and_follows_changes(
    tmp_path: Path, stats_endpoint: str, tmux: type[TmuxSession]
) -> None:
    config = (
        f"[circus]\nstatsd = true\nstats_endpoint = {stats_endpoint}\n\n"
        "[watcher:web]\ncmd = sleep 1000\nnumprocesses = 2\n\n"
        f"[watcher:hog]\ncmd = {sys.executable} -c \"{HOG}\"\n\n"
        "[watcher:idle]\ncmd = sleep 1000\nautostart = false\n"
    )
    with CircusdProcess(config, tmp_path) as daemon:
        web = pids(daemon, "web")
        (hog,) = pids(daemon, "hog")
        with tmux(f"{TOP} --control {daemon.endpoint}", width=80, height=30) as top:
            screen = top.wait_screen("3 watchers, 3 processes", *map(str, web), str(hog),
                                     "circusd", "stopped")
            rows = data_rows(screen)
            by_pid = {row[2]: row for row in rows if row[2] != "-"}
            assert by_pid[str(hog)][:4] == ["hog", "1", str(hog), "active"]
            assert {by_pid[str(p)][1] for p in web} == {"1", "2"}
            assert next(r for r in rows if r[0] == "idle")[:4] == ["idle", "-", "-", "stopped"]

            top.send("m")  # by memory, largest first: the 60 MB hog leads
            screen = top.wait_screen("MEM%v")
            assert data_rows(screen)[0][0] == "hog"
            top.send("n")  # by name, a to z
            names = [row[0] for row in data_rows(top.wait_screen("WATCHER^"))]
            assert names == sorted(names)

            top.send("/", "web")  # filters as you type
            screen = top.wait_screen("filter: 'web'", absent=("hog ",))
            assert {row[0] for row in data_rows(screen)} == {"web"}
            top.send("Enter")
            top.wait_screen("sort c/")  # the help line is back
            top.send("Escape")
            top.wait_screen("hog", absent=("filter: 'web'",))

            os.kill(web[0], signal.SIGKILL)  # a crash: the new pid shows with one restart
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(set(pids(daemon, "web")) - {web[0]}) < 2:
                time.sleep(0.05)
            (new,) = set(pids(daemon, "web")) - set(web)
            screen = top.wait_screen(str(new), absent=(f" {web[0]} ",))
            assert next(r for r in data_rows(screen) if r[2] == str(new))[-1] == "1"

            daemon.call("stop", name="web", waiting=True)
            screen = top.wait_screen("1 processes", absent=(str(new),))
            web_rows = [r for r in data_rows(screen) if r[0] == "web"]
            assert [r[:4] for r in web_rows] == [["web", "-", "-", "stopped"]]

            top.send("q")
            assert top.program_ended(), "q did not end circus-top"


def test_circus_top_without_a_stats_stream_uses_the_snapshots(
    tmp_path: Path, tmux: type[TmuxSession]
) -> None:
    config = f"[watcher:hog]\ncmd = {sys.executable} -c \"{HOG}\"\n"  # statsd = false
    with CircusdProcess(config, tmp_path) as daemon:
        (hog,) = pids(daemon, "hog")
        with tmux(f"{TOP} --control {daemon.endpoint}", width=80, height=20) as top:
            # the 60 MB buffer shows in RSS once the snapshots' figures arrive
            screen = top.wait_screen(str(hog), "M ")
            row = next(r for r in data_rows(screen) if r[2] == str(hog))
            assert row[:4] == ["hog", "1", str(hog), "active"]
            assert float(row[6].rstrip("BKMG")) > 50 or row[6].endswith("G")
            top.send("q")
            assert top.program_ended()


def test_circus_top_refuses_without_a_terminal_and_ssh() -> None:
    for args in ([], ["--ssh", "me@host"]):
        done = subprocess.run([*TOP.split(), *args], capture_output=True, text=True,
                              timeout=60, check=False, stdin=subprocess.DEVNULL)
        assert done.returncode == 2
        assert re.search(r"needs a terminal|--ssh is not supported", done.stderr)
        assert "Traceback" not in done.stderr


@pytest.mark.interop
def test_circus_top_against_the_original_daemon(
    original_circusd: Callable[..., OriginalDaemon], stats_endpoint: str,
    tmux: type[TmuxSession],
) -> None:
    """0.19 has no ``processes`` command: states come from ``status``, figures from its
    circusd-stats, and a process leaves when the stream stops mentioning it."""
    daemon = original_circusd(
        "[watcher:web]\ncmd = sleep 1000\nnumprocesses = 2\n\n"
        "[watcher:idle]\ncmd = sleep 1000\nautostart = false\n",
        circus_options={"statsd": "true", "stats_endpoint": stats_endpoint},
    )
    web = [int(p) for p in daemon.circusctl("list", "web").stdout.strip().split(",")]
    with tmux(f"{TOP} --control {daemon.endpoint}", width=110, height=30) as top:
        screen = top.wait_screen(*map(str, web), "stopped")
        rows = {row[2]: row for row in data_rows(screen)}
        assert [rows[str(pid)][0] for pid in web] == ["web", "web"]
        assert all(rows[str(pid)][3] == "active" for pid in web)
        assert next(r for r in data_rows(screen) if r[0] == "idle")[3] == "stopped"
        top.send("q")
        assert top.program_ended()


# -- CURVE: the same options as circusctl (circus.clientopts) ------------------------------------

CURVE_ENV = (SERVER_KEY_ENV, PUBLIC_KEY_ENV, SECRET_KEY_ENV)


@pytest.fixture
def curve_daemon(
    tmp_path: Path, stats_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[CircusdProcess, Path]]:
    """A circusd requiring CURVE (stats stream on), and the folder of its keys: ``server``,
    ``admin`` (authorised). The test's own client (CircusdProcess) is the admin, through the
    environment, as a plugin is; circus-top gets its keys from its options only."""
    keys = tmp_path / "keys"
    config = (
        f"[circus]\n{curve_as_admin(keys, monkeypatch)}"
        f"statsd = true\nstats_endpoint = {stats_endpoint}\n\n"
        "[watcher:web]\ncmd = sleep 1000\nnumprocesses = 2\n\n"
        "[watcher:idle]\ncmd = sleep 1000\nautostart = false\n"
    )
    with CircusdProcess(config, tmp_path) as daemon:
        yield daemon, keys


def test_top_feeds_talk_curve_to_each_channel(
    curve_daemon: tuple[CircusdProcess, Path], stats_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data layer: with the keys every feed fills the model; without, none does (the stats
    stream is a CURVE server too, as the event channel is: it names every process)."""
    daemon, keys = curve_daemon
    web = sorted(pids(daemon, "web"))
    for key in CURVE_ENV:
        monkeypatch.delenv(key)  # the feeds' sockets must get the keys from the argument
    curve = client_keys(str(keys / "server.key"), str(keys / "admin.key_secret"))

    async def fill(curve: ClientKeys | None, control: str | None, wait: float) -> TopModel:
        model = TopModel()
        feeds = Feeds(model, lambda: None, stats_endpoint=stats_endpoint,
                      control_endpoint=control, pubsub_endpoint=daemon.pubsub_endpoint,
                      curve=curve)
        feeds.start()
        deadline = time.monotonic() + wait
        try:
            while time.monotonic() < deadline:
                if sorted(r.pid for r in model.view() if r.watcher == "web" and r.pid) == web:
                    break
                await asyncio.sleep(0.05)
        finally:
            await feeds.stop()
        return model

    stats_only = asyncio.run(fill(curve, None, 30))  # rows from the stats stream alone
    assert sorted(r.pid for r in stats_only.view() if r.watcher == "web") == web
    full = asyncio.run(fill(curve, daemon.endpoint, 30))  # plus the control channel's states
    idle = [r for r in full.view() if r.watcher == "idle"]
    assert [(r.pid, r.state) for r in idle] == [(None, "stopped")]
    # without keys nothing gets through within a few stats rounds (one a second)
    blind = asyncio.run(fill(None, daemon.endpoint, 3))
    assert blind.view() == []


def test_circus_top_with_curve_options(
    tmux: type[TmuxSession], curve_daemon: tuple[CircusdProcess, Path]
) -> None:
    daemon, keys = curve_daemon
    web = pids(daemon, "web")
    clean = "env " + " ".join(f"-u {key}" for key in CURVE_ENV)  # keys from the options only
    keyed = (f"{clean} {TOP} --control {daemon.endpoint} "
             f"--curve-server-key {keys / 'server.key'} --curve-key {keys / 'admin.key_secret'}")
    with tmux(keyed, width=80, height=20) as top:
        screen = top.wait_screen("2 watchers, 2 processes", *map(str, web), "stopped")
        assert next(r for r in data_rows(screen) if r[0] == "idle")[3] == "stopped"
        top.send("q")
        assert top.program_ended()
    # the variables circusctl reads work the same
    by_env = (f"{clean} CIRCUSCTL_CURVE_SERVER_KEY={keys / 'server.key'} "
              f"CIRCUSCTL_CURVE_KEY={keys / 'admin.key_secret'} {TOP} --control {daemon.endpoint}")
    with tmux(by_env, width=80, height=20) as top:
        top.wait_screen("2 watchers, 2 processes", *map(str, web))
        top.send("q")
        assert top.program_ended()
    # a public key where the secret one belongs: a usage error, as circusctl says it
    done = subprocess.run(
        [*TOP.split(), "--curve-server-key", str(keys / "server.key"),
         "--curve-key", str(keys / "admin.key")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2
    assert "give the .key_secret file" in done.stderr
    assert "Traceback" not in done.stderr
