"""Which Redis ``INFO`` fields become statsd gauges.

The names are 0.19's list (contract 7.7). Several of them no longer exist in current Redis
(``connected_slaves`` became ``connected_replicas`` alongside, ``client_biggest_input_buf`` and
``client_longest_output_list`` were renamed in 5.0): 0.19 failed on the missing ones (B7); here
a field is sent when the server reports it as a number and skipped otherwise, and the current
names are added next to the old ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GAUGE_FIELDS = (
    # 0.19's list
    "pubsub_channels", "connected_slaves", "lru_clock", "connected_clients", "keyspace_misses",
    "used_memory", "used_memory_peak", "total_commands_processed", "used_memory_rss",
    "total_connections_received", "pubsub_patterns", "used_cpu_sys", "used_cpu_sys_children",
    "blocked_clients", "used_cpu_user", "client_biggest_input_buf", "mem_fragmentation_ratio",
    "expired_keys", "evicted_keys", "client_longest_output_list", "uptime_in_seconds",
    "keyspace_hits",
    # their current names (Redis >= 5)
    "connected_replicas", "client_recent_max_input_buffer", "client_recent_max_output_buffer",
)


def gauges(info: Mapping[str, Any]) -> dict[str, float]:
    """The numeric ``INFO`` fields of :data:`GAUGE_FIELDS` that the server reported."""
    found: dict[str, float] = {}
    for key in GAUGE_FIELDS:
        value = info.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            found[key] = float(value)
    return found
