"""The watchdog options (contract 7.3), converted and checked once, when circusd loads its config.

The names and defaults are the original plugin's. The original converted them lazily and
crashed (or silently misbehaved) on a bad value; here every value is checked up front, so a
typo stops circusd with a message naming the key instead of crash-looping the plugin.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from circus.config.convert import to_float, to_int, to_signal
from circus.errors import ConfigError
from circus.plugins.options import PluginOptions

DEFAULT_MSG_REGEX = r"^(?P<pid>.*);(?P<timestamp>.*)$"


def _regex(key: str, value: Any) -> re.Pattern[str]:
    try:
        return re.compile(str(value))
    except re.error as exc:
        raise ConfigError(f"invalid regular expression {value!r}: {exc}", key=key) from None


def _convert(key: str, convert: Any, value: Any) -> Any:
    try:
        return convert(value)
    except ValueError as exc:
        raise ConfigError(str(exc), key=key) from None


#: the options it reads, declared to circusd (the plugin's ``config_options``); parsed
#: through ``OPTIONS.view``, which refuses to read any other name
OPTIONS = PluginOptions("loop_rate", "max_count", "watchers_regex", "msg_regex", "ip", "port",
                        "watchers_stop_signal", "watchers_graceful_timeout")


@dataclass(frozen=True)
class WatchdogSettings:
    """Effective options of one watchdog plugin."""

    loop_rate: float = 60.0
    max_count: int = 3
    watchers_regex: re.Pattern[str] = re.compile(".*")
    msg_regex: re.Pattern[str] = re.compile(DEFAULT_MSG_REGEX)
    ip: str = "127.0.0.1"
    port: int = 1664
    stop_signal: int | None = None
    graceful_timeout: float | None = None

    @property
    def limit(self) -> float:
        """Seconds of silence after which a process is killed (``loop_rate * max_count``)."""
        return self.loop_rate * self.max_count

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WatchdogSettings:
        """Settings from the plugin's options (strings); ``ConfigError`` names a bad key."""
        config = OPTIONS.view(config)
        loop_rate = _convert("loop_rate", lambda v: to_float(v, minimum=0.001),
                             config.get("loop_rate", cls.loop_rate))
        max_count = _convert("max_count", lambda v: to_int(v, minimum=1),
                             config.get("max_count", cls.max_count))
        watchers = _regex("watchers_regex", config.get("watchers_regex", ".*"))
        msg = _regex("msg_regex", config.get("msg_regex", DEFAULT_MSG_REGEX))
        if "pid" not in msg.groupindex:
            raise ConfigError(f"{msg.pattern!r} has no (?P<pid>...) group", key="msg_regex")
        ip = str(config.get("ip", cls.ip)).strip()
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ConfigError(f"not an IP address: {ip!r}", key="ip") from None
        port = _convert("port", lambda v: to_int(v, minimum=0), config.get("port", cls.port))
        if port > 65535:
            raise ConfigError(f"port {port} is out of range (0-65535)", key="port")
        signum = config.get("watchers_stop_signal")
        timeout = config.get("watchers_graceful_timeout")
        return cls(
            loop_rate=loop_rate,
            max_count=max_count,
            watchers_regex=watchers,
            msg_regex=msg,
            ip=ip,
            port=port,
            # empty means "not set", as in the original (which tested truthiness)
            stop_signal=_convert("watchers_stop_signal", to_signal, signum) if signum else None,
            graceful_timeout=(_convert("watchers_graceful_timeout",
                                       lambda v: to_float(v, minimum=0.0), timeout)
                              if timeout not in (None, "") else None),
        )
