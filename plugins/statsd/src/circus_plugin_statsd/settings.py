"""The statsd plugin's options (contract 7.1 plus ``prefix``, ``gauge_interval``, ``full_stats``).

Values arrive as strings (plugin section, ``--config``); they are checked once, at start, so a
typo is one clear error line instead of a plugin that silently sends nowhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from circus.config.convert import to_bool, to_float, to_int
from circus.plugins.options import PluginOptions
from circus_plugin_statsd.buckets import check_prefix, default_prefix

#: the options it reads, declared to circusd (``StatsdEmitter.config_options``); ``loop_rate``
#: is FullStats' name for ``gauge_interval``
OPTIONS = PluginOptions("host", "port", "application_name", "prefix", "sample_rate",
                        "gauge_interval", "loop_rate", "full_stats")


@dataclass(frozen=True)
class StatsdSettings:
    host: str = "localhost"
    port: int = 8125
    application_name: str = "app"
    prefix: str = "circus.app.watcher"
    sample_rate: float = 1.0
    gauge_interval: float = 10.0
    full_stats: bool = True

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StatsdSettings:
        """Parse the plugin's options; raises ``ValueError("<option>: <why>")``."""
        config = OPTIONS.view(config)

        def opt(key: str, convert: Any, default: Any) -> Any:
            if key not in config:
                return default
            try:
                return convert(config[key])
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None

        app = str(config.get("application_name", cls.application_name))
        rate = opt("sample_rate", lambda v: to_float(v, minimum=0.0), cls.sample_rate)
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"sample_rate: must be in (0, 1], got {rate:g}")
        host = str(config.get("host", cls.host)).strip()
        if not host:
            raise ValueError("host: must not be empty")
        return cls(
            host=host,
            port=opt("port", _port, cls.port),
            application_name=app,
            prefix=opt("prefix", lambda v: check_prefix(str(v).strip()), default_prefix(app)),
            sample_rate=rate,
            gauge_interval=opt(
                "gauge_interval",
                lambda v: to_float(v, minimum=0.0),
                # FullStats' ``loop_rate`` (0.19's name for the same period) when given alone
                opt("loop_rate", lambda v: to_float(v, minimum=0.0), cls.gauge_interval),
            ),
            full_stats=opt("full_stats", to_bool, cls.full_stats),
        )


def _port(value: Any) -> int:
    port = to_int(value, minimum=1)
    if port > 65535:
        raise ValueError(f"must be at most 65535, got {port}")
    return port
