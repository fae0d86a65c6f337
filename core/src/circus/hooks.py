"""The pluggy plugin manager of circus plugins, and the built-in hook implementations.

Built-in behaviours are ordinary hook implementations registered first (as simonw/llm does),
then third-party ones from the ``circus.hooks`` entry-point group. A third-party module that
fails to import is logged and skipped; it never stops a plugin from running.

Which third-party hooks load is switchable, as llm's ``LLM_LOAD_PLUGINS``: ``CIRCUS_LOAD_HOOKS``
unset loads every entry point, empty loads none (what a test suite wants, whatever else is
installed), ``a,b`` loads those entry-point names only. Scoping, per plugin:

* a hook implementation (module or object) may set ``circus_plugins = {"statsd", ...}``: it
  then applies only to plugins of those names;
* a plugin class may set ``use_hooks = False`` (no third-party hook applies to it) or
  ``use_hooks = frozenset({"audit"})`` (only those entry-point names). Built-in hooks (the
  ``topics`` option, call logging) always apply.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import threading
import weakref
from collections.abc import Callable
from typing import Any

import pluggy

from circus import hookspecs
from circus.hookspecs import PROJECT, PluginEvent, hookimpl
from circus.logs import get_logger

__all__ = ["HOOKS_GROUP", "get_plugin_manager", "hookimpl", "notify"]

HOOKS_GROUP = "circus.hooks"
#: environment variable choosing the third-party hooks to load (see the module docstring)
LOAD_ENV = "CIRCUS_LOAD_HOOKS"
BUILTINS = frozenset({"circus.topics", "circus.call_log"})
log = get_logger("circus.hooks")
_stdlib_log = logging.getLogger("circus.hooks")


def parse_topics(value: str) -> list[str]:
    """``"watcher.web.*, watcher.*.reap"`` -> the glob patterns (commas and/or spaces)."""
    return [part for part in re.split(r"[,\s]+", value.strip()) if part]


class TopicFilter:
    """The ``topics`` plugin option: deliver only events whose topic matches a glob pattern.

    Example: ``topics = watcher.web.*, watcher.*.reap``. The patterns are compiled into one
    regular expression per plugin when it loads, so the per-event cost is one match.
    """

    def __init__(self) -> None:
        self._compiled: weakref.WeakKeyDictionary[Any, re.Pattern[str]] = (
            weakref.WeakKeyDictionary()
        )

    @hookimpl
    def circus_plugin_loaded(self, plugin: Any) -> None:
        raw = getattr(plugin, "config", {}).get("topics")
        if not raw:
            return
        patterns = parse_topics(str(raw))
        if patterns:
            regex = "|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)
            self._compiled[plugin] = re.compile(regex)

    @hookimpl
    def circus_plugin_event(self, plugin: Any, event: PluginEvent) -> None:
        pattern = self._compiled.get(plugin)
        if pattern is not None and pattern.match(event.topic) is None:
            event.dropped = True


class CallLogger:
    """Logs every call/cast at debug level with its duration, and failed calls as warnings."""

    @hookimpl
    def circus_plugin_after_call(  # noqa: PLR0917 (pluggy passes hook args by name)
        self,
        plugin: Any,
        command: str,
        properties: dict[str, Any],
        cast: bool,
        reply: dict[str, Any] | None,
        error: BaseException | None,
        duration: float,
    ) -> None:
        kind = "cast" if cast else "call"
        if error is not None:
            log.warning(f"{kind} failed", plugin=plugin.name, command=command, error=str(error))
        elif _stdlib_log.isEnabledFor(logging.DEBUG):  # cheap check first: calls can be hot
            log.debug(kind, plugin=plugin.name, command=command, ms=round(duration * 1000, 3))


_lock = threading.Lock()
_manager: list[pluggy.PluginManager] = []


def wanted_hooks() -> frozenset[str] | None:
    """The entry-point names ``CIRCUS_LOAD_HOOKS`` allows; ``None``: all of them."""
    value = os.environ.get(LOAD_ENV)
    if value is None:
        return None
    return frozenset(part for part in re.split(r"[,\s]+", value.strip()) if part)


def _load_third_party(pm: pluggy.PluginManager) -> None:
    from importlib.metadata import entry_points  # lazily: 2.7 MB a circusd may never need

    wanted = wanted_hooks()
    for ep in entry_points(group=HOOKS_GROUP):
        if pm.get_plugin(ep.name) is not None or (wanted is not None and ep.name not in wanted):
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:
            log.error(
                "cannot load hook implementations; skipped",
                entry_point=ep.name,
                value=ep.value,
                error=f"{type(exc).__name__}: {exc}",
            )


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager: built-ins plus the ``circus.hooks`` entry points."""
    with _lock:
        if not _manager:
            pm = pluggy.PluginManager(PROJECT)
            pm.add_hookspecs(hookspecs)
            pm.register(TopicFilter(), name="circus.topics")
            pm.register(CallLogger(), name="circus.call_log")
            _load_third_party(pm)
            _manager.append(pm)
        return _manager[0]


def applies(impl: Any, plugin: Any) -> bool:
    """Whether the hook implementation ``impl`` is in scope for ``plugin`` (module docstring)."""
    scope = getattr(impl.plugin, "circus_plugins", None)
    if scope is not None and getattr(plugin, "name", None) not in scope:
        return False
    if impl.plugin_name in BUILTINS:
        return True
    use = getattr(plugin, "use_hooks", True)
    if use is True:
        return True
    if use is False:
        return False
    return impl.plugin_name in use


class _Prepared:
    """The implementations of one hook in scope for one plugin, ready to call in order."""

    __slots__ = ("calls", "every", "wrapped")

    def __init__(self, every: list[Any], plugin: Any) -> None:
        self.every = every
        impls = [impl for impl in every if applies(impl, plugin)]
        self.wrapped = any(impl.hookwrapper or impl.wrapper for impl in impls)
        # pluggy calls the last registered first
        self.calls = [(impl.function, tuple(impl.argnames), impl.plugin_name)
                      for impl in reversed(impls)]


#: attribute of a plugin object holding its prepared hook calls
_CACHE_ATTR = "_pc_hook_cache"


def _prepare(hook: Any, every: list[Any], plugin: Any) -> _Prepared:
    """``every`` filtered for ``plugin``, cached on the plugin until the registrations change
    (``call_each`` runs per event: the scope rules must not be re-evaluated each time)."""
    per_plugin: dict[str, _Prepared] | None = getattr(plugin, _CACHE_ATTR, None)
    if per_plugin is None:
        per_plugin = {}
        try:
            setattr(plugin, _CACHE_ATTR, per_plugin)
        except (AttributeError, TypeError):  # slots or a builtin: no cache
            return _Prepared(every, plugin)
    cached = per_plugin.get(hook.name)
    if cached is None or cached.every != every:
        cached = per_plugin[hook.name] = _Prepared(every, plugin)
    return cached


def call_each(hook: Any, on_error: Callable[[BaseException, str], None], **kwargs: Any) -> None:
    """Call every implementation of ``hook`` in pluggy's order, isolating failures.

    pluggy stops at the first implementation that raises; here one broken third-party hook
    cannot starve the others (or the built-ins). ``on_error(exc, plugin_name)`` is told about
    each failure. Old- and new-style wrappers need pluggy's machinery, so if any is registered
    the hook is called normally (failures then still reported, not propagated). With a
    ``plugin`` argument, only the implementations in scope for it run (module docstring).
    """
    every = hook.get_hookimpls()
    prepared = _prepare(hook, every, kwargs["plugin"]) if "plugin" in kwargs else \
        _Prepared(every, None)
    if prepared.wrapped:
        if len(prepared.calls) != len(every):  # pluggy's own subset, without the others
            kept = {impl.plugin_name for impl in every} - {name for *_, name in prepared.calls}
            hook = get_plugin_manager().subset_hook_caller(
                hook.name, [impl.plugin for impl in every if impl.plugin_name in kept])
        try:
            hook(**kwargs)
        except Exception as exc:
            on_error(exc, "?")
        return
    for function, argnames, name in prepared.calls:
        try:
            function(*[kwargs[arg] for arg in argnames])
        except Exception as exc:
            on_error(exc, name)


def notify(hook: Any, plugin: Any, **kwargs: Any) -> None:
    """Run a notification hook; an implementation that raises is logged, never propagated."""
    name = getattr(hook, "name", "?")

    def report(exc: BaseException, impl: str) -> None:
        log.error("hook implementation failed", hook=name, implementation=impl, exc_info=exc)
        if name != "circus_plugin_failed":
            notify(get_plugin_manager().hook.circus_plugin_failed, plugin,
                   stage="hook", error=exc)

    call_each(hook, report, plugin=plugin, **kwargs)
