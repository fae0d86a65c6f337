"""pluggy hook specifications of circus plugins (project name ``circus``).

Hooks let a separate distribution change how *every* plugin behaves without subclassing:
filter or rewrite events before ``handle_recv``, observe ``call``/``cast`` (logging, timing,
metrics), and follow the plugin lifecycle. Implement them with :data:`hookimpl` in a module or
class and register it under the ``circus.hooks`` entry-point group::

    [project.entry-points."circus.hooks"]
    audit = "my_audit.hooks"

``plugin`` is always the running plugin instance (``plugin.name``, ``plugin.config``).
Hooks run in the thread that triggers them: event hooks in the plugin's loop thread, call
hooks in the caller's thread, lifecycle hooks in the main thread (``failed`` in the thread that
failed). A hook implementation that raises is logged and skipped; the plugin keeps running.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "circus"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class PluginEvent:
    """One event on its way to ``handle_recv``; hook implementations may rewrite or drop it."""

    __slots__ = ("dropped", "message", "topic")

    def __init__(self, topic: str, message: str) -> None:
        self.topic = topic
        self.message = message
        self.dropped = False

    def drop(self) -> None:
        """Do not deliver this event to the plugin."""
        self.dropped = True

    def __repr__(self) -> str:
        state = " dropped" if self.dropped else ""
        return f"<PluginEvent {self.topic}{state}>"


@hookspec
def circus_plugin_event(plugin: Any, event: PluginEvent) -> None:
    """Called for every event before ``handle_recv``; set ``event.topic``/``event.message``
    to transform it or call ``event.drop()`` to filter it out. Keep it cheap: it runs per event.
    """


@hookspec
def circus_plugin_before_call(
    plugin: Any, command: str, properties: dict[str, Any], cast: bool
) -> None:
    """Called before a ``call`` (``cast=False``) or ``cast`` (``cast=True``) is sent."""


@hookspec
def circus_plugin_after_call(  # noqa: PLR0917 (pluggy passes hook args by name)
    plugin: Any,
    command: str,
    properties: dict[str, Any],
    cast: bool,
    reply: dict[str, Any] | None,
    error: BaseException | None,
    duration: float,
) -> None:
    """Called after a call got its reply (or failed: ``error``) or a cast was handed over.

    ``duration`` is in seconds; ``reply`` is ``None`` for casts and failures.
    """


@hookspec
def circus_plugin_loaded(plugin: Any) -> None:
    """The plugin object was built and is about to start."""


@hookspec
def circus_plugin_started(plugin: Any) -> None:
    """``handle_init`` succeeded; events are being delivered."""


@hookspec
def circus_plugin_stopped(plugin: Any) -> None:
    """``handle_stop`` ran and the plugin's threads are gone."""


@hookspec
def circus_plugin_gap(plugin: Any, gap: Any) -> None:
    """The plugin missed events (``gap``: a :class:`circus.plugins.sequence.Gap` with ``kind``
    start/gap/restart, ``missed``, ``dropped``); called just before ``handle_gap``."""


@hookspec
def circus_plugin_failed(plugin: Any, stage: str, error: BaseException) -> None:
    """Something raised: ``stage`` is ``handle_init``, ``handle_recv``, ``handle_stop``,
    ``handle_reload``, ``callback`` (a scheduled function) or ``hook`` (a hook implementation).
    The plugin keeps running unless the stage was ``handle_init``.
    """
