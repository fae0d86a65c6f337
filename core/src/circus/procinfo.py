"""Process information for the ``stats`` and ``dstats`` commands (contract 3.3), via psutil.

Field names and formats are the wire contract: memory as human strings (``"1.45M"``), CPU time as
``"M:SS.cc"``, ``"N/A"`` for anything access is denied to.
"""

from __future__ import annotations

import os
import time
from typing import Any

import psutil

NO_SUCH_PROCESS = "No such process (stopped?)"
_UNITS = "KMGTPEZY"


def human_bytes(num: float) -> str:
    """``"512B"`` below 1 KiB, else two decimals and a unit: ``"1.45M"``."""
    if num < 1024:
        return f"{int(num)}B"
    value = float(num)
    unit = ""
    for unit in _UNITS:
        value /= 1024.0
        if value < 1024 or unit == _UNITS[-1]:
            break
    return f"{value:.2f}{unit}"


def cpu_time(seconds: float) -> str:
    """CPU seconds as ``M:SS.cc``."""
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:05.2f}"


def _field(func: Any, default: Any = "N/A") -> Any:
    try:
        return func()
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return default


def process_info(proc: psutil.Process, *, interval: float | None = None) -> dict[str, Any]:
    """The info object of one OS process (children included, recursively one level per call)."""
    with proc.oneshot():
        mem = _field(proc.memory_info, None)
        times = _field(proc.cpu_times, None)
        cmdline = _field(proc.cmdline, [])
        info: dict[str, Any] = {
            "pid": proc.pid,
            "create_time": _field(proc.create_time),
            "cpu": _field(lambda: proc.cpu_percent(interval=interval)),
            "mem": _field(lambda: round(proc.memory_percent(), 3)),
            "mem_info1": human_bytes(mem.rss) if mem is not None else "N/A",
            "mem_info2": human_bytes(mem.vms) if mem is not None else "N/A",
            "ctime": cpu_time(times.user + times.system) if times is not None else "N/A",
            "username": _field(proc.username),
            "nice": _field(proc.nice),
            "cmdline": os.path.basename(cmdline[0]) if cmdline else "N/A",
        }
    children: list[Any] = []
    for child in _field(proc.children, []):
        try:
            children.append(process_info(child))
        except psutil.NoSuchProcess:
            continue
    info["children"] = children
    return info


def child_stats(proc: psutil.Process, *, wid: int, started: float) -> dict[str, Any] | str:
    """Info of a supervised child with ``wid``/``started``/``age``; a string when it vanished."""
    try:
        info = process_info(proc)
    except psutil.NoSuchProcess:
        return NO_SUCH_PROCESS
    info["wid"] = wid
    info["started"] = started
    info["age"] = time.time() - started
    return info


def daemon_stats() -> dict[str, Any]:
    """``dstats``: circusd itself, CPU sampled over 10 ms, children always empty."""
    info = process_info(psutil.Process(os.getpid()), interval=0.01)
    info["children"] = []
    return info
