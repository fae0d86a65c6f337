"""The http_observer plugin for circus: HTTP health checks that restart (or signal) a watcher.

``expect`` holds what a healthy answer is (pure, unit-tested), ``plugin`` the probe; the
failure counting, cooldown and action come from :mod:`circus.plugins.observer`.
"""

from circus_plugin_http_observer.plugin import HttpObserver

__all__ = ["HttpObserver"]
