"""Build a validated :class:`WatcherConfig` from option values.

One entry point, :func:`watcher_from_options`, serves the INI loader (values are raw strings), the
Python API and the ``add`` command (values are already typed): every value goes through the
converters of :mod:`circus.config.convert`, so the same rules apply everywhere. Mistakes raise
:class:`~circus.errors.ConfigError` with ``section="watcher:NAME"`` and the offending ``key``; the
loader adds the file path, the commands turn it into an errno-3 reply.
"""

from __future__ import annotations

import re
import resource
from collections.abc import Callable, Mapping
from typing import Any

from circus.config import convert
from circus.config.model import WatcherConfig
from circus.errors import ConfigError

Converter = Callable[[Any], Any]


def _int_min(minimum: int) -> Converter:
    return lambda value: convert.to_int(value, minimum=minimum)


def _float_min(minimum: float) -> Converter:
    return lambda value: convert.to_float(value, minimum=minimum)


def _py_version(value: Any) -> str | None:
    text = convert.to_optional_str(value)
    if text is not None and not re.fullmatch(r"\d+\.\d+", text.strip()):
        raise ValueError(f"invalid Python version {text!r}: expected X.Y, e.g. 3.12")
    return text.strip() if text else None


def _args(value: Any) -> str | list[str]:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return [convert.to_str(item) for item in value]
    return convert.to_str(value)


def _argv(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("argv must be a non-empty list of strings")
    return [convert.to_str(item) for item in value]


def _optional(conv: Converter) -> Converter:
    def wrapped(value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return conv(value)

    return wrapped


def _cmd(value: Any) -> str:
    text = convert.to_str(value)
    if not text.strip():
        raise ValueError("cmd must not be empty")
    return text


# Typed watcher options (contract 8.3) and how to convert each. Also the list of names that
# count as "watcher options" in a plugin section.
WATCHER_OPTIONS: dict[str, Converter] = {
    "cmd": _cmd,
    "args": _args,
    "argv": _argv,
    "numprocesses": _int_min(0),
    "warmup_delay": _float_min(0.0),
    "working_dir": convert.to_optional_str,
    "shell": convert.to_bool,
    "shell_args": convert.to_optional_str,
    "uid": _optional(convert.to_uid),
    "gid": _optional(convert.to_gid),
    "copy_env": convert.to_bool,
    "copy_path": convert.to_bool,
    "send_hup": convert.to_bool,
    "stop_signal": convert.to_signal,
    "stop_children": convert.to_bool,
    "graceful_timeout": _float_min(0.0),
    "max_retry": _int_min(-1),
    "priority": convert.to_int,
    "singleton": convert.to_bool,
    "use_sockets": convert.to_bool,
    "autostart": convert.to_bool,
    "respawn": convert.to_bool,
    "on_demand": convert.to_bool,
    "max_age": _int_min(0),
    "max_age_variance": _int_min(0),
    "executable": convert.to_optional_str,
    "close_child_stdin": convert.to_bool,
    "close_child_stdout": convert.to_bool,
    "close_child_stderr": convert.to_bool,
    "stdin_socket": convert.to_optional_str,
    "virtualenv": convert.to_optional_str,
    "virtualenv_py_ver": _py_version,
    "check_flapping": convert.to_bool,
}

# Prefixed families of watcher options (``rlimit_nofile``, ``stdout_stream.filename``, ...).
PREFIXES = ("rlimit_", "stdout_stream.", "stderr_stream.", "hooks.")

HOOK_NAMES = frozenset(
    {
        "before_start",
        "after_start",
        "before_spawn",
        "after_spawn",
        "before_stop",
        "after_stop",
        "before_signal",
        "after_signal",
        "before_reap",
        "after_reap",
        "extended_stats",
    }
)


def is_watcher_option(key: str) -> bool:
    """True for the names a watcher understands (typed options and prefixed families)."""
    return key in WATCHER_OPTIONS or key.startswith(PREFIXES) or key == "env"


def rlimit_name(key: str) -> str:
    """``rlimit_NOFILE`` -> ``nofile``; ValueError when the platform has no such limit."""
    name = key[len("rlimit_") :].lower()
    if not name or not hasattr(resource, "RLIMIT_" + name.upper()):
        known = sorted(n[7:].lower() for n in dir(resource) if n.startswith("RLIMIT_"))
        raise ValueError(f"unknown resource limit {name!r}; known: {', '.join(known)}")
    return name


def check_hook(hook: str, value: Any) -> str:
    """Validate ``hooks.<hook> = dotted.callable[, bool]`` and return the value as a string."""
    if hook not in HOOK_NAMES:
        raise ValueError(f"unknown hook {hook!r}; known hooks: {', '.join(sorted(HOOK_NAMES))}")
    text = convert.to_str(value)
    target, _, flag = text.partition(",")
    if not re.fullmatch(r"[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?", target.strip()):
        raise ValueError(f"invalid hook {text!r}: expected dotted.path.to.callable[, true|false]")
    if flag.strip():
        convert.to_bool(flag)
    return text


def parse_hook(value: str) -> tuple[str, bool]:
    """``"pkg.mod.func, true"`` -> ``("pkg.mod.func", True)``: the callable and "ignore errors"."""
    target, _, flag = value.partition(",")
    return target.strip(), convert.to_bool(flag) if flag.strip() else False


def _str_dict(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a mapping of strings")
    return {convert.to_str(k): convert.to_str(v) for k, v in value.items()}


class _Builder:
    """Accumulates converted values; one instance per watcher being built."""

    def __init__(self, name: str) -> None:
        self.section = f"watcher:{name}"
        self.values: dict[str, Any] = {}
        self.rlimits: dict[str, int | None] = {}
        self.streams: dict[str, dict[str, str]] = {"stdout_stream": {}, "stderr_stream": {}}
        self.hooks: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self.extra: dict[str, str] = {}

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, section=self.section, key=key)

    def add(self, key: str, value: Any) -> None:
        try:
            self._add(key, value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def _add(self, key: str, value: Any) -> None:
        if key in WATCHER_OPTIONS:
            self.values[key] = WATCHER_OPTIONS[key](value)
        elif key.startswith("rlimit_"):
            self.rlimits[rlimit_name(key)] = convert.to_rlimit(value)
        elif key == "rlimits":
            for sub, limit in _dict(value, "rlimits").items():
                self.rlimits[rlimit_name("rlimit_" + sub)] = convert.to_rlimit(limit)
        elif key.startswith(("stdout_stream.", "stderr_stream.")):
            stream, _, opt = key.partition(".")
            self.streams[stream][opt] = convert.to_str(value)
        elif key in self.streams:
            self.streams[key].update(_str_dict(value, key))
        elif key.startswith("hooks."):
            hook = key[len("hooks.") :]
            self.hooks[hook] = check_hook(hook, value)
        elif key == "hooks":
            for hook, target in _str_dict(value, "hooks").items():
                self.hooks[hook] = check_hook(hook, target)
        elif key == "env":
            self.env.update(_str_dict(value, "env"))
        else:
            self.extra[key] = value if isinstance(value, str) else str(value)


def _dict(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a mapping")
    return value


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
    return WatcherConfig(
        name=name,
        rlimits=builder.rlimits,
        stdout_stream=builder.streams["stdout_stream"],
        stderr_stream=builder.streams["stderr_stream"],
        hooks=builder.hooks,
        env=builder.env,
        extra=builder.extra,
        **values,
    )


def _str_dict_or_error(builder: _Builder, key: str, value: Any) -> dict[str, str]:
    try:
        return _str_dict(value, key)
    except ValueError as exc:
        raise builder.error(key, str(exc)) from None
