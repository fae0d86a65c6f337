"""What happened to each process slot of a watcher: restarts and the last exit.

``circusctl status -l`` and ``circus-top`` show a restart count per process, as ``pm2 list``
does. Circus 0.19 keeps no such count, so this journal derives it from the watcher's own events
(fed by :meth:`circus.watcher.Watcher.notify`), which keeps the watcher code untouched.

A *slot* is a worker id (``wid``): a process that dies is replaced in the same slot, so "slot 2
was spawned 4 times" means "restarted 3 times", whatever the cause (crash, ``restart``,
``reload``, ``max_age``). Memory is bounded by the number of slots ever used, which is at most
twice ``numprocesses`` (see ``ProcessSet._next_wid`` in :mod:`circus.watcher.processes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_MAX_TRACKED_PIDS = 4096


@dataclass
class SlotRecord:
    """One worker id's history since the watcher was created."""

    spawns: int = 0
    last_exit_code: int | None = None
    last_exit_time: float | None = None
    #: exits the daemon did not cause (crashes, external kills)
    crashes: int = 0

    @property
    def restarts(self) -> int:
        return max(self.spawns - 1, 0)


class ProcessJournal:
    """Per-slot spawn and exit counts of one watcher, fed with its events."""

    def __init__(self) -> None:
        self.slots: dict[int, SlotRecord] = {}
        self._wid_of: dict[int, int] = {}

    def wid_of(self, pid: int) -> int | None:
        """The slot of a process spawned and not yet reaped."""
        return self._wid_of.get(pid)

    def observe(self, action: str, payload: dict[str, Any], wid: int | None) -> int | None:
        """Record a ``spawn`` or ``reap``; ``wid`` is the process's slot when the caller knows
        it. Returns the slot the event was recorded for (None when unknown)."""
        pid = payload.get("process_pid")
        if not isinstance(pid, int):
            return None
        if action == "spawn" and wid is not None:
            self._wid_of[pid] = wid
            self.slots.setdefault(wid, SlotRecord()).spawns += 1
        elif action == "reap":
            slot_wid = self._wid_of.pop(pid, wid)
            if slot_wid is None:
                return None
            record = self.slots.setdefault(slot_wid, SlotRecord())
            record.last_exit_code = payload.get("exit_code")
            record.last_exit_time = payload.get("time")
            if not payload.get("expected", False):
                record.crashes += 1
            wid = slot_wid
        # pids never reaped (``rm --nostop``) must not pile up: keep the newest ones only
        while len(self._wid_of) > _MAX_TRACKED_PIDS:
            del self._wid_of[next(iter(self._wid_of))]
        return wid

    @property
    def restarts(self) -> int:
        """Restarts of every slot added up: the watcher's count."""
        return sum(record.restarts for record in self.slots.values())

    def slot(self, wid: int) -> SlotRecord:
        return self.slots.get(wid) or SlotRecord()
