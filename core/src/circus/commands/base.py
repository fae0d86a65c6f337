"""What every command is made of: its name, its properties and how it runs.

A command validates its properties, looks up what it needs and either answers at once (a dict,
or ``None`` for a bare ok) or hands back a :class:`Background` operation. The dispatcher awaits
a background operation when the request says ``waiting`` and otherwise answers at once and lets
the operation finish on its own, which is the observable behaviour of Circus 0.19 (section 2.4).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from circus.commands.api import ArbiterAPI, WatcherAPI
from circus.errors import MessageError

Props = Mapping[str, Any]
Fields = dict[str, Any]


def _no_fields(_: Any) -> Fields | None:
    return None


@dataclass
class Background:
    """A long operation (start, stop, kill...) and how its result becomes reply fields.

    ``transform`` is only used when the client waits for the operation; without ``waiting``
    the reply is a bare ok sent before the operation ends.
    """

    operation: Coroutine[Any, Any, Any]
    transform: Callable[[Any], Fields | None] = field(default=_no_fields)


Result = Fields | Background | None


class Command(ABC):
    """One control command. Subclasses set ``name`` and ``required`` and implement ``execute``."""

    name: str = ""
    #: Properties that must be present (``message invalid 'KEY' is missing`` otherwise).
    required: tuple[str, ...] = ()

    def check_required(self, props: Props) -> None:
        for key in self.required:
            if key not in props:
                raise MessageError(f"message invalid {key!r} is missing")

    @abstractmethod
    async def execute(self, arbiter: ArbiterAPI, props: Props) -> Result:
        """Run the command. Raise ``CommandError`` subclasses for errors the client should see."""


class QuickCommand(Command):
    """A command answered from memory, without awaiting anything.

    The controller runs these inline in its socket task instead of in a task of their own:
    ``status`` and ``list`` are what monitoring polls, and a task per request would double
    their round-trip cost for nothing.
    """

    @abstractmethod
    def answer(self, arbiter: ArbiterAPI, props: Props) -> Fields | None:
        """The reply fields (``None`` for a bare ok)."""

    async def execute(self, arbiter: ArbiterAPI, props: Props) -> Result:
        return self.answer(arbiter, props)


def watcher_from(arbiter: ArbiterAPI, props: Props, key: str = "name") -> WatcherAPI:
    """The watcher named by ``props[key]``; errno 3 ``program NAME not found`` if none."""
    name = string_prop(props, key)
    if name is None:
        raise MessageError(f"message invalid {key!r} is missing")
    return arbiter.get_watcher(name)


# Property readers: each returns the value (``default`` when absent or null) or raises errno 3
# with a message naming the property, so a wrong type never surfaces as a traceback.


def string_prop(props: Props, key: str, default: str | None = None) -> str | None:
    value = props.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise MessageError(f"{key!r} isn't a string")
    return value


def bool_prop(props: Props, key: str, default: bool = False) -> bool:
    """Truthiness as 0.19 reads it (``"waiting": 1`` waits), but objects and lists are errors."""
    value = props.get(key)
    if value is None:
        return default
    if isinstance(value, bool | int | float | str):
        return bool(value)
    raise MessageError(f"{key!r} isn't a valid boolean")


def int_prop(props: Props, key: str, default: int | None = None) -> int | None:
    """An integer; numeric strings are converted (circusctl sends some numbers as text)."""
    value = props.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise MessageError(f"{key!r} isn't an integer")


def number_prop(props: Props, key: str, default: float | None = None) -> float | None:
    """A number; numeric strings are converted (circusctl sends ``graceful_timeout`` as text)."""
    value = props.get(key)
    if value is None:
        return default
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise MessageError(f"{key!r} isn't a number")
