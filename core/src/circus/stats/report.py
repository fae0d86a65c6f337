"""Shaping samples into the contract's messages: ``stats``/``dstats`` replies (3.3) and the
``stat.*`` topics of the stats stream (5).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from circus.procinfo import NO_SUCH_PROCESS
from circus.protocol import STAT_PREFIX
from circus.stats.sampler import Info, Sample

#: the name ``stat.circus.<pid>`` messages carry for circusd itself (0.19 also had
#: ``circusd-stats`` and ``circushttpd``; this daemon samples in-process and has no web UI)
DAEMON_NAME = "circusd"


def process_stats(sample: Sample, pid: int, *, wid: int, started: float) -> Info | str:
    """The ``stats`` info of one supervised process: the sample's plus ``wid``, ``started`` and
    ``age`` counted from the spawn; :data:`NO_SUCH_PROCESS` when it vanished."""
    found = sample.get(pid)
    if found is None:
        return NO_SUCH_PROCESS
    info = dict(found)
    info["children"] = [dict(child) for child in found["children"]]
    info["wid"] = wid
    info["started"] = started
    info["age"] = time.time() - started
    return info


def daemon_stats(sample: Sample, pid: int) -> Info:
    """``dstats``: circusd's own info, ``children`` always empty (contract 3.3)."""
    found = sample.get(pid)
    if found is None:  # cannot happen for our own pid unless /proc is not mounted
        raise RuntimeError(f"no statistics for circusd (pid {pid}): is /proc mounted?")
    info = dict(found)
    info["children"] = []
    return info


def aggregate(infos: Sequence[Info]) -> Info:
    """``stat.<watcher>``: pids, average CPU, summed memory percent, oldest age (0.19's rules,
    ``"N/A"`` when any member's figure is)."""
    cpus = [info["cpu"] for info in infos]
    mems = [info["mem"] for info in infos]
    ages = [info["age"] for info in infos if info["age"] != "N/A"]
    return {
        "pid": [info["pid"] for info in infos],
        "cpu": "N/A" if "N/A" in cpus else (sum(cpus) / len(cpus) if cpus else 0.0),
        "mem": "N/A" if "N/A" in mems else sum(mems),
        "age": max(ages) if ages else "N/A",
    }


def stream_messages(
    sample: Sample, groups: Iterable[tuple[str, Sequence[int]]], daemon_pid: int
) -> list[tuple[str, Info]]:
    """One round of the stats stream as ``(topic, payload)`` pairs, in 0.19's order: per
    watcher (``res_name``) each live process then the aggregate, then ``circus``.

    A watcher with no live process publishes nothing, as in 0.19 (its collector stops).
    ``stat.sockets`` topics come from :func:`socket_messages`.
    """
    messages: list[tuple[str, Info]] = []
    for name, pids in groups:
        messages.extend(_group(sample, name, pids, None))
    messages.extend(_group(sample, "circus", [daemon_pid], DAEMON_NAME))
    return messages


def socket_messages(reads: Sequence[tuple[int, str, int]]) -> list[tuple[str, Info]]:
    """``stat.sockets.<fd>`` per socket then the ``stat.sockets`` aggregate (contract 5), from
    ``(fd, address, reads)``; nothing without sockets, as in 0.19."""
    messages: list[tuple[str, Info]] = [
        (f"{STAT_PREFIX}sockets.{fd}",
         {"fd": fd, "subtopic": fd, "reads": count, "address": address})
        for fd, address, count in reads
    ]
    if messages:
        messages.append((f"{STAT_PREFIX}sockets", {
            "addresses": [address for _, address, _ in reads],
            "reads": sum(count for _, _, count in reads),
        }))
    return messages


def _group(
    sample: Sample, name: str, pids: Sequence[int], label: str | None
) -> list[tuple[str, Info]]:
    infos: list[Info] = []
    out: list[tuple[str, Any]] = []
    for pid in pids:
        found = sample.get(pid)
        if found is None:
            continue
        info = dict(found)
        info["children"] = []
        info["subtopic"] = pid
        info["name"] = label
        infos.append(info)
        out.append((f"{STAT_PREFIX}{name}.{pid}", info))
    if infos:
        out.append((f"{STAT_PREFIX}{name}", aggregate(infos)))
    return out
