"""Watcher keys addressed to a plugin (``flapping.max_retry = 7``), judged against the plugin.

0.19 keeps every unknown watcher key as a free-form option, so ``flapping.max_rety = 7`` or
``flaping.max_retry = 7`` loads, is never read, and the override silently has no effect. A
plugin that declares the per-watcher keys it reads (its ``watcher_options``, a
:class:`~circus.plugins.options.PluginOptions` of the names after ``<name>.``) has them
checked here:

* ``P.K`` where ``P`` is the short name of an installed plugin (entry point group
  ``circus.plugins``) or of a ``[plugin:X]`` section's ``use`` (its short name or its class's
  ``name``) and ``K`` is not declared: a warning naming file, section and key, with "did you
  mean" among the declared keys;
* ``P.K`` where ``P`` is no plugin but close to one that declares per-watcher keys
  (``flaping``): a warning with the key it most likely meant;
* anything else (a prefix near no plugin, a plugin that declares nothing) is accepted silently,
  as in 0.19: free-form keys are also read back with ``get``/``options`` by other tools.

Every finding is a :class:`~circus.config.checks.ConfigWarning` (the key is kept, as 0.19 does),
which the loader raises under ``--strict``. Plugins are imported lazily and only when a watcher
has such a key, so a config without any pays nothing; the plugin layer sits above config.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from circus.config.checks import ConfigWarning, suggest
from circus.config.model import PluginConfig
from circus.errors import CircusError

#: the class attribute by which a plugin declares its per-watcher keys (names without prefix)
WATCHER_OPTIONS_ATTRIBUTE = "watcher_options"
KEPT = "kept as a free-form option, as 0.19 does"


@dataclass(frozen=True)
class AddressedKey:
    """A dotted free-form key written in a ``[watcher:X]`` section, and where."""

    key: str
    section: str
    path: str | None


def _declared(cls: type | None) -> frozenset[str] | None:
    """The per-watcher keys ``cls`` declares; ``None`` when it declares none (or fails to load)."""
    declared = getattr(cls, WATCHER_OPTIONS_ATTRIBUTE, None)
    names = getattr(declared, "names", declared)  # a PluginOptions, or any collection of names
    if names is None or isinstance(names, str) or not isinstance(names, Iterable):
        return None
    return frozenset(str(name) for name in names)


def _same(cls: type) -> type:
    return cls


class _Plugins:
    """The plugins a watcher key may address, by short name, each loaded on first need."""

    def __init__(self, sections: Iterable[PluginConfig]) -> None:
        from importlib.metadata import entry_points  # lazily: 2.7 MB circusd rarely needs

        from circus.plugins import registry  # lazily: the plugin layer sits above config

        self._registry = registry
        self._loaders: dict[str, Callable[[], type | None]] = {
            ep.name: functools.partial(self._load, ep.name)
            for ep in entry_points(group=registry.GROUP)
        }
        self._cache: dict[str, frozenset[str] | None] = {}
        for section in sections:
            cls = self._load(section.use)
            if cls is None:
                continue
            short = self._registry.resolve(section.use, load=False).name
            for name in {short, str(getattr(cls, "name", "") or "")}:
                if name and not self._registry.is_dotted(name):
                    self._loaders[name] = functools.partial(_same, cls)

    def _load(self, use: str) -> type | None:
        try:
            return self._registry.resolve(use).load()
        except CircusError:  # a broken plugin is reported where it is used, not here
            return None

    def names(self) -> list[str]:
        return sorted(self._loaders)

    def declared(self, name: str) -> frozenset[str] | None:
        if name not in self._cache:
            self._cache[name] = _declared(self._loaders[name]())
        return self._cache[name]


def plugin_key_warnings(
    keys: Iterable[AddressedKey], sections: Iterable[PluginConfig]
) -> list[ConfigWarning]:
    """The warnings for ``keys`` (dotted free-form keys of watcher sections) given the
    ``[plugin:X]`` ``sections`` of the same config."""
    keys = list(keys)
    if not keys:
        return []
    plugins = _Plugins(sections)
    found: list[ConfigWarning] = []
    for written in keys:
        message = _judge(written.key, plugins)
        if message is not None:
            found.append(ConfigWarning(message, path=written.path, section=written.section,
                                       key=written.key))
    return found


def _judge(key: str, plugins: _Plugins) -> str | None:
    prefix, _, rest = key.partition(".")
    if prefix in plugins.names():
        declared = plugins.declared(prefix)
        if declared is None or rest in declared:
            return None
        meant = suggest(rest, declared)
        hint = (f"did you mean '{prefix}.{meant}'?" if meant else
                f"it reads {', '.join(f'{prefix}.{n}' for n in sorted(declared)) or 'none'}")
        return f"not a key the {prefix} plugin reads; {hint} ({KEPT})"
    # only the plugins whose name is close are loaded, nearest first; one that reads no
    # per-watcher key cannot be what a misspelt prefix meant
    near = plugins.names()
    while (plugin := suggest(prefix, near)) is not None:
        declared = plugins.declared(plugin)
        if declared:
            meant = suggest(rest, declared) or rest
            return f"no plugin is named {prefix!r}; did you mean '{plugin}.{meant}'? ({KEPT})"
        near.remove(plugin)
    return None
