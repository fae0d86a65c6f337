"""The command_reloader options (contract 7.6), checked when circusd loads its configuration.

``loop_rate`` keeps its name and default, but no longer sets how fast a change is noticed
(filesystem notifications do that): it is the period of the cheap ``list`` that notices added
and removed watchers, and the polling period where notifications are unavailable. Fractions
are honoured (0.19 truncated them to an integer, so values below 1 were invalid: B8).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from circus.config.convert import to_bool, to_float
from circus.errors import ConfigError
from circus.plugins.options import PluginOptions

#: the plugin's short name (entry point, ``CommandReloader.name``): the prefix of its
#: per-watcher keys
NAME = "command_reloader"
#: the per-watcher keys it reads, declared to circusd (``watcher_options``) and read through
#: ``WATCHER_OPTIONS.watcher_view``: ``watch`` lists more files or directories
WATCHER_OPTIONS = PluginOptions("watch")
#: that key as users write it in a ``[watcher:NAME]`` section (for messages)
WATCH_KEY = f"{NAME}.watch"


#: the options it reads, declared to circusd (the plugin's ``config_options``); parsed
#: through ``OPTIONS.view``, which refuses to read any other name
OPTIONS = PluginOptions("loop_rate", "settle", "force_polling", "watchers")


@dataclass(frozen=True)
class ReloaderSettings:
    loop_rate: float = 1.0
    force_polling: bool = False
    settle: float = 0.05
    watchers: re.Pattern[str] = re.compile(".*")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ReloaderSettings:
        config = OPTIONS.view(config)
        try:
            loop_rate = to_float(config.get("loop_rate", cls.loop_rate), minimum=0.05)
        except ValueError as exc:
            raise ConfigError(str(exc), key="loop_rate") from None
        try:
            settle = to_float(config.get("settle", cls.settle), minimum=0.001)
        except ValueError as exc:
            raise ConfigError(str(exc), key="settle") from None
        try:
            polling = to_bool(config.get("force_polling", False))
        except ValueError as exc:
            raise ConfigError(str(exc), key="force_polling") from None
        try:
            watchers = re.compile(str(config.get("watchers", ".*")))
        except re.error as exc:
            raise ConfigError(f"invalid regular expression: {exc}", key="watchers") from None
        return cls(loop_rate=loop_rate, force_polling=polling, settle=settle,
                   watchers=watchers)


def split_paths(value: Any) -> list[str]:
    """``a.py, /srv/conf  b.ini`` -> the paths (commas or whitespace separate them)."""
    return [part for part in re.split(r"[,\s]+", str(value or "")) if part]
