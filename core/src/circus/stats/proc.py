"""Reading Linux's ``/proc``: one pass over ``/proc/<pid>/stat`` for every process per round.

psutil's ``Process.children()`` reads the ``stat`` file of *every* process on the machine each
time it is called, so asking it for the children of 600 supervised processes read /proc 600
times (14.5 s). A round here reads each ``stat`` file once, which gives parents (so children
are found by a dictionary look-up), CPU times, nice, start time and memory all at once; only
the processes a caller asked about get two more reads (command line, owner).

Files are read with ``os.open``/``os.read``: that is a third of the cost of ``open()``, and a
process that vanishes between listing and reading is simply absent from the round.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass

_PROC = "/proc"


@dataclass(frozen=True)
class Machine:
    """Constants needed to turn ``stat`` fields into seconds, bytes and percentages."""

    clock_ticks: int
    page_size: int
    boot_time: float
    mem_total: int

    @classmethod
    def read(cls) -> Machine:
        return cls(
            clock_ticks=os.sysconf("SC_CLK_TCK"),
            page_size=os.sysconf("SC_PAGE_SIZE"),
            boot_time=_boot_time(),
            mem_total=_mem_total(),
        )


@dataclass(frozen=True)
class ProcStat:
    """The fields of one ``/proc/<pid>/stat`` line that the stats use, in final units."""

    pid: int
    #: the kernel's short command name (15 bytes at most); changes at exec
    comm: bytes
    ppid: int
    state: str
    cpu_seconds: float
    nice: int
    create_time: float
    vms: int
    rss: int


def _read(path: str, size: int = 4096) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def _boot_time() -> float:
    for line in _read(f"{_PROC}/stat", 1 << 16).splitlines():
        if line.startswith(b"btime "):
            return float(line.split()[1])
    raise OSError("no btime line in /proc/stat")


def _mem_total() -> int:
    for line in _read(f"{_PROC}/meminfo", 1 << 14).splitlines():
        if line.startswith(b"MemTotal:"):
            return int(line.split()[1]) * 1024
    raise OSError("no MemTotal line in /proc/meminfo")


def parse_stat(pid: int, raw: bytes, machine: Machine) -> ProcStat:
    """Parse one ``stat`` line. The command name (field 2) may hold spaces and parentheses,
    so fields are counted from the *last* ``)``."""
    end = raw.rindex(b")")
    fields = raw[end + 2 :].split()
    ticks = machine.clock_ticks
    return ProcStat(
        pid=pid,
        comm=raw[raw.index(b"(") + 1 : end],
        ppid=int(fields[1]),
        state=fields[0].decode(),
        cpu_seconds=(int(fields[11]) + int(fields[12])) / ticks,
        nice=int(fields[16]),
        create_time=machine.boot_time + int(fields[19]) / ticks,
        vms=int(fields[20]),
        rss=int(fields[21]) * machine.page_size,
    )


def scan(machine: Machine) -> dict[int, ProcStat]:
    """``stat`` of every process visible now, by pid (one read per process)."""
    table: dict[int, ProcStat] = {}
    with os.scandir(_PROC) as entries:
        for entry in entries:
            name = entry.name
            if not name.isdigit():
                continue
            pid = int(name)
            try:
                table[pid] = parse_stat(pid, _read(f"{_PROC}/{name}/stat", 1024), machine)
            except (OSError, ValueError, IndexError):
                continue  # gone since the listing (or unreadable): absent from this round
    return table


def memory(pid: int | str, page_size: int) -> tuple[int, int] | None:
    """``(rss, vms)`` in bytes from ``statm``, as psutil reads them (``pid`` ``"self"``:
    this process, which circusd's memory guard samples). ``stat``'s own rss field lags behind
    (the kernel documents it as inaccurate: 420 pages where ``statm`` and ``VmRSS`` say 447),
    so the processes reported on get this extra read."""
    try:
        fields = _read(f"{_PROC}/{pid}/statm", 256).split()
        return int(fields[1]) * page_size, int(fields[0]) * page_size
    except (OSError, ValueError, IndexError):
        return None


def command_name(pid: int) -> str | None:
    """Base name of the executable as the process was started (``argv[0]``), ``None`` when
    unknown (zombie, kernel thread, gone)."""
    try:
        raw = _read(f"{_PROC}/{pid}/cmdline", 4096)
    except OSError:
        return None
    argv0 = raw.split(b"\0", 1)[0]
    if not argv0:
        return None
    return os.path.basename(argv0.decode(errors="replace"))


def real_uid(pid: int) -> int | None:
    """The real uid from ``status`` (what psutil's ``username()`` reports)."""
    try:
        raw = _read(f"{_PROC}/{pid}/status", 8192)
    except OSError:
        return None
    start = raw.find(b"\nUid:")
    if start < 0:
        return None
    return int(raw[start + 5 :].split(None, 1)[0])


class UserNames:
    """uid -> user name, cached: the password database does not change between rounds often
    enough to justify a lookup per process per second."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}

    def name(self, uid: int) -> str:
        found = self._names.get(uid)
        if found is None:
            try:
                found = pwd.getpwuid(uid).pw_name
            except KeyError:
                found = str(uid)
            self._names[uid] = found
        return found
