"""circus plugins: base classes for plugin authors.

``from circus.plugins import CircusPlugin`` is the import of the seed documentation. The
threading model is described in :mod:`circus.plugins.base`; ``docs/plugins.md`` has a guide.
"""

from circus.plugins.aio import AsyncCircusPlugin
from circus.plugins.base import PluginCore, PluginFailed
from circus.plugins.scheduling import Scheduled
from circus.plugins.sync import CircusPlugin

__all__ = ["AsyncCircusPlugin", "CircusPlugin", "PluginCore", "PluginFailed", "Scheduled", "main"]


def main() -> int:
    """The runner, reachable as in 0.19: ``from circus import plugins; plugins.main()``."""
    from circus.plugins.runner import main as run

    return run()
