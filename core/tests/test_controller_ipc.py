"""ipc socket files are owner-only whatever the umask (issue 9, item 3).

Measured on main before the fix: ``srwxr-xr-x`` under umask 022 and ``srwxrwxrwx`` under 000,
i.e. any local user could connect and run any command as circusd's user.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from circus.testing import CircusdProcess, wait_until


def test_control_and_event_sockets_are_0600_under_umask_000(tmp_path: Path) -> None:
    previous = os.umask(0)  # circusd inherits it
    try:
        daemon = CircusdProcess("[watcher:w]\ncmd = sleep 600\n", tmp_path).start()
    finally:
        os.umask(previous)
    try:
        for endpoint in (daemon.endpoint, daemon.pubsub_endpoint):
            mode = stat.S_IMODE(os.stat(endpoint[len("ipc://") :]).st_mode)
            assert mode == 0o600, f"{endpoint}: {oct(mode)}"
        assert daemon.call("numwatchers")["numwatchers"] == 1
    finally:
        daemon.stop()


def test_stats_stream_ipc_socket_is_owner_only_too(tmp_path: Path) -> None:
    stats = tmp_path / "stats.sock"
    config = f"[circus]\nstats_endpoint = ipc://{stats}\n\n[watcher:w]\ncmd = sleep 600\n"
    previous = os.umask(0)
    try:
        daemon = CircusdProcess(config, tmp_path).start()
    finally:
        os.umask(previous)
    try:
        wait_until(stats.exists, "the stats socket file")
        assert stat.S_IMODE(os.stat(stats).st_mode) == 0o600
    finally:
        daemon.stop()
