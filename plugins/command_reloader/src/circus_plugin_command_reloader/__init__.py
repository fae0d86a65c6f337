"""The command_reloader plugin for circus: restarts a watcher when its program changes.

``targets`` holds what each watcher depends on and decides which changes matter (pure,
unit-tested), ``settings`` the options, ``plugin`` the circusd and notifier wiring.
"""

from circus_plugin_command_reloader.plugin import CommandReloader

__all__ = ["CommandReloader"]
