"""Configuration: the typed model and the ways to build it (INI files, option dicts).

Import from here: ``load_config`` (INI file -> :class:`CircusConfig`), ``watcher_from_options``
(option dict -> :class:`WatcherConfig`, used by ``add`` and the Python API), ``plugin_watcher``
(plugin spec -> :class:`PluginConfig` + its watcher) and the model classes.
"""

from circus.config.loader import load_config
from circus.config.model import CircusConfig, CircusSettings, PluginConfig, WatcherConfig
from circus.config.plugin_section import plugin_watcher
from circus.config.socket_section import SocketConfig
from circus.config.watcher_options import watcher_from_options

__all__ = [
    "CircusConfig",
    "CircusSettings",
    "PluginConfig",
    "SocketConfig",
    "WatcherConfig",
    "load_config",
    "plugin_watcher",
    "watcher_from_options",
]
