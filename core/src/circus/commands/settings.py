"""Commands that read or change options: options, get, set, globaloptions."""

from __future__ import annotations

from circus.commands.api import ArbiterAPI
from circus.commands.base import Background, Command, Fields, Props, QuickCommand, watcher_from
from circus.commands.options import validate_options
from circus.commands.owner import check_set
from circus.errors import CommandError, MessageError

GLOBAL_OPTIONS = (
    "endpoint",
    "pubsub_endpoint",
    "stats_endpoint",
    "check_delay",
    "multicast_endpoint",
)


class Options(QuickCommand):
    """Every option of a watcher, keys sorted, free-form options as raw strings."""

    name = "options"
    required = ("name",)

    def answer(self, arbiter: ArbiterAPI, props: Props) -> Fields:
        return {"options": watcher_from(arbiter, props).options()}


class Get(QuickCommand):
    """Selected options of a watcher.

    Free-form options (``flapping.max_retry``) are answered too, where 0.19 failed with
    errno 5 although ``options`` lists them (C7).
    """

    name = "get"
    required = ("name", "keys")

    def answer(self, arbiter: ArbiterAPI, props: Props) -> Fields:
        watcher = watcher_from(arbiter, props)
        keys = props["keys"]
        if isinstance(keys, str):
            keys = [keys]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise MessageError("'keys' isn't a list of option names")
        found: Fields = {}
        for key in keys:
            try:
                found[key] = watcher.get_option(key)
            except KeyError:
                raise MessageError(f"{key!r} option not found") from None
        return {"options": found}


class Set(Command):
    """Change options of a watcher; all keys are validated before any is applied."""

    name = "set"
    required = ("name", "options")

    async def execute(self, arbiter: ArbiterAPI, props: Props) -> Background:
        watcher = watcher_from(arbiter, props)
        raw = props["options"]
        if not isinstance(raw, dict):
            raise MessageError("'options' property should be an object")
        options = validate_options(raw)
        check_set(arbiter, watcher, options)
        count = options.get("numprocesses")
        if watcher.singleton and isinstance(count, int) and count > 1:
            raise CommandError(f"Cannot set numprocesses to {count} on a singleton watcher")
        return Background(watcher.apply_options(options))


class GlobalOptions(QuickCommand):
    """The daemon-wide settings, all five or the one named by ``option`` (C8: not ``keys``)."""

    name = "globaloptions"

    def answer(self, arbiter: ArbiterAPI, props: Props) -> Fields:
        current = arbiter.global_options()
        wanted = props.get("option")
        if wanted is None:
            return {"options": {key: current.get(key) for key in GLOBAL_OPTIONS}}
        if not isinstance(wanted, str) or wanted not in GLOBAL_OPTIONS:
            raise MessageError(f"{wanted!r} not an existing option")
        return {"options": {wanted: current.get(wanted)}}


COMMANDS: tuple[Command, ...] = (Options(), Get(), Set(), GlobalOptions())
