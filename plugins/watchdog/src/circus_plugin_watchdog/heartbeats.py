"""The watchdog's rule, free of sockets and clocks: who is monitored, who is overdue.

A process is monitored from its ``spawn`` (or from discovery at start) until its ``reap``.
Each heartbeat moves its deadline to ``receipt time + limit``; a process past its deadline is
*overdue* and leaves the table, so it is killed exactly once (the original deleted from the
table while iterating it and so killed at most one process per check: contract B5).

The plugin asks :meth:`HeartbeatTable.next_deadline` when to look again, so a silent process
is killed when its limit expires, not at the next ``loop_rate`` tick as in the original.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass
class Monitored:
    """One monitored process: its watcher (as in event topics) and its deadline."""

    watcher: str
    deadline: float


class HeartbeatTable:
    """Monitored pids and their deadlines; ``now`` values come from one monotonic clock."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._pids: dict[int, Monitored] = {}

    def __len__(self) -> int:
        return len(self._pids)

    def __contains__(self, pid: object) -> bool:
        return pid in self._pids

    def track(self, pid: int, watcher: str, now: float) -> None:
        """Start monitoring ``pid``: it has ``limit`` seconds to send its first heartbeat."""
        self._pids[pid] = Monitored(watcher, now + self.limit)

    def forget(self, pid: int) -> Monitored | None:
        return self._pids.pop(pid, None)

    def forget_watcher(self, watcher: str) -> list[int]:
        """Stop monitoring every process of ``watcher`` (it was stopped or removed)."""
        gone = [pid for pid, entry in self._pids.items() if entry.watcher == watcher]
        for pid in gone:
            del self._pids[pid]
        return gone

    def beat(self, pid: int, now: float) -> bool:
        """Record a heartbeat; False when ``pid`` is not monitored."""
        entry = self._pids.get(pid)
        if entry is None:
            return False
        entry.deadline = now + self.limit
        return True

    def overdue(self, now: float) -> list[tuple[int, Monitored]]:
        """Remove and return every process past its deadline (all of them, in pid order)."""
        late = sorted((pid, entry) for pid, entry in self._pids.items() if entry.deadline <= now)
        for pid, _ in late:
            del self._pids[pid]
        return late

    def next_deadline(self) -> float | None:
        """The earliest deadline, or None when nothing is monitored."""
        return min((entry.deadline for entry in self._pids.values()), default=None)


def heartbeat_pid(pattern: re.Pattern[str], data: bytes) -> int:
    """The pid a heartbeat datagram names; ``ValueError`` says why a datagram is unusable.

    The original raised inside its UDP handler on any datagram that did not match (B5);
    here the caller logs the reason and carries on.
    """
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    found = pattern.match(text)
    if found is None:
        raise ValueError(f"does not match msg_regex {pattern.pattern!r}")
    pid = (found.group("pid") or "").strip()
    if not pid.isdigit():
        raise ValueError(f"pid {pid!r} is not a number")
    return int(pid)


class Throttle:
    """Decides which of many repeated warnings to log: the 1st, 2nd, 4th, 8th... of each kind.

    A sender flooding bad datagrams must not flood the log, but must not go unnoticed either:
    the logged line carries the running count.
    """

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def hit(self, kind: str) -> int | None:
        """Count one occurrence; the count when it should be logged, else None."""
        count = self._counts.get(kind, 0) + 1
        self._counts[kind] = count
        return count if count & (count - 1) == 0 else None
