"""0.19's ``FullStats`` gauges: per watcher, the max and sum of its processes' CPU and memory.

Computed from a ``stats`` reply (``{"infos": {watcher: {pid: info}}}``) with the original's
bucket names, relative to the prefix: ``_stats.<watcher>.watchers_num`` (the number of
processes with figures, despite the name), ``cpu_max``/``cpu_sum``, ``mem_pct_max``/
``mem_pct_sum`` and ``mem_max``/``mem_sum`` (RSS bytes, read back from ``mem_info1``). Plugin
watchers are skipped as in 0.19. Differences: an ``"N/A"`` figure is left out instead of making
the whole computation fail (B2), and watcher names are made bucket-safe like the event counters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from circus.procinfo import parse_human_bytes
from circus_plugin_statsd.buckets import bucket_safe

ERROR_BUCKET = "_stats.error"


def full_stats_gauges(infos: Mapping[str, Any]) -> dict[str, float]:
    """Bucket (relative to the prefix) -> value, for every non-plugin watcher."""
    gauges: dict[str, float] = {}
    for watcher, processes in sorted(infos.items()):
        if watcher.startswith("plugin:") or not isinstance(processes, Mapping):
            continue
        live = [info for info in processes.values() if isinstance(info, Mapping)]
        base = f"_stats.{bucket_safe(watcher)}"
        gauges[f"{base}.watchers_num"] = len(live)
        if not live:
            continue  # 0.19 sends no cpu/mem gauges for a watcher without processes
        figures = {
            "cpu": [_num(info.get("cpu")) for info in live],
            "mem_pct": [_num(info.get("mem")) for info in live],
            "mem": [_bytes(info.get("mem_info1")) for info in live],
        }
        for name, values in figures.items():
            known = [value for value in values if value is not None]
            if known:
                gauges[f"{base}.{name}_max"] = max(known)
                gauges[f"{base}.{name}_sum"] = sum(known)
    return gauges


def _num(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _bytes(value: Any) -> float | None:
    parsed = parse_human_bytes(value) if isinstance(value, str) else None
    return None if parsed is None else float(parsed)
