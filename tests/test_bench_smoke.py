"""Every benchmark script under ``bench/`` still runs: ``--quick`` (tiny counts) in CI.

The figures of a quick run mean nothing and are not written anywhere; what is checked is that
the script works end to end against the real daemons (ours and the original 0.19), so a change
elsewhere cannot leave a benchmark broken until someone next measures. A script's ``--quick``
run fails on functional checks only, never on a timing (this machine is shared and loaded):
bench_fuzz and bench_reload report theirs. A script without
``--quick`` fails here: every bench script must offer it.

The scripts spend most of their time waiting (check periods, load windows, the original's 5 s
tick), so they run side by side, :data:`AT_ONCE` at a time, the longest first (the longest of
all, bench_plugin_actions, in two shards): one after the other they took four minutes of the
suite. Each runs in its own temp dir on its own ``ipc://`` endpoints and free ports, and only
a quick run's figures (never checked) feel the neighbours. Each script stays one test,
reporting its own output when it fails.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if "__main__" in p.read_text())
TIMEOUT = 900.0
AT_ONCE = 4
#: the longest quick runs (measured alone), started first so the pool ends together
LONGEST_FIRST = ("bench_plugin_actions", "bench_daemon", "bench_reload", "bench_plugins",
                 "bench_stats")
#: scripts whose quick run is split into runs side by side (each then takes the arguments)
SHARDS = {"bench_plugin_actions": [["--shard", "0/2"], ["--shard", "1/2"]]}

Run = Future[subprocess.CompletedProcess[str]]


def _quick_run(script: Path, extra: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(script), "--quick", *extra], cwd=BENCH.parent,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)


@pytest.fixture(scope="module")
def quick_runs(request: pytest.FixtureRequest, original_circus: object
               ) -> Iterator[dict[str, list[Run]]]:
    """The ``--quick`` runs of every selected script (one, or one per shard), started at once
    on a bounded pool; stem -> their futures. ``subprocess.run`` ends a script that outlives
    :data:`TIMEOUT` (by pid), and the pool is joined before the module ends, so nothing is left
    running."""
    selected = {item.callspec.params["script"] for item in request.session.items
                if item.module is sys.modules[__name__] and hasattr(item, "callspec")}
    rank = {stem: index for index, stem in enumerate(LONGEST_FIRST)}
    order = sorted(selected, key=lambda p: (rank.get(p.stem, len(rank)), p.stem))
    with ThreadPoolExecutor(max_workers=AT_ONCE, thread_name_prefix="bench") as pool:
        futures = {p.stem: [pool.submit(_quick_run, p, extra)
                            for extra in SHARDS.get(p.stem, [[]])] for p in order}
        try:
            yield futures
        finally:
            for future in (f for runs in futures.values() for f in runs):
                future.cancel()


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_bench_script_quick_run(script: Path, quick_runs: dict[str, list[Run]]) -> None:
    assert "--quick" in script.read_text(), f"{script.name} has no --quick mode"
    for run in quick_runs[script.stem]:
        result = run.result(timeout=TIMEOUT * len(SCRIPTS) / AT_ONCE + 60)
        assert result.returncode == 0, (f"{result.args[2:]}:\n" + result.stdout[-2000:]
                                        + result.stderr[-4000:])
