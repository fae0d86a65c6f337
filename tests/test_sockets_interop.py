"""``listsockets`` through our circusctl and the ORIGINAL 0.19 circusctl, against our circusd and
the original one running the same ``[socket:NAME]`` sections.

The original's lines (``fd:socket 'name' at host:port`` or ``... at path``) must read the same for
our daemon as for its own, up to the fd numbers and the ephemeral port, which differ by nature.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from original_circus import OriginalCircus, OriginalDaemon, run_original_circusctl

from circus.testing import CircusdProcess

pytestmark = pytest.mark.interop

SOCKETS = """\
[socket:web]
host = 127.0.0.1
port = 0

[socket:local]
path = {path}

[watcher:idle]
cmd = sleep 300
use_sockets = true
"""


def shape(text: str) -> list[str]:
    """Lines with the fd and port numbers replaced, in order."""
    return [re.sub(r"^\d+:|:\d+$", ":N", line) for line in text.splitlines()]


def test_listsockets_in_our_circusctl_and_the_original(
    tmp_path: Path,
    original_circus: OriginalCircus,
    original_circusd: Callable[..., OriginalDaemon],
) -> None:
    theirs = original_circusd(SOCKETS.format(path=tmp_path / "theirs.sock"))
    expected = run_original_circusctl(original_circus, theirs.endpoint, "listsockets")
    assert expected.returncode == 0, expected.stderr
    assert len(expected.stdout.splitlines()) == 2, expected.stdout

    with CircusdProcess(SOCKETS.format(path=tmp_path / "ours.sock"), tmp_path / "ours") as ours:
        listed = {s["name"]: s for s in ours.call("listsockets")["sockets"]}
        old = run_original_circusctl(original_circus, ours.endpoint, "listsockets")
        new = subprocess.run(
            [sys.executable, "-m", "circus.circusctl", "--endpoint", ours.endpoint,
             "listsockets"],
            capture_output=True, text=True, timeout=60, check=False, env=dict(os.environ),
        )
    assert old.returncode == 0, old.stderr
    assert new.returncode == 0, new.stderr
    web, local = listed["web"], listed["local"]
    lines = [f"{web['fd']}:socket 'web' at 127.0.0.1:{web['port']}",
             f"{local['fd']}:socket 'local' at {tmp_path / 'ours.sock'}"]
    lines.sort(key=lambda line: int(line.split(":")[0]))
    assert old.stdout.splitlines() == lines  # the original circusctl reads our reply
    assert new.stdout.splitlines() == lines  # ours prints the same
    their_shape = shape(expected.stdout.replace(str(tmp_path / "theirs.sock"), "PATH"))
    our_shape = shape(old.stdout.replace(str(tmp_path / "ours.sock"), "PATH"))
    assert sorted(our_shape) == sorted(their_shape)
