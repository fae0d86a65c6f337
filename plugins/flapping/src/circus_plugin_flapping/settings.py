"""The flapping options (contract section 7.2) and their per-watcher ``flapping.*`` overrides.

Option values reach a plugin as strings (plugin section, ``--config``) and overrides come back from
the ``options`` command as the raw INI strings, so one parser serves both; it reuses the core's
converters so a value accepted elsewhere in circus is accepted here too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from circus.config.convert import to_bool, to_float, to_int
from circus.plugins.options import PluginOptions

#: the plugin's short name (entry point, ``Flapping.name``): the prefix of its per-watcher keys
NAME = "flapping"
OVERRIDE_PREFIX = NAME + "."

_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "attempts": lambda v: to_int(v, minimum=1),
    "window": lambda v: to_float(v, minimum=0.0),
    "retry_in": lambda v: to_float(v, minimum=0.0),
    "max_retry": lambda v: to_int(v, minimum=-1),
    "active": to_bool,
}
#: the options it reads, declared to circusd (``Flapping.config_options``)
OPTIONS = PluginOptions(*_CONVERTERS)
#: the per-watcher overrides it reads (``flapping.max_retry = 7`` in a ``[watcher:X]`` section),
#: the same names, declared to circusd (``Flapping.watcher_options``) and read through it
WATCHER_OPTIONS = PluginOptions(*_CONVERTERS)


@dataclass(frozen=True)
class FlappingSettings:
    """Effective settings for one watcher; the defaults are the original plugin's."""

    attempts: int = 2
    window: float = 1.0
    retry_in: float = 7.0
    max_retry: int = 5
    active: bool = True

    @property
    def stable_after(self) -> float:
        """How long a restarted watcher must run before a new burst gets a fresh retry budget.

        A burst that starts later than this after the plugin's restart means the watcher did
        recover for a while, so ``max_retry`` counts consecutive failures, not a lifetime total.
        """
        return max(self.window, self.retry_in)

    def with_values(self, values: Mapping[str, Any]) -> FlappingSettings:
        """A copy with ``values`` (option name -> raw value) converted and applied.

        Raises ``ValueError("<key>: <why>")`` on the first bad value; unknown keys are ignored
        because a plugin section also carries watcher options and ``name``.
        """
        changes: dict[str, Any] = {}
        for key, convert in _CONVERTERS.items():
            if key in values:
                try:
                    changes[key] = convert(values[key])
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from None
        return replace(self, **changes)

    def with_overrides(self, options: Mapping[str, Any]) -> tuple[FlappingSettings, list[str]]:
        """Apply a watcher's ``flapping.*`` options; bad ones are skipped and reported.

        Returns the settings and one message per rejected override, so the plugin can log them
        without giving up the valid ones (a typo in one watcher must not disable the plugin).
        """
        result = self
        problems: list[str] = []
        overrides = WATCHER_OPTIONS.watcher_view(options, NAME)
        for field in fields(self):
            if field.name in overrides:
                try:
                    result = result.with_values({field.name: overrides[field.name]})
                except ValueError as exc:
                    problems.append(f"{OVERRIDE_PREFIX}{exc}")
        return result, problems
