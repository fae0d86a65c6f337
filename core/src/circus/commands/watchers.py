"""Commands about the set of watchers: list, status, numwatchers, add, rm."""

from __future__ import annotations

from circus.commands.api import ArbiterAPI
from circus.commands.base import (
    Background,
    Command,
    Fields,
    Props,
    QuickCommand,
    Result,
    bool_prop,
    string_prop,
    watcher_from,
)
from circus.commands.options import validate_options
from circus.commands.owner import check_add
from circus.errors import ConflictError, MessageError


class List(QuickCommand):
    """Lower-cased sorted watcher names, or the pids of one watcher in spawn order."""

    name = "list"

    def answer(self, arbiter: ArbiterAPI, props: Props) -> Fields:
        if props.get("name") is not None:
            return {"pids": watcher_from(arbiter, props).pids()}
        return {"watchers": sorted(w.name.lower() for w in arbiter.watchers)}


class Status(QuickCommand):
    """Every watcher's state, or one watcher's state in the reply's ``status`` field.

    ``status NAME`` replacing ``"ok"`` by the state (C5) is kept: the original circusctl
    prints that field.
    """

    name = "status"

    def answer(self, arbiter: ArbiterAPI, props: Props) -> Fields:
        if props.get("name") is not None:
            return {"status": watcher_from(arbiter, props).state}
        return {"statuses": {w.name: w.state for w in arbiter.watchers}}


class NumWatchers(QuickCommand):
    name = "numwatchers"

    def answer(self, arbiter: ArbiterAPI, props: Props) -> Fields:
        return {"numwatchers": len(arbiter.watchers)}


class Add(Command):
    """Add a watcher at run time; options are validated with the ``set`` table (C12)."""

    name = "add"
    required = ("name", "cmd")

    async def execute(self, arbiter: ArbiterAPI, props: Props) -> Result:
        name = string_prop(props, "name")
        cmd = string_prop(props, "cmd")
        if not name:
            raise MessageError("'name' must be a non-empty string")
        if not cmd:
            raise MessageError("'cmd' must be a non-empty string")
        args = props.get("args")
        if args is not None and not (
            isinstance(args, str)
            or (isinstance(args, list) and all(isinstance(a, str) for a in args))
        ):
            raise MessageError("'args' isn't a string or a list of strings")
        raw_options = props.get("options")
        if raw_options is None:
            raw_options = {}
        if not isinstance(raw_options, dict):
            raise MessageError("'options' property should be an object")
        options = validate_options(raw_options)
        check_add(arbiter, options)
        lowered = name.lower()
        if any(w.name.lower() == lowered for w in arbiter.watchers):
            raise ConflictError(f"{name!r} already exist")
        start = bool_prop(props, "start", False)
        watcher = await arbiter.add_watcher(name, cmd, args, options, start=False)
        if start:
            # 0.19 puts ``started``/``kept`` at the top level of the reply, not under ``info``.
            return Background(watcher.start(), dict)
        return None


class Rm(Command):
    """Remove a watcher; unless ``nostop`` its processes are stopped too."""

    name = "rm"
    required = ("name",)

    async def execute(self, arbiter: ArbiterAPI, props: Props) -> Background:
        watcher = watcher_from(arbiter, props)
        nostop = bool_prop(props, "nostop", False)
        return Background(arbiter.remove_watcher(watcher.name, nostop=nostop))


COMMANDS: tuple[Command, ...] = (List(), Status(), NumWatchers(), Add(), Rm())
