"""The autoscale options, converted once and checked when circusd loads its configuration.

There is no 0.19 original (the seed asks for "a tool that add or remove processes depending on
the load"); the names follow the other plugins (``watcher``, ``sample_rate``, ``cooldown``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from circus.config.convert import plugin_option, to_bool, to_float, to_int
from circus.errors import ConfigError
from circus.plugins.options import PluginOptions

METRICS = ("cpu", "command", "http")


#: the options it reads, declared to circusd (the plugin's ``config_options``); parsed
#: through ``OPTIONS.view``, which refuses to read any other name
OPTIONS = PluginOptions("watcher", "min", "max", "metric", "metric_command", "metric_url",
                        "scale_up", "scale_down", "up_after", "down_after", "cooldown", "step",
                        "sample_rate", "timeout", "stats_stream")


@dataclass(frozen=True)
class AutoscaleSettings:
    watcher: str
    min: int
    max: int
    metric: str = "cpu"
    metric_command: str | None = None
    metric_url: str | None = None
    scale_up: float = 75.0
    scale_down: float = 25.0
    up_after: float = 5.0
    down_after: float = 30.0
    cooldown: float = 30.0
    step: int = 1
    sample_rate: float = 1.0
    timeout: float = 5.0
    #: ``metric = cpu``: read circusd's stats stream when it runs (``false``: always ``stats``)
    stats_stream: bool = True

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AutoscaleSettings:
        config = OPTIONS.view(config)
        watcher = str(config.get("watcher") or "").strip()
        if not watcher:
            raise ConfigError("the watcher to scale is required", key="watcher")
        low = plugin_option(config, "min", lambda v: to_int(v, minimum=0), 1)
        if config.get("max") in (None, ""):
            raise ConfigError("the most processes to run is required", key="max")
        high = plugin_option(config, "max", lambda v: to_int(v, minimum=1), 0)
        if high < low:
            raise ConfigError(f"max ({high}) is below min ({low})", key="max")
        metric = str(config.get("metric") or "cpu").strip().lower()
        if metric not in METRICS:
            raise ConfigError(f"unknown metric {metric!r} (one of {', '.join(METRICS)})",
                              key="metric")
        command = str(config.get("metric_command") or "").strip() or None
        url = str(config.get("metric_url") or "").strip() or None
        if metric == "command" and command is None:
            raise ConfigError("metric = command needs metric_command", key="metric_command")
        if metric == "http" and url is None:
            raise ConfigError("metric = http needs metric_url", key="metric_url")
        if url is not None and not url.startswith(("http://", "https://")):
            raise ConfigError(f"not an http(s) URL: {url!r}", key="metric_url")

        def seconds(key: str, default: float, minimum: float = 0.0) -> float:
            return plugin_option(config, key, lambda v: to_float(v, minimum=minimum), default)

        up = seconds("scale_up", cls.scale_up)
        down = seconds("scale_down", cls.scale_down)
        if down >= up:
            # the band between the thresholds is the hysteresis: without it, one value
            # could call for a change and for its reversal
            raise ConfigError(f"scale_down ({down:g}) must be below scale_up ({up:g})",
                              key="scale_down")
        return cls(
            watcher=watcher, min=low, max=high, metric=metric, metric_command=command,
            metric_url=url, scale_up=up, scale_down=down,
            up_after=seconds("up_after", cls.up_after),
            down_after=seconds("down_after", cls.down_after),
            cooldown=seconds("cooldown", cls.cooldown),
            step=plugin_option(config, "step", lambda v: to_int(v, minimum=1), 1),
            sample_rate=seconds("sample_rate", cls.sample_rate, minimum=0.05),
            timeout=seconds("timeout", cls.timeout, minimum=0.05),
            stats_stream=plugin_option(config, "stats_stream", to_bool, True),
        )
