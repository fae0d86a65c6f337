"""The stats of our circusd read by the ORIGINAL Circus 0.19 tools: circus-top (in tmux, as a
person would run it) and circusctl's rendering of ``stats`` and ``dstats``."""

from __future__ import annotations

from pathlib import Path

from original_circus import OriginalCircus, run_original_circusctl
from tmux_session import TmuxSession

from circus.testing import CircusdProcess

TOP_CODE = "import sys; sys.argv[0] = 'circus-top'; from circus.stats.client import main; main()"


def test_original_circus_top_shows_our_watchers(
    original_circus: OriginalCircus, tmp_path: Path, stats_endpoint: str,
    tmux: type[TmuxSession],
) -> None:
    config = (
        f"[circus]\nstatsd = true\nstats_endpoint = {stats_endpoint}\n\n"
        "[watcher:web]\ncmd = sleep 120\nnumprocesses = 2\n\n"
        "[watcher:worker]\ncmd = sleep 121\n"
    )
    with CircusdProcess(config, tmp_path) as daemon:
        web = daemon.call("list", name="web")["pids"]
        (worker,) = daemon.call("list", name="worker")["pids"]
        command = f"{original_circus.python} -c \"{TOP_CODE}\" --endpoint {stats_endpoint}"
        with tmux(command, width=120, height=40) as top:
            screen = top.wait_screen(
                "Circus Top", "web", "worker", *map(str, web), str(worker),
                f"{daemon.pid} (circusd)", "(avg)", "(sum)",
            )  # fmt: skip
    lines = screen.splitlines()
    assert any(line.startswith("web") for line in lines)
    assert any(line.startswith("worker") for line in lines)
    assert any(line.startswith("circus") for line in lines)
    assert "CPU (%)" in screen
    assert "MEMORY (%)" in screen


def test_original_circusctl_renders_our_stats_and_dstats(
    original_circus: OriginalCircus, tmp_path: Path
) -> None:
    config = "[watcher:web]\ncmd = sleep 120\nnumprocesses = 2\n"
    with CircusdProcess(config, tmp_path) as daemon:
        pids = sorted(daemon.call("list", name="web")["pids"])
        every = run_original_circusctl(original_circus, daemon.endpoint, "stats")
        one = run_original_circusctl(original_circus, daemon.endpoint, "stats", "web")
        single = run_original_circusctl(
            original_circus, daemon.endpoint, "stats", "web", str(pids[0])
        )
        dstats = run_original_circusctl(original_circus, daemon.endpoint, "dstats")
    for done in (every, one, single, dstats):
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    assert every.stdout.splitlines()[0] == "web:"
    assert sorted(int(line.split(":")[0]) for line in one.stdout.splitlines()[1:]) == pids
    assert all("sleep" in line for line in one.stdout.splitlines()[1:])
    assert single.stdout.split()[:2] == [f"{pids[0]}:", str(pids[0])]
    assert dstats.stdout.splitlines()[0] == "Main Process:"
    assert str(daemon.pid) in dstats.stdout
