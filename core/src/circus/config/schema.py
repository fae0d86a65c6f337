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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from circus.config.kinds import Kind

T = TypeVar("T")


class Effect(enum.Enum):
    """What ``set`` does with a key (contract 3.3, ``set``)."""

    NOT_SETTABLE = "not settable"  # ``set``/``add`` answer ``unknown key``
    STORE = "store"  # stored, then the process count is managed
    RELOAD = "reload"  # stored, then a graceful reload of a running watcher
    IGNORE = "ignore"  # accepted and ignored (as 0.19 does)


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
