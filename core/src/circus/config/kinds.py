"""Kinds of option values: how each is converted, checked and typed on a command line.

A :class:`Kind` knows three forms of a value: ``convert`` is lenient (an INI string or a Python
value, for the loader, the Python API and ``add``), ``check`` is strict (the JSON type 0.19's
``set`` table demands, with its error texts), ``from_text`` types a word typed on circusctl's
command line. Family kinds (``env``, ``rlimit_*``, ``stdout_stream.*``, ``hooks.*``) also handle
one item of their mapping. :mod:`circus.config.schema` attaches a kind to each watcher option.
"""

from __future__ import annotations

import json
import math
import re
import resource
from collections.abc import Callable, Mapping
from typing import Any

from circus.config import convert
from circus.signals import to_signum

Converter = Callable[[Any], Any]


class CheckError(ValueError):
    """A JSON value of the wrong type for ``set``/``add``; the message is 0.19's text."""


class Kind:
    """How values of one kind of option are converted, checked and typed on a command line.

    ``convert`` is lenient (INI strings and Python values), ``check`` is strict (JSON types, as
    0.19's ``set`` table), ``from_text`` types a circusctl word. Subclasses override what differs.
    """

    expects = "a value"

    def convert(self, value: Any) -> Any:
        return value

    def check(self, key: str, value: Any) -> Any:
        return value

    def from_text(self, text: str) -> Any:
        return text

    def show(self, value: Any) -> Any:
        """The value as ``options``/``get`` answer it."""
        return value

    # Families (``rlimit_nofile``, ``stdout_stream.filename``, ``hooks.after_start``): one item.

    def convert_item(self, sub: str, value: Any) -> Any:
        raise ValueError(f"{sub!r}: not a family")

    def check_item(self, key: str, sub: str, value: Any) -> Any:
        raise CheckError(f"unknown key {key!r}")

    def item_from_text(self, sub: str, text: str) -> Any:
        return text


class IntKind(Kind):
    """Integers; ``set`` clamps below ``minimum`` (0.19 makes a negative ``numprocesses`` 0)."""

    expects = "an integer"

    def __init__(self, minimum: int | None = None) -> None:
        self.minimum = minimum

    def convert(self, value: Any) -> int:
        return convert.to_int(value, minimum=self.minimum)

    def check(self, key: str, value: Any) -> int:
        if not isinstance(value, int):  # JSON ``true`` passes, as in 0.19 (bool is an int)
            raise CheckError(f"{key!r} isn't an integer")
        number = int(value)
        return number if self.minimum is None else max(self.minimum, number)

    def from_text(self, text: str) -> int:
        return convert.to_int(text)


class FloatKind(Kind):
    expects = "a number"

    def __init__(self, minimum: float | None = None, maximum: float | None = None) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def convert(self, value: Any) -> float:
        return convert.to_float(value, minimum=self.minimum, maximum=self.maximum)

    def check(self, key: str, value: Any) -> float:
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise CheckError(f"{key!r} isn't a number")
        if self.minimum is not None and value < self.minimum:
            raise CheckError(f"{key!r} must be at least {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise CheckError(f"{key!r} must be at most {self.maximum:g}")
        return float(value)  # `options` reports these as floats, as 0.19 stores them

    def from_text(self, text: str) -> float:
        return convert.to_float(text)


def seconds() -> FloatKind:
    """A duration: 0 up to :data:`circus.config.convert.MAX_SECONDS`."""
    return FloatKind(0.0, convert.MAX_SECONDS)


class BoolKind(Kind):
    expects = "a boolean"

    def convert(self, value: Any) -> bool:
        return convert.to_bool(value)

    def check(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise CheckError(f"{key!r} isn't a valid boolean")
        return value

    def from_text(self, text: str) -> bool:
        return convert.to_bool(text)


class StrKind(Kind):
    """A string; ``optional`` ones take ``None`` or an empty string as "not set"."""

    expects = "a string"

    def __init__(self, *, optional: bool = False, conv: Converter | None = None) -> None:
        self.optional = optional
        self._conv = conv

    def convert(self, value: Any) -> Any:
        if self._conv is not None:
            return self._conv(value)
        return convert.to_optional_str(value) if self.optional else convert.to_str(value)

    def check(self, key: str, value: Any) -> Any:
        if not isinstance(value, str):
            raise CheckError(f"{key!r} isn't a string")
        return value


class SignalKind(Kind):
    """A signal: a name or number in files, an integer in ``set`` (circusctl converts names)."""

    expects = "a signal"

    def convert(self, value: Any) -> int:
        return convert.to_signal(value)

    def check(self, key: str, value: Any) -> int:
        if not isinstance(value, int):
            raise CheckError(f"{key!r} isn't an integer")
        try:
            return to_signum(value)
        except ValueError as exc:
            raise CheckError(f"{key!r} isn't a valid signal: {exc}") from None

    def from_text(self, text: str) -> int:
        return to_signum(text)


class IdKind(Kind):
    """A user or group: a number or a name that exists here (resolved to the numeric id)."""

    expects = "a user or group"

    def __init__(self, resolve: Callable[[Any], int]) -> None:
        self._resolve = resolve

    def convert(self, value: Any) -> int | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return self._resolve(value)

    def check(self, key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise CheckError(f"{key!r} isn't an integer or string")
        try:
            return self._resolve(value)
        except ValueError as exc:
            raise CheckError(f"{key!r}: {exc}") from None

    def from_text(self, text: str) -> int | str:
        return int(text) if text.strip().isdigit() else text


class ArgsKind(Kind):
    """``args``: a string (split like a shell would) or a list of strings."""

    expects = "a string or a list of strings"

    def convert(self, value: Any) -> str | list[str]:
        if value is None:
            return ""
        if isinstance(value, list | tuple):
            return [convert.to_str(item) for item in value]
        return convert.to_str(value)

    def check(self, key: str, value: Any) -> Any:
        if isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            return value
        raise CheckError(f"{key!r} isn't a string or a list of strings")


def _str_dict(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a mapping of strings")
    return {convert.to_str(k): convert.to_str(v) for k, v in value.items()}


class EnvKind(Kind):
    """``env``: a mapping of strings (``K=V,K2=V2`` or a JSON object on a command line)."""

    expects = "a mapping of strings"

    def convert(self, value: Any) -> dict[str, str]:
        return _str_dict(value, "env")

    def check(self, key: str, value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise CheckError(f"{key!r} isn't a valid object")
        for name, item in value.items():
            if not isinstance(item, str):
                raise CheckError(f"{name!r} isn't a string")
        return value

    def from_text(self, text: str) -> dict[str, str]:
        return parse_env(text)

    def show(self, value: Any) -> Any:
        return dict(value)


def parse_env(text: str) -> dict[str, str]:
    """``K=V,K2=V2`` (the form ``options`` prints env in) or a JSON object -> dict of strings."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            loaded = json.loads(stripped)
        except ValueError as exc:
            raise ValueError(f"invalid JSON object: {exc}") from None
        if not isinstance(loaded, dict):
            raise ValueError("expected a JSON object")
        return {str(k): str(v) for k, v in loaded.items()}
    env: dict[str, str] = {}
    for item in stripped.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE pairs separated by commas, got {item!r}")
        env[key.strip()] = value.strip()
    return env


def rlimit_name(key: str) -> str:
    """``NOFILE`` -> ``nofile``; ValueError when the platform has no such limit."""
    name = key.lower()
    if not name or not hasattr(resource, "RLIMIT_" + name.upper()):
        known = sorted(n[7:].lower() for n in dir(resource) if n.startswith("RLIMIT_"))
        raise ValueError(f"unknown resource limit {name!r}; known: {', '.join(known)}")
    return name


class RlimitsKind(Kind):
    """``rlimit_<name>``: a non-negative int, or empty/``-1``/``unlimited`` for no limit."""

    expects = "a mapping of resource limits"

    def convert(self, value: Any) -> dict[str, int | None]:
        if not isinstance(value, Mapping):
            raise ValueError("rlimits must be a mapping")
        return {rlimit_name(str(k)): convert.to_rlimit(v) for k, v in value.items()}

    def convert_item(self, sub: str, value: Any) -> int | None:
        return convert.to_rlimit(value)

    def check(self, key: str, value: Any) -> Any:
        raise CheckError(f"unknown key {key!r}")

    def check_item(self, key: str, sub: str, value: Any) -> Any:
        if getattr(resource, "RLIMIT_" + sub.upper(), None) is None:
            raise CheckError(f"{key!r} isn't a valid rlimit setting")
        # null means unlimited (RLIM_INFINITY)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise CheckError(f"{value!r} rlimit value isn't a valid int")
        return value

    def item_from_text(self, sub: str, text: str) -> int:
        if text.strip().lower() in ("unlimited", "infinity"):
            return -1
        return convert.to_int(text, minimum=-1)


#: stream options circusctl sends as integers
STREAM_INT_OPTIONS = frozenset({"max_bytes", "backup_count", "rotate_interval"})


class StreamKind(Kind):
    """``stdout_stream``/``stderr_stream``: the whole object (with ``class``) or one option."""

    expects = "a stream object"

    def convert(self, value: Any) -> dict[str, str]:
        return _str_dict(value, "stream")

    def convert_item(self, sub: str, value: Any) -> str:
        return convert.to_str(value)

    def check(self, key: str, value: Any) -> Any:
        if not isinstance(value, dict):
            raise CheckError(f"{key!r} isn't a valid object")
        if "class" not in value:
            raise CheckError(f"{key!r} must have a 'class' key")
        return value

    def check_item(self, key: str, sub: str, value: Any) -> Any:
        return value

    def item_from_text(self, sub: str, text: str) -> Any:
        return convert.to_int(text, minimum=0) if sub in STREAM_INT_OPTIONS else text

    def show(self, value: Any) -> Any:
        return {k: v for k, v in value.items() if k != "class"}


#: hooks a watcher runs (contract 8.5)
HOOK_NAMES = (
    "before_start",
    "after_start",
    "before_stop",
    "after_stop",
    "before_spawn",
    "after_spawn",
    "before_signal",
    "after_signal",
    "before_reap",
    "after_reap",
    "extended_stats",
)


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


def parse_hooks(text: str) -> dict[str, str]:
    """``hook:dotted.callable,hook2:other.callable`` -> ``{hook: callable}``."""
    hooks: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, target = item.partition(":")
        if not sep or not name.strip() or not target.strip():
            raise ValueError(f"expected HOOK:dotted.callable pairs, got {item!r}")
        hooks[name.strip()] = target.strip()
    return hooks


class HooksKind(Kind):
    """``hooks.<hook> = dotted.callable[, ignore_errors]``."""

    expects = "a mapping of hooks"

    def convert(self, value: Any) -> dict[str, str]:
        hooks = _str_dict(value, "hooks")
        return {hook: check_hook(hook, target) for hook, target in hooks.items()}

    def convert_item(self, sub: str, value: Any) -> str:
        return check_hook(sub, value)

    def check(self, key: str, value: Any) -> Any:
        if not isinstance(value, dict):
            raise CheckError(f"{value!r} isn't a valid hook dict")
        for name, item in value.items():
            self.check_item(key, name, item)
        return value

    def check_item(self, key: str, sub: str, value: Any) -> Any:
        if sub not in HOOK_NAMES:
            raise CheckError(f"Unknown hook {sub!r}")
        if not isinstance(value, str):
            raise CheckError(f"hook {sub!r} isn't a string")
        return value

    def from_text(self, text: str) -> dict[str, str]:
        return parse_hooks(text)
