"""Every benchmark script under ``bench/`` still runs: ``--quick`` (tiny counts) in CI.

The figures of a quick run mean nothing and are not written anywhere; what is checked is that
the script works end to end against the real daemons (ours and the original 0.19), so a change
elsewhere cannot leave a benchmark broken until someone next measures. A script without
``--quick`` fails here: every bench script must offer it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if "__main__" in p.read_text())


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_bench_script_quick_run(script: Path, original_circus: object) -> None:
    assert "--quick" in script.read_text(), f"{script.name} has no --quick mode"
    result = subprocess.run([sys.executable, str(script), "--quick"], cwd=BENCH.parent,
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
