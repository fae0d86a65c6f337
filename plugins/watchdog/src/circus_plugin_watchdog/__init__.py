"""The watchdog plugin for circus: kills processes whose UDP heartbeats stop.

``heartbeats`` holds the rule (pure, unit-tested), ``settings`` the options, ``plugin`` the
circusd and UDP wiring. The README lists the options and the differences from the original.
"""

from circus_plugin_watchdog.plugin import WatchDog

__all__ = ["WatchDog"]
