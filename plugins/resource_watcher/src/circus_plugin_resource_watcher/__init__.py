"""The resource_watcher plugin for circus: acts on processes using too much cpu or memory.

``limits`` holds the rule (pure, unit-tested), ``settings`` the options, ``plugin`` the
circusd wiring (``stats`` in; ``restart``, ``kill`` or ``signal`` out; statsd counters).
"""

from circus_plugin_resource_watcher.plugin import ResourceWatcher

__all__ = ["ResourceWatcher"]
