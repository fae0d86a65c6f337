"""Which INFO fields become gauges, and how the URL is shown in logs (no server needed)."""

from __future__ import annotations

from circus_plugin_redis_observer.info import gauges
from circus_plugin_redis_observer.plugin import _hide_password


def test_numeric_known_fields_only() -> None:
    info = {"connected_clients": 3, "used_memory": 1024, "mem_fragmentation_ratio": 1.5,
            "redis_version": "7.0.15", "role": "master", "unknown_field": 7,
            "connected_slaves": True}
    assert gauges(info) == {"connected_clients": 3.0, "used_memory": 1024.0,
                            "mem_fragmentation_ratio": 1.5}


def test_missing_old_fields_are_skipped_not_fatal() -> None:
    assert gauges({}) == {}


def test_password_is_hidden() -> None:
    assert _hide_password("redis://user:secret@host:6379/0") == "redis://user:***@host:6379/0"
    assert _hide_password("redis://:secret@host/0") == "redis://:***@host/0"
    assert _hide_password("redis://host:6379/0") == "redis://host:6379/0"
