"""The resource_watcher options (contract 7.4), converted once and checked at load time.

Memory limits are a percentage when given as a plain number and bytes of RSS when given with a
unit (``250M``), for ``max_mem`` *and* ``min_mem`` (0.19 compared a ``min_mem`` with a unit
as a percentage anyway: B4).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from circus.config.convert import plugin_option, to_bool, to_float, to_int, to_signal
from circus.errors import ConfigError
from circus.plugins.options import PluginOptions

UNITS = "BKMGTPEZY"
ACTIONS = ("restart", "kill", "signal")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([BKMGTPEZY])\s*$", re.IGNORECASE)


def human_to_bytes(text: str) -> int:
    """``"1.45M"`` -> bytes (1024-based units, as circusd's ``stats`` writes them)."""
    found = _SIZE.match(text)
    if found is None:
        raise ValueError(f"invalid size {text!r} (a number and one of {' '.join(UNITS)})")
    return int(float(found.group(1)) * 1024 ** UNITS.index(found.group(2).upper()))


def _non_negative(value: Any) -> float:
    return to_float(value, minimum=0.0)


@dataclass(frozen=True)
class MemLimit:
    """A memory limit: ``value`` percent of RAM, or ``value`` bytes of RSS."""

    value: float
    percent: bool

    @classmethod
    def parse(cls, key: str, text: Any) -> MemLimit:
        raw = str(text).strip()
        try:
            return cls(float(raw), True)
        except ValueError:
            pass
        try:
            return cls(float(human_to_bytes(raw)), False)
        except ValueError as exc:
            raise ConfigError(str(exc), key=key) from None

    def describe(self) -> str:
        return f"{self.value:g}%" if self.percent else f"{self.value / 1024 ** 2:.1f} MiB"


#: the options it reads, declared to circusd (the plugin's ``config_options``); parsed
#: through ``OPTIONS.view``, which refuses to read any other name
OPTIONS = PluginOptions("watcher", "service", "loop_rate", "sample_rate", "max_cpu", "min_cpu",
                        "max_mem", "min_mem", "health_threshold", "max_count", "process_children",
                        "stats_stream", "child_signal", "action", "signal", "host", "port",
                        "application_name")


@dataclass(frozen=True)
class ResourceSettings:
    watcher: str
    loop_rate: float = 60.0
    sample_rate: float = 0.5
    max_cpu: float | None = 90.0
    min_cpu: float | None = None
    max_mem: MemLimit | None = MemLimit(90.0, True)
    min_mem: MemLimit | None = None
    health_threshold: float | None = 75.0
    max_count: int = 3
    process_children: bool = False
    #: read circusd's stats stream when it runs (``false``: always poll ``stats``)
    stats_stream: bool = True
    child_signal: int = 15
    action: str = "restart"
    signal: int = 15

    @property
    def window(self) -> float:
        """Seconds a limit must stay exceeded before the action (``loop_rate * max_count``)."""
        return self.loop_rate * self.max_count

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ResourceSettings:
        config = OPTIONS.view(config)
        watcher = str(config.get("watcher") or config.get("service") or "").strip()
        if not watcher:
            raise ConfigError("the watcher to observe is required", key="watcher")
        loop_rate = plugin_option(config, "loop_rate", lambda v: to_float(v, minimum=0.01), 60.0)
        action = str(config.get("action") or "restart").strip().lower()
        if action not in ACTIONS:
            raise ConfigError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})",
                              key="action")

        def percent(key: str, default: float | None) -> float | None:
            # 0 disables a max limit, as in 0.19 (which tested truthiness)
            return plugin_option(config, key, _non_negative, default)

        def mem(key: str, default: MemLimit | None) -> MemLimit | None:
            value = config.get(key)
            if value is None or not str(value).strip():
                return default
            return MemLimit.parse(key, value)

        return cls(
            watcher=watcher,
            loop_rate=loop_rate,
            sample_rate=plugin_option(config, "sample_rate", lambda v: to_float(v, minimum=0.01),
                             min(loop_rate, 0.5)),
            max_cpu=percent("max_cpu", 90.0) or None,
            min_cpu=percent("min_cpu", None),
            max_mem=mem("max_mem", MemLimit(90.0, True)),
            min_mem=mem("min_mem", None),
            health_threshold=percent("health_threshold", 75.0) or None,
            max_count=plugin_option(config, "max_count", lambda v: to_int(v, minimum=0), 3),
            process_children=plugin_option(config, "process_children", to_bool, False),
            stats_stream=plugin_option(config, "stats_stream", to_bool, True),
            child_signal=plugin_option(config, "child_signal", to_signal, 15),
            action=action,
            signal=plugin_option(config, "signal", to_signal, 15),
        )
