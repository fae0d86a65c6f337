"""The Prometheus plugin's options, checked once when circusd loads its configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from circus.config.convert import plugin_option, to_float, to_ip_address, to_port
from circus.plugins.options import PluginOptions

#: default port of ``/metrics``; documented in the README (change it with ``port``)
DEFAULT_PORT = 9645


#: the options it reads, declared to circusd (the plugin's ``config_options``); parsed
#: through ``OPTIONS.view``, which refuses to read any other name
OPTIONS = PluginOptions("host", "port", "refresh_interval")


@dataclass(frozen=True)
class PrometheusSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    refresh_interval: float = 5.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PrometheusSettings:
        """Parse the options; a bad value raises ``ConfigError`` naming the option."""
        config = OPTIONS.view(config)
        return cls(
            host=plugin_option(config, "host", _host, cls.host),
            port=plugin_option(config, "port", to_port, cls.port),
            refresh_interval=plugin_option(
                config, "refresh_interval", _interval, cls.refresh_interval
            ),
        )


def _host(value: Any) -> str:
    """An IP address to listen on (names are refused: see ``to_ip_address``)."""
    return to_ip_address(value)


def _interval(value: Any) -> float:
    seconds = to_float(value, minimum=0.0)
    if seconds < 0.1:
        raise ValueError(f"must be at least 0.1 (seconds), got {seconds:g}")
    return seconds
