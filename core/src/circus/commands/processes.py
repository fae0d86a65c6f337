"""Commands about a watcher's processes: incr, decr, numprocesses, kill, signal."""

from __future__ import annotations

from circus.commands.api import ArbiterAPI, WatcherAPI
from circus.commands.base import (
    Background,
    Command,
    Fields,
    Props,
    QuickCommand,
    Result,
    bool_prop,
    int_prop,
    number_prop,
    watcher_from,
)
from circus.commands.validation import MAX_SECONDS
from circus.errors import MessageError
from circus.signals import to_signum

#: Most processes one ``incr``/``decr`` may add or remove: a typo such as ``nb = 1e9`` must not
#: fork the machine to death.
MAX_PROCESSES = 10_000


def _numprocesses(count: int) -> Fields:
    return {"numprocesses": count}


def _signum_prop(props: Props, key: str) -> int | None:
    value = props.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise MessageError(f"{key!r} isn't a signal name or number")
    try:
        return to_signum(value)
    except ValueError as exc:
        # 0.19 answers errno 5 with an AttributeError text here (C11); errno 3 was intended.
        raise MessageError(f"signal invalid: {exc}") from None


def _backoff_notes(watcher: WatcherAPI, change: int) -> Fields | None:
    """``incr`` on a watcher that is backing off: its new processes wait for the retry (the
    crash-loop protection holds them too), and the client is told when that is. Extra fields:
    0.19 clients, which read ``status`` and ``numprocesses``, ignore them."""
    if change <= 0 or watcher.state != "backoff":
        return None
    return {"state": "backoff", "retry_in": watcher.retry_in}


class Incr(Command):
    """Add ``nb`` processes now. Without ``waiting`` the reply has no ``numprocesses`` (C6)."""

    name = "incr"
    required = ("name",)
    step = 1

    async def execute(self, arbiter: ArbiterAPI, props: Props) -> Result:
        watcher = watcher_from(arbiter, props)
        if watcher.singleton:
            return {"numprocesses": watcher.numprocesses, "singleton": True}
        nb = int_prop(props, "nb", 1, minimum=0, maximum=MAX_PROCESSES)
        assert nb is not None
        operation = watcher.incr(nb) if self.step > 0 else watcher.decr(nb)
        return Background(operation, _numprocesses, _backoff_notes(watcher, nb * self.step))


class Decr(Incr):
    """Remove ``nb`` processes now (the oldest ones)."""

    name = "decr"
    step = -1


class NumProcesses(QuickCommand):
    """Processes tracked by one watcher (``watcher_name`` echoes the name sent) or by all."""

    name = "numprocesses"

    def answer(self, arbiter: ArbiterAPI, props: Props) -> Fields:
        if props.get("name") is not None:
            watcher = watcher_from(arbiter, props)
            return {"numprocesses": len(watcher.pids()), "watcher_name": props["name"]}
        return {"numprocesses": sum(len(w.pids()) for w in arbiter.watchers)}


class Kill(Command):
    """Graceful kill of every process of a watcher, or of one pid; the watcher respawns them.

    ``pid`` is coerced to an integer like 0.19 does; ``graceful_timeout`` also accepts the
    numeric string the original circusctl sends (0.19 then failed in the background, C14).
    """

    name = "kill"
    required = ("name",)

    async def execute(self, arbiter: ArbiterAPI, props: Props) -> Background:
        watcher = watcher_from(arbiter, props)
        pid = int_prop(props, "pid")
        signum = _signum_prop(props, "signum")
        graceful_timeout = number_prop(
            props, "graceful_timeout", minimum=0, maximum=MAX_SECONDS
        )
        return Background(
            watcher.kill(pid=pid, signum=signum, graceful_timeout=graceful_timeout)
        )


class Signal(QuickCommand):
    """Send a signal to a watcher's processes, one of them, or their children. No events."""

    name = "signal"
    required = ("name", "signum")

    def answer(self, arbiter: ArbiterAPI, props: Props) -> None:
        watcher = watcher_from(arbiter, props)
        signum = _signum_prop(props, "signum")
        if signum is None:
            raise MessageError("message invalid 'signum' is missing")
        pid = int_prop(props, "pid")
        childpid = int_prop(props, "childpid")
        if childpid is not None and pid is None:
            raise MessageError("cannot specify childpid without pid")
        watcher.send_signal(
            signum,
            pid=pid,
            childpid=childpid,
            children=bool_prop(props, "children", False),
            recursive=bool_prop(props, "recursive", False),
        )


COMMANDS: tuple[Command, ...] = (Incr(), Decr(), NumProcesses(), Kill(), Signal())
