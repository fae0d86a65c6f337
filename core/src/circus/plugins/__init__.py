"""circus plugins: base classes for plugin authors.

``from circus.plugins import CircusPlugin`` is the import of the seed documentation. The
threading model is described in :mod:`circus.plugins.base`; ``docs/plugins.md`` has a guide.

The names are imported on first access (PEP 562): circusd imports ``circus.plugins.codec`` to
build plugin command lines and must not pay for pluggy, structlog hooks and the plugin threads
it never runs itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from circus.plugins.aio import AsyncCircusPlugin
    from circus.plugins.base import PluginCore, PluginFailed
    from circus.plugins.scheduling import Scheduled
    from circus.plugins.sync import CircusPlugin

__all__ = ["AsyncCircusPlugin", "CircusPlugin", "PluginCore", "PluginFailed", "Scheduled", "main"]

_LAZY = {
    "AsyncCircusPlugin": "circus.plugins.aio",
    "CircusPlugin": "circus.plugins.sync",
    "PluginCore": "circus.plugins.base",
    "PluginFailed": "circus.plugins.base",
    "Scheduled": "circus.plugins.scheduling",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'circus.plugins' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def main() -> int:
    """The runner, reachable as in 0.19: ``from circus import plugins; plugins.main()``."""
    from circus.plugins.runner import main as run

    return run()
