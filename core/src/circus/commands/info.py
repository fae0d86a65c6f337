"""Read-only information commands: stats, dstats, listsockets, ipython, listen."""

from __future__ import annotations

from circus.commands.api import ArbiterAPI
from circus.commands.base import Command, Fields, Props, QuickCommand, bool_prop, watcher_from
from circus.errors import MessageError


class Stats(QuickCommand):
    """Process information for every watcher, one watcher, or one process of a watcher."""

    name = "stats"

    def answer(self, arbiter: ArbiterAPI, props: Props) -> Fields:
        extended = bool_prop(props, "extended", False)
        if props.get("name") is None:
            return {"infos": {w.name: w.stats(extended=extended) for w in arbiter.watchers}}
        watcher = watcher_from(arbiter, props)
        process = props.get("process")
        if process is None:
            return {"name": props["name"], "info": watcher.stats(extended=extended)}
        try:
            pid = int(process)
        except (TypeError, ValueError):
            pid = None
        if pid is None or isinstance(process, bool) or pid not in watcher.pids():
            raise MessageError(f"process {process!r} not found in {props['name']!r}")
        return {"process": process, "info": watcher.stats(pid=pid, extended=extended)}


class DStats(QuickCommand):
    """Process information about circusd itself."""

    name = "dstats"

    def answer(self, arbiter: ArbiterAPI, props: Props) -> Fields:
        return {"info": arbiter.dstats()}


class ListSockets(QuickCommand):
    """circusd's ``[socket:NAME]`` sockets; this daemon has none yet, so always empty."""

    name = "listsockets"

    def answer(self, arbiter: ArbiterAPI, props: Props) -> Fields:
        return {"sockets": []}


class IPython(QuickCommand):
    """0.19 tried to start an embedded IPython kernel; that never works with current IPython
    (C18), so the reply says so in the same shape instead of trying."""

    name = "ipython"

    def answer(self, arbiter: ArbiterAPI, props: Props) -> Fields:
        return {"shell": False, "msg": "circusd does not embed an IPython kernel"}


class Listen(QuickCommand):
    """Only meaningful for circusctl, which subscribes to the event channel instead."""

    name = "listen"

    def answer(self, arbiter: ArbiterAPI, props: Props) -> Fields:
        raise MessageError("invalid message. use a pub/sub socket")


COMMANDS: tuple[Command, ...] = (Stats(), DStats(), ListSockets(), IPython(), Listen())
