"""Our additions for seeing what runs: ``processes`` (``status -l``) and ``tail`` (``logs``).

Neither exists in Circus 0.19 and no 0.19 reply changes: a 0.19 client never sends them, and a
0.19 daemon answers them with ``unknown command`` (errno 2), which circusctl turns into a hint.
``processes`` awaits one round of the shared sampler (off the loop, as ``stats`` does);
``tail`` answers from memory, copying lines already held in the rings of
:mod:`circus.output_tail`.
"""

from __future__ import annotations

import time
from typing import Any

from circus.commands.api import ArbiterAPI, WatcherAPI
from circus.commands.base import (
    Command,
    Fields,
    Props,
    QuickCommand,
    Result,
    int_prop,
    number_prop,
    string_prop,
    watcher_from,
)
from circus.errors import MessageError
from circus.stats.sampler import Sample

#: most lines one ``tail`` reply carries (the rings hold at most ``output_lines`` per slot)
MAX_TAIL_LINES = 100_000
DEFAULT_TAIL_LINES = 10


class Processes(Command):
    """Every watcher with its state and restart count, and each live process's pid, slot,
    uptime, restarts, cpu and memory (``circusctl status -l``).

    The figures come from one round of the shared sampler (the one ``stats`` and the stats
    stream use), awaited off the loop like ``stats``.
    """

    name = "processes"

    async def execute(self, arbiter: ArbiterAPI, props: Props) -> Result:
        if props.get("name") is not None:
            watchers = [watcher_from(arbiter, props)]
        else:
            watchers = list(arbiter.watchers)
        sample = await arbiter.sampler.sample(pid for w in watchers for pid in w.pids())
        now = time.time()
        return {"watchers": [_watcher_row(w, sample, now) for w in watchers]}


def _watcher_row(watcher: WatcherAPI, sample: Sample, now: float) -> dict[str, Any]:
    journal = watcher.journal
    processes = []
    for proc in sorted(watcher.processes.values(), key=lambda p: p.wid):
        info = sample.get(proc.pid) or {}
        processes.append({
            "pid": proc.pid, "wid": proc.wid, "started": proc.started,
            "uptime": max(now - proc.started, 0.0), "restarts": journal.slot(proc.wid).restarts,
            "cpu": _figure(info.get("cpu")), "mem": _figure(info.get("mem")),
            "rss": info.get("mem_info1", "N/A"),
        })
    return {
        "name": watcher.name, "state": watcher.state, "numprocesses": watcher.numprocesses,
        "restarts": journal.restarts,
        "crashes": sum(slot.crashes for slot in journal.slots.values()),
        "processes": processes,
    }


def _figure(value: Any) -> float | None:
    """A sampled percentage, None where the sampler had none (``"N/A"``, vanished process)."""
    return round(float(value), 2) if isinstance(value, int | float) else None


def _names(props: Props) -> list[str] | None:
    names = props.get("names")
    if names is None:
        name = props.get("name")
        return None if name is None else [name]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise MessageError("'names' isn't a list of watcher names")
    return names or None


class Tail(QuickCommand):
    """The last ``lines`` output lines of some watchers (all by default), oldest first, and
    each watcher's last line number so that a follower can skip what it already printed.
    ``follow`` (seconds, at most 60) asks circusd to publish their new lines that long: a
    follower renews it while it follows. ``pid`` and ``stream`` narrow the lines down."""

    name = "tail"

    def answer(self, arbiter: ArbiterAPI, props: Props) -> Fields:
        count = int_prop(props, "lines", DEFAULT_TAIL_LINES)
        if count is None or count < 0:
            raise MessageError("'lines' must be a positive integer")
        count = min(count, MAX_TAIL_LINES)
        names = _names(props)
        if names is None:
            watchers = list(arbiter.watchers)
        else:
            watchers = [arbiter.get_watcher(name) for name in names]
        follow = number_prop(props, "follow", 0.0) or 0.0
        for watcher in watchers:
            watcher.output.follow(follow)
        pid = int_prop(props, "pid")
        stream = string_prop(props, "stream")
        if stream not in (None, "stdout", "stderr"):
            raise MessageError("'stream' must be stdout or stderr")
        lines: list[dict[str, Any]] = []
        for watcher in watchers:
            wids = None
            if pid is not None:
                proc = watcher.processes.get(pid)
                if proc is None:
                    raise MessageError(f"process {pid} not found in {watcher.name!r}")
                wids = [proc.wid]
            lines.extend({"watcher": watcher.name, **line.as_dict()}
                         for line in watcher.output.recent(count, wids, stream))
        lines.sort(key=lambda line: (line["time"], line["watcher"], line["seq"]))
        return {"lines": lines[-count:] if count else [],
                "seq": {w.name: w.output.seq for w in watchers},
                "origin": {w.name: w.output.origin for w in watchers},
                "capture": {w.name: w.output.limits.capture for w in watchers}}


COMMANDS: tuple[Command, ...] = (Processes(), Tail())
