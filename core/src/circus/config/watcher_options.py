"""Build a validated :class:`WatcherConfig` from option values.

One entry point, :func:`watcher_from_options`, serves the INI loader (values are raw strings), the
Python API and the ``add`` command (values are already typed): every value goes through the
converters of :mod:`circus.config.convert`, so the same rules apply everywhere. Mistakes raise
:class:`~circus.errors.ConfigError` with ``section="watcher:NAME"`` and the offending ``key``; the
loader adds the file path, the commands turn it into an errno-3 reply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from circus.config.kinds import (
    EnvKind,
    HooksKind,
    RlimitsKind,
    StreamKind,
    check_hook,
    parse_hook,
    rlimit_name,
)
from circus.config.model import LEGACY_SET_KEYS, WATCHER_OPTIONS, WatcherConfig
from circus.config.schema import Found, lookup
from circus.errors import ConfigError

_MAPPINGS = (EnvKind, HooksKind, RlimitsKind, StreamKind)
__all__ = [
    "check_hook", "is_watcher_option", "parse_hook", "settable", "watcher_from_options",
]  # fmt: skip

#: the families whose values are mappings, collected key by key
_FAMILIES = tuple(name for name, opt in WATCHER_OPTIONS.items() if isinstance(opt.kind, _MAPPINGS))


def settable(key: str) -> Found | None:
    """The option ``set`` changes for ``key`` (and the family item), or None if it has none."""
    found = lookup(WATCHER_OPTIONS, key) or lookup(LEGACY_SET_KEYS, key)
    if found is None or not found.option.settable:
        return None
    return found


def is_watcher_option(key: str) -> bool:
    """True for the names a watcher understands (typed options and prefixed families)."""
    return lookup(WATCHER_OPTIONS, key) is not None


class _Builder:
    """Accumulates converted values; one instance per watcher being built."""

    def __init__(self, name: str) -> None:
        self.section = f"watcher:{name}"
        self.values: dict[str, Any] = {}
        self.mappings: dict[str, dict[str, Any]] = {name: {} for name in _FAMILIES}
        self.extra: dict[str, str] = {}

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, section=self.section, key=key)

    def add(self, key: str, value: Any) -> None:
        try:
            self._add(key, value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def _add(self, key: str, value: Any) -> None:
        found = lookup(WATCHER_OPTIONS, key)
        if found is None:
            self.extra[key] = value if isinstance(value, str) else str(value)
            return
        opt = found.option
        if opt.name in self.mappings:
            target = self.mappings[opt.name]
            if found.sub is None:
                target.update(opt.kind.convert(value))
            else:
                sub = rlimit_name(found.sub) if opt.name == "rlimits" else found.sub
                target[sub] = opt.kind.convert_item(sub, value)
        else:
            self.values[key] = opt.kind.convert(value)


def watcher_from_options(name: str, options: Mapping[str, Any]) -> WatcherConfig:
    """Return a :class:`WatcherConfig` named ``name`` from ``options``.

    ``options`` maps watcher option names (contract 8.3) to typed values or INI strings; the
    prefixed families (``rlimit_*``, ``stdout_stream.*``, ``stderr_stream.*``, ``hooks.*``) and
    the dict forms ``rlimits``/``stdout_stream``/``stderr_stream``/``hooks``/``env`` are accepted;
    unknown keys are kept as free-form strings in ``extra``. ``cmd`` is required. Raises
    :class:`ConfigError` (section ``watcher:NAME``, key = the option) on any invalid value or
    combination (``singleton`` with more than one process, ``copy_path`` or ``virtualenv``
    without ``copy_env``).
    """
    if not name or not name.strip():
        raise ConfigError("watcher name must not be empty", section=f"watcher:{name}")
    builder = _Builder(name)
    for key, value in options.items():
        if key in ("name", "is_plugin", "extra"):
            if key == "extra":
                builder.extra.update(_str_dict_or_error(builder, key, value))
            continue
        builder.add(key, value)
    values = builder.values
    if "cmd" not in values:
        raise builder.error("cmd", "missing required option 'cmd' (the command to run)")
    if values.get("singleton") and values.get("numprocesses", 1) > 1:
        raise builder.error(
            "numprocesses", "a singleton watcher runs at most one process (numprocesses 0 or 1)"
        )
    if values.get("copy_path") and not values.get("copy_env"):
        raise builder.error("copy_path", "copy_path requires copy_env = true")
    if values.get("virtualenv") and not values.get("copy_env"):
        raise builder.error("virtualenv", "virtualenv requires copy_env = true")
    fields: dict[str, Any] = {**builder.mappings, **values}
    return WatcherConfig(name=name, extra=builder.extra, **fields)


def _str_dict_or_error(builder: _Builder, key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise builder.error(key, f"{key} must be a mapping of strings")
    return {str(k): str(v) for k, v in value.items()}
