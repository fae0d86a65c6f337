"""The sampler: one thread that gathers process statistics so the event loop never does.

Callers on the loop ``await sampler.sample(pids)``; the thread scans ``/proc`` once (see
:mod:`circus.stats.proc`), builds the info of each asked-for process and of its direct
children, and hands the :class:`Sample` back with ``call_soon_threadsafe``. Requests that
arrive while a round runs are served together by the next round, so a burst of ``stats``
commands plus the stats stream costs one scan, not one each. The thread is started on first
use and holds no socket; its only shared state is the request queue.

The GIL is held while a round parses, but Python hands it back to the loop every switch
interval (5 ms), so reaping and ``status`` stay prompt (see docs/stats.md for figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog

from circus.procinfo import cpu_time, human_bytes
from circus.stats.cpu import CpuTracker
from circus.stats.proc import (
    Machine,
    ProcStat,
    UserNames,
    command_name,
    memory,
    real_uid,
    scan,
)

log = structlog.get_logger("circus.stats")

#: seconds :meth:`Sampler.close` waits for a round in progress
_JOIN_TIMEOUT = 5.0
#: a process's command name and owner are read again after this many seconds; an exec is
#: noticed at once (the kernel's ``comm`` in ``stat`` changes), a setuid within this delay
IDENTITY_TTL = 10.0
#: processes younger than this are not cached: they may not have exec'd yet
SETTLED_AGE = 1.0
_STOP = object()

Info = dict[str, Any]


@dataclass(frozen=True)
class Sample:
    """One round: the info of every asked-for process that exists, by pid.

    Each info has the contract's process fields (``pid``, ``create_time``, ``cpu``, ``mem``,
    ``mem_info1``, ``mem_info2``, ``ctime``, ``username``, ``nice``, ``cmdline``), ``age``
    measured from the OS creation time, and ``children``: the infos of its direct children
    (whose own ``children`` are empty, as in 0.19). Callers must copy before changing one.
    """

    infos: dict[int, Info]
    #: ``time.time()`` when the round started
    taken: float
    #: seconds the round took, in the sampler thread
    duration: float = 0.0
    #: how many processes the machine had (the scan's size)
    scanned: int = 0

    def get(self, pid: int) -> Info | None:
        return self.infos.get(pid)


_Request = tuple[frozenset[int], asyncio.AbstractEventLoop, "asyncio.Future[Sample]"]


class Sampler:
    """See the module docstring. One per daemon (the arbiter's); usable from any event loop."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[_Request | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._machine: Machine | None = None
        self._cpu = CpuTracker()
        self._users = UserNames()
        #: (pid, create_time, comm) -> (read at, command name, user name): two of the three
        #: extra reads per process, so a round over 1,000 processes costs about half as much
        self._identity: dict[tuple[int, float, bytes], tuple[float, str, str]] = {}
        #: rounds completed (tests and benchmarks read it)
        self.rounds = 0

    async def sample(self, pids: Iterable[int]) -> Sample:
        """The statistics of ``pids`` (absent pids: not in the sample), gathered off the loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Sample] = loop.create_future()
        self._start()
        self._requests.put((frozenset(pids), loop, future))
        return await future

    def _start(self) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the stats sampler is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="circus-stats-sampler", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """Stop the thread after it served what is queued (bounded wait); later calls raise."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._requests.put(_STOP)
            thread.join(_JOIN_TIMEOUT)
            if thread.is_alive():
                log.warning("the stats sampler did not stop in time", timeout=_JOIN_TIMEOUT)

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = [self._requests.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self._requests.get_nowait())
            stop = any(item is _STOP for item in batch)
            requests: list[_Request] = [item for item in batch if item is not _STOP]  # type: ignore[misc]
            if requests:
                pids = frozenset().union(*(req[0] for req in requests))
                try:
                    result: Sample | BaseException = self.collect(pids)
                except Exception as exc:  # a bug must reach the caller, not kill the thread
                    log.exception("stats round failed")
                    result = exc
                for _, loop, future in requests:
                    _deliver(loop, future, result)
            if stop:
                return

    def collect(self, pids: frozenset[int]) -> Sample:
        """One round, synchronously (the thread's job; public for benchmarks and tests)."""
        started = time.monotonic()
        taken = time.time()
        if self._machine is None:
            self._machine = Machine.read()
        machine = self._machine
        table = scan(machine)
        children: dict[int, list[ProcStat]] = {}
        for stat in table.values():
            if stat.ppid in pids:
                children.setdefault(stat.ppid, []).append(stat)
        now = time.monotonic()
        infos: dict[int, Info] = {}
        for pid in pids:
            found = table.get(pid)
            if found is None:
                continue
            info = self._info(found, machine, now, taken)
            info["children"] = [
                self._info(child, machine, now, taken) for child in children.get(pid, [])
            ]
            infos[pid] = info
        self._cpu.prune(now)
        self._forget_identities(now)
        self.rounds += 1
        return Sample(infos, taken, time.monotonic() - started, len(table))

    def _identity_of(self, stat: ProcStat, now: float, age: float) -> tuple[str, str]:
        """(command name, user name), cached per process once it has settled."""
        key = (stat.pid, stat.create_time, stat.comm)
        cached = self._identity.get(key)
        if cached is not None and now - cached[0] < IDENTITY_TTL:
            return cached[1], cached[2]
        uid = real_uid(stat.pid)
        cmd = command_name(stat.pid)
        found = ("N/A" if cmd is None else cmd, "N/A" if uid is None else self._users.name(uid))
        if age >= SETTLED_AGE and cmd is not None and uid is not None:
            self._identity[key] = (now, *found)
        return found

    def _forget_identities(self, now: float) -> None:
        if len(self._identity) > 256:  # bounded: drop entries too old to be used again
            stale = [k for k, v in self._identity.items() if now - v[0] >= IDENTITY_TTL]
            for key in stale:
                del self._identity[key]

    def _info(self, stat: ProcStat, machine: Machine, now: float, wall: float) -> Info:
        age = max(wall - stat.create_time, 0.0)
        cmd, user = self._identity_of(stat, now, age)
        rss, vms = memory(stat.pid, machine.page_size) or (stat.rss, stat.vms)
        return {
            "pid": stat.pid,
            "create_time": stat.create_time,
            "cpu": self._cpu.percent((stat.pid, stat.create_time), now, stat.cpu_seconds, age),
            "mem": round(rss / machine.mem_total * 100, 3) if machine.mem_total else "N/A",
            "mem_info1": human_bytes(rss),
            "mem_info2": human_bytes(vms),
            "ctime": cpu_time(stat.cpu_seconds),
            "username": user,
            "nice": stat.nice,
            "cmdline": cmd,
            "age": age,
            "children": [],
        }


def _deliver(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Sample], result: Sample | BaseException
) -> None:
    def settle() -> None:
        if future.done():  # the caller gave up (cancelled, timed out)
            return
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting
        loop.call_soon_threadsafe(settle)
