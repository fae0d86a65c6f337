"""Read-only information commands: stats, dstats, listsockets, ipython, listen."""

from __future__ import annotations

from circus.commands.api import ArbiterAPI
from circus.commands.base import (
    Command,
    Fields,
    Props,
    QuickCommand,
    Result,
    bool_prop,
    watcher_from,
)
from circus.errors import MessageError


class Stats(Command):
    """Process information for every watcher, one watcher, or one process of a watcher.

    Not a quick command: the figures come from the sampler thread, and the controller keeps
    serving other requests while this one awaits its sample (0.19 blocked everything for
    seconds). One sample serves the whole reply.
    """

    name = "stats"

    async def execute(self, arbiter: ArbiterAPI, props: Props) -> Result:
        extended = bool_prop(props, "extended", False)
        if props.get("name") is None:
            watchers = list(arbiter.watchers)
            sample = await arbiter.sampler.sample(pid for w in watchers for pid in w.pids())
            return {"infos": {w.name: w.stats(sample, extended=extended) for w in watchers}}
        watcher = watcher_from(arbiter, props)
        process = props.get("process")
        if process is None:
            sample = await arbiter.sampler.sample(watcher.pids())
            return {"name": props["name"], "info": watcher.stats(sample, extended=extended)}
        try:
            pid = int(process)
        except (TypeError, ValueError):
            pid = None
        if pid is None or isinstance(process, bool) or pid not in watcher.pids():
            raise MessageError(f"process {process!r} not found in {props['name']!r}")
        sample = await arbiter.sampler.sample([pid])
        if pid not in watcher.pids():  # reaped while sampling
            raise MessageError(f"process {process!r} not found in {props['name']!r}")
        return {"process": process, "info": watcher.stats(sample, pid=pid, extended=extended)}


class DStats(Command):
    """Process information about circusd itself, sampled off the event loop (0.19 slept
    10 ms on it to measure CPU)."""

    name = "dstats"

    async def execute(self, arbiter: ArbiterAPI, props: Props) -> Result:
        return {"info": await arbiter.dstats()}


class ListSockets(QuickCommand):
    """circusd's ``[socket:NAME]`` sockets, sorted by fd: ``fd``, ``name``, ``backlog`` and
    ``host``/``port`` (the real port when ``port = 0``) or ``path`` (contract 3.3)."""

    name = "listsockets"

    def answer(self, arbiter: ArbiterAPI, props: Props) -> Fields:
        return {"sockets": arbiter.list_sockets()}


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
