"""Watcher hooks (contract 8.5): user callables run around a watcher's life events.

A hook is ``hooks.<name> = dotted.path.to.callable[, ignore_errors]``. It is called in circusd's
event loop with keyword arguments ``watcher``, ``arbiter``, ``hook_name`` plus the hook's extras,
and publishes ``hook_success`` or ``hook_failure``. As in 0.19, its *result* decides: a falsy
result (``None`` included) vetoes what the hook guards (``before_start`` aborts the start...); an
exception counts as false unless the hook is flagged to ignore errors or is one whose failure is
always ignored. Watchers without hooks pay one dict lookup per call site.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from typing import Any

import structlog

from circus.config.kinds import parse_hook

log = structlog.get_logger("circus.hooks")

Notify = Callable[[str, dict[str, Any]], int]

#: hooks whose exceptions never veto anything (contract 8.5)
ALWAYS_IGNORED = frozenset(
    {"before_stop", "after_stop", "before_signal", "after_signal", "extended_stats"}
)


def resolve_hook(target: str, *, reload: bool = False) -> Callable[..., Any]:
    """Import ``pkg.mod.func`` or ``pkg.mod:func``; ``reload`` re-imports the module (``set``)."""
    if ":" in target:
        module_name, _, attr = target.partition(":")
    else:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"invalid hook target {target!r}")
    module = importlib.import_module(module_name)
    if reload and module_name in sys.modules:
        module = importlib.reload(module)
    found: Any = module
    for part in attr.split("."):
        found = getattr(found, part)
    if not callable(found):
        raise TypeError(f"hook target {target!r} is not callable")
    hook: Callable[..., Any] = found
    return hook


class HookRunner:
    """Calls one watcher's hooks; callables are imported once and cached by their spec."""

    def __init__(self, notify: Notify) -> None:
        self._notify = notify
        self._cache: dict[str, Callable[..., Any]] = {}
        self._stale: set[str] = set()

    def forget(self, spec: str) -> None:
        """Drop a cached callable so the next call re-imports (and reloads) it."""
        self._cache.pop(spec, None)

    def call(
        self,
        hooks: dict[str, str],
        hook_name: str,
        *,
        watcher: Any,
        arbiter: Any,
        **extras: Any,
    ) -> bool:
        """Run ``hook_name`` if configured; True when it allows what it guards."""
        spec = hooks.get(hook_name)
        if not spec:
            return True
        target, ignore_errors = parse_hook(spec)
        try:
            func = self._cache.get(spec)
            if func is None:
                func = resolve_hook(target, reload=spec in self._stale)
                self._stale.discard(spec)
                self._cache[spec] = func
            result = func(watcher=watcher, arbiter=arbiter, hook_name=hook_name, **extras)
        except Exception as exc:
            log.exception("hook failed", hook=hook_name, target=target)
            self._notify(
                "hook_failure", {"name": hook_name, "time": time.time(), "error": str(exc)}
            )
            return ignore_errors or hook_name in ALWAYS_IGNORED
        self._notify("hook_success", {"name": hook_name, "time": time.time()})
        return bool(result)

    def mark_stale(self, spec: str) -> None:
        """``set hooks.X``: re-import the hook's module on its next call."""
        self.forget(spec)
        self._stale.add(spec)
