"""The autoscale plugin for circus: adds or removes processes of a watcher with its load.

``policy`` holds the rule (pure, unit-tested: thresholds with a band, sustained values,
cooldown, prediction, bounds), ``metrics`` the load sources, ``settings`` the options,
``plugin`` the circusd wiring.
"""

from circus_plugin_autoscale.plugin import Autoscale

__all__ = ["Autoscale"]
