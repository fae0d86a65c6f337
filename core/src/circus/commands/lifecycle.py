"""Commands that start and stop things: start, stop, restart, reload, reloadconfig, quit.

Each returns a :class:`Background` operation so the dispatcher can honour ``waiting``. The
watcher methods take that watcher's own lock, so these commands queue per watcher instead of
failing with 0.19's "arbiter is already running ... command" (Circus #776, #1154).
"""

from __future__ import annotations

from typing import Any

from circus.commands.api import ArbiterAPI, WatcherAPI
from circus.commands.base import Background, Command, Fields, Props, bool_prop, string_prop
from circus.commands.matching import match_watchers


def _info(result: Any) -> Fields:
    return {"info": result}


def _targets(arbiter: ArbiterAPI, props: Props) -> list[WatcherAPI] | None:
    """``None`` without ``name`` (every watcher), else the matched watchers."""
    name = string_prop(props, "name")
    if name is None:
        return None
    method = string_prop(props, "match", "glob") or "glob"
    return match_watchers(arbiter, name, method)


class Start(Command):
    """Start every autostart watcher, or the watchers ``name`` matches."""

    name = "start"

    async def execute(self, arbiter: ArbiterAPI, props: Props) -> Background:
        targets = _targets(arbiter, props)
        if targets is None:
            return Background(arbiter.start_watchers(None))
        if len(targets) == 1:
            return Background(targets[0].start(), _info)
        # Several matches: 0.19 skips watchers that are not autostart (C10); kept for
        # compatibility, a single explicit match still starts them.
        return Background(arbiter.start_watchers([w for w in targets if w.autostart]))


class Stop(Command):
    """Stop every watcher, or the watchers ``name`` matches."""

    name = "stop"

    async def execute(self, arbiter: ArbiterAPI, props: Props) -> Background:
        targets = _targets(arbiter, props)
        if targets is None:
            return Background(arbiter.stop_watchers(None))
        if len(targets) == 1:
            return Background(targets[0].stop(), lambda _: {"info": None})
        return Background(arbiter.stop_watchers(targets))


class Restart(Command):
    """Restart the watchers ``name`` matches, or every watcher.

    Without a name 0.19 re-executes the whole daemon in-process (stop, close the sockets,
    re-read the config, start a new arbiter), which once died with "Address already in use"
    (C15). Here it restarts every watcher in place: the sockets, the sequence numbers of the
    event stream and the connected clients all survive.
    """

    name = "restart"

    async def execute(self, arbiter: ArbiterAPI, props: Props) -> Background:
        targets = _targets(arbiter, props)
        if targets is None:
            return Background(arbiter.restart_watchers(None))
        if len(targets) == 1:
            return Background(targets[0].restart(), _info)
        return Background(arbiter.restart_watchers(targets))


class Reload(Command):
    """Graceful (or not) reload of one watcher or of all of them."""

    name = "reload"

    async def execute(self, arbiter: ArbiterAPI, props: Props) -> Background:
        graceful = bool_prop(props, "graceful", True)
        sequential = bool_prop(props, "sequential", False)
        name = string_prop(props, "name")
        if name is None:
            return Background(arbiter.reload(graceful=graceful, sequential=sequential))
        watcher = arbiter.get_watcher(name)
        return Background(watcher.reload(graceful=graceful, sequential=sequential), _info)


class ReloadConfig(Command):
    """Re-read the config file circusd was started with and apply the differences."""

    name = "reloadconfig"

    async def execute(self, arbiter: ArbiterAPI, props: Props) -> Background:
        return Background(arbiter.reload_config())


class Quit(Command):
    """Stop every watcher; circusd then exits with status 0."""

    name = "quit"

    async def execute(self, arbiter: ArbiterAPI, props: Props) -> Background:
        return Background(arbiter.quit())


COMMANDS: tuple[Command, ...] = (Start(), Stop(), Restart(), Reload(), ReloadConfig(), Quit())
