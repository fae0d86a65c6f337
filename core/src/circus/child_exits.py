"""Noticing child exits where pidfds are missing: SIGCHLD, then a non-blocking wait per child.

Linux >= 5.3 gives every child a pidfd the event loop watches (:mod:`circus.process`). Elsewhere
(macOS, the BSDs, older kernels), or when ``CIRCUS_NO_PIDFD=1`` forces it (so CI runs both
paths on Linux), one :class:`SigchldWatcher` per event loop installs a SIGCHLD handler through
``loop.add_signal_handler`` (so the handler runs in the loop, right after the signal) and, on
each SIGCHLD, polls each *known* child with ``waitpid(pid, WNOHANG)`` (``Popen.poll``):

* the exit is noticed in the loop iteration after the signal, like a readable pidfd;
* the child is reaped at once: no zombie;
* only our own pids are waited for, never ``waitpid(-1)``, so a child of something else in the
  process (asyncio's subprocess watcher, a library) is never reaped behind its owner's back.

SIGCHLD signals coalesce, so every known child is checked on every signal: O(children) per
SIGCHLD, about 1 microsecond each, against O(1) with pidfds. A child that exited before it was
registered is caught by a check right after registration.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import weakref
from collections.abc import Callable

import structlog

log = structlog.get_logger("circus.child_exits")

#: set to 1/true/yes to use the SIGCHLD path even where pidfds work
FORCE_ENV = "CIRCUS_NO_PIDFD"

Poll = Callable[[], int | None]
Callback = Callable[[], None]

_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SigchldWatcher] = (
    weakref.WeakKeyDictionary()
)


def pidfd_forced_off() -> bool:
    return os.environ.get(FORCE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class SigchldWatcher:
    """The SIGCHLD handler of one event loop and the children it checks."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._children: dict[int, tuple[Poll, Callback]] = {}
        try:
            loop.add_signal_handler(signal.SIGCHLD, self._on_sigchld)
        except (RuntimeError, ValueError) as exc:  # not the main thread's loop
            raise OSError(
                errno.ENOSYS, f"no pidfd, and SIGCHLD cannot be handled here ({exc})"
            ) from None

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> SigchldWatcher:
        watcher = _watchers.get(loop)
        if watcher is None:
            watcher = _watchers[loop] = cls(loop)
        return watcher

    def add(self, pid: int, poll: Poll, on_exit: Callback) -> None:
        """Watch ``pid``: ``poll()`` reaps it without blocking (None while it runs), then
        ``on_exit()`` runs in the loop."""
        self._children[pid] = (poll, on_exit)
        self._loop.call_soon(self._check, pid)  # it may have exited before we listened

    def remove(self, pid: int) -> None:
        self._children.pop(pid, None)

    def _on_sigchld(self) -> None:
        for pid in list(self._children):
            self._check(pid)

    def _check(self, pid: int) -> None:
        entry = self._children.get(pid)
        if entry is None:
            return
        poll, on_exit = entry
        if poll() is None:
            return
        del self._children[pid]
        on_exit()
