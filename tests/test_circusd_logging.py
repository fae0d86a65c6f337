"""circusd's 0.19 log settings end to end: ``loggerconfig`` / ``--logger-config`` files, a missing
one a clear error (``syslog://`` output: core/tests/test_log_outputs.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from circus.testing import CircusdProcess


def test_circusd_uses_a_json_logger_config(tmp_path: Path) -> None:
    out = tmp_path / "dict.log"
    logging_config = tmp_path / "logging.json"
    logging_config.write_text(json.dumps({
        "version": 1,
        "formatters": {"f": {"format": "%(process)d|%(levelname)s|%(message)s"}},
        "handlers": {"h": {"class": "logging.FileHandler", "filename": str(out),
                           "formatter": "f"}},
        "root": {"level": "INFO", "handlers": ["h"]},
    }))
    config = f"[circus]\nloggerconfig = {logging_config}\n[watcher:w]\ncmd = sleep 60\n"
    with CircusdProcess(config, tmp_path) as daemon:
        assert daemon.call("status")["statuses"] == {"w": "active"}
        started = [line for line in out.read_text().splitlines() if "circusd started" in line]
        assert started == [f"{daemon.pid}|INFO|circusd started pid={daemon.pid} "
                           f"pubsub='{daemon.pubsub_endpoint}' watchers=1"]
        assert "circusd started" not in daemon.log_text()  # the file replaced circusd's output


def test_missing_logger_config_is_one_line(tmp_path: Path) -> None:
    ini = tmp_path / "c.ini"
    ini.write_text("[watcher:w]\ncmd = sleep 1\n")
    missing = tmp_path / "nope.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "circus.circusd", "--logger-config", str(missing), str(ini)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"circusd: logger config {str(missing)!r}: no such file"
    ]
