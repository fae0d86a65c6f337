"""``PluginOptions``: the options a plugin reads, named once for circusd and for the parser.

circusd judges the keys of a ``[plugin:NAME]`` section against the plugin's ``config_options``
("did you mean", refused under ``--strict``). A list of names written beside the parsing code
drifts from it: an option the parser learns but the list misses is then reported as a typo, and
a misspelt option the list misses is never caught. So a plugin names its options once::

    OPTIONS = PluginOptions("host", "port")

    class Mine(CircusPlugin):
        config_options = OPTIONS.names

and parses through ``OPTIONS.view(config)``, a read-only mapping that raises
:class:`UndeclaredOption` when the code reads a name it did not declare, so the plugin's own
tests catch an option added to the parser and forgotten in the declaration.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class UndeclaredOption(RuntimeError):
    """The plugin's code read an option it does not declare (a bug in the plugin, not a user
    mistake: it is not a ``KeyError``, so ``config.get(name)`` does not hide it)."""


class PluginOptions:
    """An immutable set of option names, with a view of a config that only reads those."""

    __slots__ = ("names",)

    def __init__(self, *names: str) -> None:
        self.names: frozenset[str] = frozenset(names)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.names))

    def __repr__(self) -> str:
        return f"PluginOptions({', '.join(map(repr, self))})"

    def extend(self, *names: str) -> PluginOptions:
        """These options and ``names`` (a plugin built on a base that reads options too)."""
        return PluginOptions(*self.names, *names)

    def view(self, config: Mapping[str, Any]) -> Mapping[str, Any]:
        """``config`` limited to the declared options; reading any other name raises
        :class:`UndeclaredOption` (absent declared options behave as in any mapping)."""
        return _DeclaredView(self, config)

    def watcher_view(self, options: Mapping[str, Any], plugin: str) -> Mapping[str, Any]:
        """A watcher's keys addressed to ``plugin`` (``flapping.max_retry`` -> ``max_retry``,
        from the ``options`` reply), limited to the declared names as :meth:`view` is: a plugin
        reads its per-watcher keys (``watcher_options``) through this, so circusd judges a
        watcher's keys against exactly what the code reads."""
        prefix = plugin + "."
        return self.view({key[len(prefix):]: value for key, value in options.items()
                          if key.startswith(prefix)})


class _DeclaredView(Mapping[str, Any]):
    __slots__ = ("_config", "_options")

    def __init__(self, options: PluginOptions, config: Mapping[str, Any]) -> None:
        self._options = options
        self._config = config

    def __getitem__(self, key: str) -> Any:
        if key not in self._options.names:
            raise UndeclaredOption(f"option {key!r} is read but not declared in {self._options!r}")
        return self._config[key]

    def __iter__(self) -> Iterator[str]:
        return (key for key in self._config if key in self._options.names)

    def __len__(self) -> int:
        return sum(1 for _ in self)
