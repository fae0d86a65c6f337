"""A second circusd on a live ipc:// control endpoint must fail instead of taking it over.

libzmq's ipc bind unlinks an existing socket file, so without a check the second daemon would
silently steal the control channel of the first one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from circus.testing import CircusdProcess


def test_second_daemon_on_a_live_endpoint_fails_and_the_first_keeps_answering(
    tmp_path: Path,
) -> None:
    with CircusdProcess("[watcher:w]\ncmd = sleep 600\n", tmp_path / "first") as first:
        second_dir = tmp_path / "second"
        second_dir.mkdir()
        config = second_dir / "circus.ini"
        config.write_text(
            f"[circus]\nendpoint = {first.endpoint}\n"
            f"pubsub_endpoint = ipc://{second_dir}/events.sock\n\n"
            "[watcher:other]\ncmd = sleep 600\n"
        )
        result = subprocess.run(
            [sys.executable, "-m", "circus.circusd", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 1, result
        assert "Address already in use" in result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert first.call("status")["statuses"] == {"w": "active"}


def test_a_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    with CircusdProcess("[watcher:w]\ncmd = sleep 600\n", tmp_path) as daemon:
        endpoint = daemon.endpoint
    # the first daemon is gone; its socket file may remain: a new one must bind anyway
    stale = Path(endpoint[len("ipc://") :])
    stale.touch()
    with CircusdProcess("[watcher:w]\ncmd = sleep 600\n", tmp_path) as again:
        assert again.endpoint == endpoint
        assert again.call("status")["status"] == "ok"
