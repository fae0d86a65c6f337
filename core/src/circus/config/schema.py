"""How a watcher option is declared: its kind, its default and what ``set`` does with it.

Every watcher option is declared once, as a field of :class:`~circus.config.model.WatcherConfig`
written with :func:`option` (or :func:`family` for ``rlimit_*``/``stdout_stream.*``/``hooks.*``).
The declaration carries everything the rest of circus needs to know about the option:

* its **kind** (:class:`Kind`): how an INI string or a Python value is converted (the loader, the
  Python API, ``add``), how a JSON value sent to ``set``/``add`` is checked (with the error texts
  of Circus 0.19, errno 3), and how circusctl turns the word typed on a command line into the JSON
  value to send;
* its **default** (the dataclass default);
* its **effect** when changed by ``set`` (:class:`Effect`): not settable, stored, stored and a
  graceful reload, or accepted and ignored (0.19 accepts a few keys it then ignores);
* whether ``options``/``get`` show it, and under which name.

So the INI loader (:mod:`circus.config.watcher_options`), ``set``/``add``/``options``/``get``
(:mod:`circus.commands.options`, :mod:`circus.commands.settings`), circusctl
(:mod:`circus.ctl.setvalues`) and plugin sections (:mod:`circus.config.plugin_section`) all read
the same table, and adding an option is one line in the model.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import re
import resource
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from circus.config import convert
from circus.signals import to_signum

T = TypeVar("T")
Converter = Callable[[Any], Any]


class Effect(enum.Enum):
    """What ``set`` does with a key (contract 3.3, ``set``)."""

    NOT_SETTABLE = "not settable"  # ``set``/``add`` answer ``unknown key``
    STORE = "store"  # stored, then the process count is managed
    RELOAD = "reload"  # stored, then a graceful reload of a running watcher
    IGNORE = "ignore"  # accepted and ignored (as 0.19 does)


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

    def __init__(self, minimum: float | None = None) -> None:
        self.minimum = minimum

    def convert(self, value: Any) -> float:
        return convert.to_float(value, minimum=self.minimum)

    def check(self, key: str, value: Any) -> float:
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise CheckError(f"{key!r} isn't a number")
        if self.minimum is not None and value < self.minimum:
            raise CheckError(f"{key!r} must be at least {self.minimum:g}")
        return float(value)  # `options` reports these as floats, as 0.19 stores them

    def from_text(self, text: str) -> float:
        return convert.to_float(text)


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


class Option:
    """One watcher option: see the module docstring. ``name`` is set from the model's field."""

    def __init__(
        self,
        kind: Kind,
        effect: Effect = Effect.NOT_SETTABLE,
        *,
        shown: bool = False,
        prefix: str | None = None,
        plugin: bool = True,
        shown_as: str | None = None,
    ) -> None:
        self.name = ""
        self._shown_as = shown_as
        self.kind = kind
        self.effect = effect
        #: listed by the ``options`` command (0.19's key list, plus ours)
        self.shown = shown
        #: the family's key prefix (``rlimit_``, ``stdout_stream.``, ``hooks.``)
        self.prefix = prefix
        #: a ``[plugin:NAME]`` section may set it on the plugin's watcher
        self.plugin = plugin

    @property
    def shown_as(self) -> str:
        """The key ``options``/``get`` use (``stdout_stream_conf`` for ``stdout_stream``)."""
        return self._shown_as or self.name

    @property
    def settable(self) -> bool:
        return self.effect is not Effect.NOT_SETTABLE

    def __repr__(self) -> str:
        return f"Option({self.name!r}, {type(self.kind).__name__}, {self.effect.value})"


_METADATA_KEY = "circus.option"


def option(
    default: T,
    kind: Kind,
    effect: Effect = Effect.NOT_SETTABLE,
    *,
    shown: bool = True,
    plugin: bool = True,
) -> T:
    """Declare a watcher option as a model field (typed as its default for mypy)."""
    meta = {_METADATA_KEY: Option(kind, effect, shown=shown, plugin=plugin)}
    found: T = dataclasses.field(default=default, metadata=meta)
    return found


def family(
    factory: Callable[[], T],
    kind: Kind,
    effect: Effect = Effect.NOT_SETTABLE,
    *,
    prefix: str | None = None,
    shown: bool = False,
    shown_as: str | None = None,
    plugin: bool = True,
) -> T:
    """Declare a mapping-valued option (``env``, ``rlimits``, streams, ``hooks``)."""
    shown = shown or shown_as is not None
    declared = Option(kind, effect, shown=shown, prefix=prefix, plugin=plugin, shown_as=shown_as)
    meta = {_METADATA_KEY: declared}
    found: T = dataclasses.field(default_factory=factory, metadata=meta)
    return found


def legacy(name: str, kind: Kind, effect: Effect) -> Option:
    """An option that is not a field (0.19's ``set`` accepts ``retry_in`` and ignores it)."""
    declared = Option(kind, effect)
    declared.name = name
    return declared


def options_of(model: type[Any]) -> dict[str, Option]:
    """The declared options of a dataclass, by field name, in declaration order."""
    table: dict[str, Option] = {}
    for fld in dataclasses.fields(model):
        declared = fld.metadata.get(_METADATA_KEY)
        if isinstance(declared, Option):
            declared.name = fld.name
            table[fld.name] = declared
    return table


def defaults_of(model: type[Any], table: Mapping[str, Option]) -> dict[str, Any]:
    """Default value of each option (factories called), for documentation and tests."""
    values: dict[str, Any] = {}
    for fld in dataclasses.fields(model):
        if fld.name not in table:
            continue
        if fld.default is not dataclasses.MISSING:
            values[fld.name] = fld.default
        elif fld.default_factory is not dataclasses.MISSING:
            values[fld.name] = fld.default_factory()
    return values


@dataclass(frozen=True)
class Found:
    """A key looked up in the table: the option, and the sub-key of a family (``nofile``)."""

    option: Option
    sub: str | None = None


def lookup(table: Mapping[str, Option], key: str) -> Found | None:
    """``numprocesses`` -> the option; ``rlimit_nofile`` -> (rlimits, ``nofile``); else None."""
    found = table.get(key)
    if found is not None:
        return Found(found)
    for opt in table.values():
        if opt.prefix and key.startswith(opt.prefix) and len(key) > len(opt.prefix):
            return Found(opt, key[len(opt.prefix) :])
    return None


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
