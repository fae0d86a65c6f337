"""Process states read from ``/proc``, and teardown by pid, for this repository's tests.

circusd's promise is that nothing is left behind: every child reaped (not even a zombie), every
descendant ended. The tests check it at the level of the kernel's process table, which is
Linux-specific and stricter than what a plugin's tests need (those use ``circus.testing``, whose
``CircusdProcess`` already kills and reports what circusd leaks).
"""

from __future__ import annotations

import contextlib
import time

import psutil

#: how often the waits below look again: a reap is usually a millisecond or two away
_POLL = 0.01


def pid_state(pid: int) -> str | None:
    """The state letter of ``/proc/<pid>/stat`` (``Z`` for a zombie), None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            data = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name in parentheses may itself hold ")" or spaces: split after the last one
    return data.rsplit(")", 1)[1].split()[0]


def wait_gone(pid: int, timeout: float = 20.0) -> bool:
    """Wait until ``pid`` no longer exists (a zombie still exists: its parent has not reaped
    it); True when it is gone, False at the timeout."""
    deadline = time.monotonic() + timeout
    while pid_state(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL)
    return True


def wait_dead(pid: int, timeout: float = 20.0) -> bool:
    """Wait until ``pid`` is gone or a zombie: for processes that are not circusd's children
    (grandchildren re-parented to init), whose reaping is not circusd's job."""
    deadline = time.monotonic() + timeout
    while pid_state(pid) not in (None, "Z", "X"):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL)
    return True


def kill_tree(pid: int) -> list[int]:
    """SIGKILL ``pid`` and all its descendants (test teardown); returns the pids reached.

    Descendants are collected first, so none escapes by being re-parented.
    """
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
    reached = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
            reached.append(proc.pid)
    return reached
