"""A trip wire for memory that grows faster than circusd ever legitimately grows.

Why: libzmq delivers a multipart message to the application only once its last frame has
arrived and counts only complete messages against its high-water marks, so a peer speaking ZMTP
by hand can stream frames with the MORE flag that libzmq buffers without limit inside circusd
(issue 9 measured +1 GB in 10 s). No socket option bounds that and the controller never sees
those frames. What circusd can see is its own resident memory: :class:`GrowthTrip` samples it
and trips when it has grown by more than ``limit`` bytes within ``window`` seconds, which a
process supervisor never does by itself (the largest request it accepts is bounded by the 32 MiB
frame cap). The controller then closes and re-binds its socket, which makes libzmq free every
connection's buffers (clients reconnect by themselves), and :func:`trim` hands the freed memory
back to the system.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import time
from collections import deque

from circus.stats.proc import memory

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int | None:
    """This process's resident set size, or ``None`` where /proc is not available (read as
    the stats read every process's, :func:`circus.stats.proc.memory`)."""
    found = memory("self", _PAGE)
    return None if found is None else found[0]


def trim() -> None:
    """Return freed heap memory to the system (glibc ``malloc_trim``; no-op elsewhere)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).malloc_trim(0)


class GrowthTrip:
    """Trips when RSS grew by more than ``limit`` bytes over the last ``window`` seconds."""

    def __init__(self, limit: int = 128 << 20, window: float = 2.0) -> None:
        self.limit = limit
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def check(self, rss: int | None = None, now: float | None = None) -> int | None:
        """Record a sample; the growth in bytes when it exceeds the limit, else ``None``."""
        rss = rss_bytes() if rss is None else rss
        if rss is None:
            return None
        now = time.monotonic() if now is None else now
        samples = self._samples
        samples.append((now, rss))
        while samples and samples[0][0] < now - self.window:
            samples.popleft()
        growth = rss - min(value for _, value in samples)
        return growth if growth > self.limit else None

    def reset(self) -> None:
        """Forget the history (after the memory was released)."""
        self._samples.clear()


__all__ = ["GrowthTrip", "rss_bytes", "trim"]
