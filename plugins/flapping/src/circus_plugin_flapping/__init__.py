"""The flapping plugin for circus: stops watchers whose processes keep dying, retries later.

``tracker`` holds the rule (pure, unit-tested), ``settings`` the options and per-watcher
``flapping.*`` overrides, ``plugin`` the circusd wiring. See the README for the exact rule and
how it differs from the original plugin.
"""

from circus_plugin_flapping.plugin import Flapping

__all__ = ["Flapping"]
