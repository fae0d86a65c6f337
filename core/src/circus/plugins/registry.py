"""Finding plugin classes: short names from installed distributions, or dotted import paths.

A distribution makes a plugin available by a short name with an entry point::

    [project.entry-points."circus.plugins"]
    logger = "circus_plugin_logger:Logger"

``use = logger`` (config) or ``circus-plugin logger`` (runner) then finds it. Dotted paths
(``pkg.mod.Class`` or ``pkg.mod:Class``) need no registration, as in the original Circus.
One broken distribution must not hide the others, so listing captures load errors per entry.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from circus.errors import CircusError, ConfigError

GROUP = "circus.plugins"
# Keywords the runner and circusd always pass to a plugin's constructor.
RUNTIME_KEYWORDS = ("endpoint", "pubsub_endpoint", "check_delay", "ssh_server")


#: Circus 0.19's dotted paths of its bundled plugins -> (our short name, distribution providing
#: it). ``use = circus.plugins.watchdog.WatchDog`` in an old config keeps working once the
#: distribution is installed, and names what to install when it is not.
ALIASES: dict[str, tuple[str, str]] = {
    "circus.plugins.statsd.StatsdEmitter": ("statsd", "circus-plugin-statsd"),
    "circus.plugins._statsd.StatsdEmitter": ("statsd", "circus-plugin-statsd"),
    # FullStats' per-watcher cpu/mem gauges are part of our statsd plugin
    "circus.plugins.statsd.FullStats": ("statsd", "circus-plugin-statsd"),
    "circus.plugins.flapping.Flapping": ("flapping", "circus-plugin-flapping"),
    "circus.plugins.watchdog.WatchDog": ("watchdog", "circus-plugin-watchdog"),
    "circus.plugins.resource_watcher.ResourceWatcher": (
        "resource_watcher", "circus-plugin-resource-watcher"),
    "circus.plugins.command_reloader.CommandReloader": (
        "command_reloader", "circus-plugin-command-reloader"),
    "circus.plugins.http_observer.HttpObserver": (
        "http_observer", "circus-plugin-http-observer"),
    "circus.plugins.redis_observer.RedisObserver": (
        "redis_observer", "circus-plugin-redis-observer"),
}


class PluginError(CircusError):
    """A plugin cannot be found, loaded or configured."""


class PluginNotFound(PluginError):
    """No installed plugin has that short name, or a dotted path does not import."""


class PluginLoadError(PluginError):
    """The plugin was found but importing it or reaching its class failed."""


class PluginConflict(PluginError):
    """Two distributions register the same short name: the choice would be arbitrary."""


@dataclass(frozen=True)
class PluginInfo:
    """One entry of ``circus-plugin --list``."""

    name: str
    class_path: str
    dist_name: str | None
    version: str | None
    error: str | None = None


@dataclass
class PluginSpec:
    """A resolved ``use`` value: where the class lives and which distribution provides it."""

    name: str
    class_path: str
    dist_name: str | None = None
    version: str | None = None
    _entry_point: EntryPoint | None = field(default=None, repr=False, compare=False)

    def load(self) -> type:
        """Import and return the class; :class:`PluginLoadError` explains a failure."""
        try:
            obj = self._entry_point.load() if self._entry_point else _import_path(self.class_path)
        except PluginError:
            raise
        except Exception as exc:
            raise PluginLoadError(
                f"plugin {self.name!r} ({self.class_path}) failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not inspect.isclass(obj):
            raise PluginLoadError(f"plugin {self.name!r}: {self.class_path} is not a class")
        return obj

    def check_options(self, options: dict[str, Any]) -> None:
        """Refuse options the plugin cannot be constructed with, before anything starts.

        Binds the constructor signature the way the runner will call it (keywords only), so a
        missing required option (the seed Logger's ``filename``) or an unexpected one is
        reported at config load; then the class's own ``check_config`` classmethod, if any.
        """
        cls = self.load()
        keywords = dict.fromkeys(RUNTIME_KEYWORDS)
        keywords.update(options)
        try:
            inspect.signature(cls).bind(**keywords)
        except TypeError as exc:
            raise ConfigError(f"plugin {self.name!r} ({self.class_path}): {exc}") from None
        except ValueError:  # no introspectable signature: nothing to check
            pass
        checker = getattr(cls, "check_config", None)
        if callable(checker):
            checker({str(k): v for k, v in options.items()})


def _import_path(path: str) -> Any:
    """``pkg.mod.Class``, ``pkg.mod.Outer.Inner`` or ``pkg.mod:Class``."""
    if ":" in path:
        module_name, _, attr_path = path.partition(":")
        candidates = [(module_name, attr_path)]
    else:
        parts = path.split(".")
        candidates = [
            (".".join(parts[:i]), ".".join(parts[i:])) for i in range(len(parts) - 1, 0, -1)
        ]
    if not all(candidates[0]) or any(not part for part in path.replace(":", ".").split(".")):
        raise PluginNotFound(f"{path!r} is not a dotted path like 'package.module.Class'")
    missing = ""
    for module_name, attr_path in candidates:
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # only "this very module does not exist" means: try a shorter module path
            if exc.name is None or not (module_name + ".").startswith(exc.name + "."):
                raise
            missing = missing or exc.name
            continue
        try:
            for attr in attr_path.split("."):
                obj = getattr(obj, attr)
        except AttributeError:
            if missing:
                break
            raise PluginNotFound(
                f"cannot import {path!r}: module {module_name!r} has no attribute {attr_path!r}"
            ) from None
        return obj
    raise PluginNotFound(f"cannot import {path!r}: no module named {missing!r}")


def _entry_points() -> dict[str, list[EntryPoint]]:
    """Entry points of the group by name, duplicates of one distribution collapsed."""
    by_name: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=GROUP):
        found = by_name.setdefault(ep.name, [])
        if not any(_dist(other) == _dist(ep) and other.value == ep.value for other in found):
            found.append(ep)
    return by_name


def _dist(ep: EntryPoint) -> tuple[str | None, str | None]:
    dist = ep.dist
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def _spec(ep: EntryPoint) -> PluginSpec:
    dist_name, version = _dist(ep)
    return PluginSpec(ep.name, ep.value, dist_name, version, _entry_point=ep)


def _conflict(name: str, eps: list[EntryPoint]) -> PluginConflict:
    claims = ", ".join(f"{_dist(ep)[0] or '?'} ({ep.value})" for ep in eps)
    return PluginConflict(
        f"plugin name {name!r} is registered by several distributions: {claims}; "
        "uninstall one or use a dotted path"
    )


def installed() -> list[PluginInfo]:
    """Every plugin registered under a short name, sorted, each with its load error if any."""
    infos = []
    for name, eps in sorted(_entry_points().items()):
        for ep in eps:
            spec = _spec(ep)
            error = str(_conflict(name, eps)) if len(eps) > 1 else None
            if error is None:
                try:
                    spec.load()
                except PluginError as exc:
                    error = str(exc)
            infos.append(
                PluginInfo(name, spec.class_path, spec.dist_name, spec.version, error)
            )
    return infos


def _not_found(use: str, names: list[str]) -> PluginNotFound:
    listing = ", ".join(names) if names else "none"
    message = f"unknown plugin {use!r}; installed plugins: {listing}"
    close = difflib.get_close_matches(use, names, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    return PluginNotFound(message)


def is_dotted(use: str) -> bool:
    return "." in use or ":" in use


def resolve(use: str, *, load: bool = True) -> PluginSpec:
    """The plugin named by ``use`` (a short name or a dotted path).

    A 0.19 dotted path of a bundled plugin (:data:`ALIASES`) resolves to our distribution's
    entry point, or fails naming the distribution to install.

    With ``load`` (the default) the class is imported now, so a broken plugin is reported
    when the configuration loads rather than when its process first starts.
    """
    use = use.strip()
    if not use:
        raise PluginNotFound("empty plugin name; give a short name or a dotted path")
    alias = ALIASES.get(use.replace(":", "."))
    if alias is not None:
        short, dist = alias
        if short not in _entry_points():
            raise PluginNotFound(
                f"{use!r} is Circus 0.19's {short} plugin, provided by the {dist} "
                f"distribution, which is not installed: pip install {dist}"
            )
        use = short
    elif is_dotted(use):
        spec = PluginSpec(use, use)
        if load:
            try:
                spec.load()
            except PluginNotFound as exc:
                names = ", ".join(sorted(_entry_points())) or "none"
                raise PluginNotFound(f"{exc}; installed plugins: {names}") from None
        return spec
    eps = _entry_points()
    if use not in eps:
        raise _not_found(use, sorted(eps))
    if len(eps[use]) > 1:
        raise _conflict(use, eps[use])
    spec = _spec(eps[use][0])
    if load:
        spec.load()
    return spec
