"""Configuration: the typed model and the ways to build it (INI files, option dicts).

Import from here: ``load_config`` (INI file -> :class:`CircusConfig`), ``watcher_from_options``
(option dict -> :class:`WatcherConfig`, used by ``add`` and the Python API) and the model classes.
"""

from circus.config.model import CircusConfig, CircusSettings, PluginConfig, WatcherConfig
from circus.config.watcher_options import watcher_from_options

__all__ = [
    "CircusConfig",
    "CircusSettings",
    "PluginConfig",
    "WatcherConfig",
    "watcher_from_options",
]
