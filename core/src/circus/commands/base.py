"""What every command is made of: its name, its properties and how it runs.

A command validates its properties, looks up what it needs and either answers at once (a dict,
or ``None`` for a bare ok) or hands back a :class:`Background` operation. The dispatcher awaits
a background operation when the request says ``waiting`` and otherwise answers at once and lets
the operation finish on its own, which is the observable behaviour of Circus 0.19 (section 2.4).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from circus.commands.api import ArbiterAPI, WatcherAPI
from circus.commands.validation import MAX_INT, check_range
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
    #: fields known before the operation runs, in the reply whether the client waits or not
    #: (``incr`` on a watcher that is backing off says so)
    notes: Fields | None = None


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


_N = TypeVar("_N", int, float)


def _from_text(text: str, convert: Callable[[str], _N]) -> _N | None:
    """A number written as text, or ``None``; long strings are not parsed at all."""
    if len(text) > 32:
        return None
    try:
        return convert(text.strip())
    except ValueError:
        return None


def int_prop(
    props: Props,
    key: str,
    default: int | None = None,
    *,
    minimum: int | None = None,
    maximum: int | None = MAX_INT,
) -> int | None:
    """An integer within ``[minimum, maximum]``; numeric strings are converted (circusctl
    sends some numbers as text)."""
    value = props.get(key)
    if value is None:
        return default
    number: int | None = None
    if isinstance(value, bool | int) or (isinstance(value, float) and value.is_integer()):
        number = int(value)
    elif isinstance(value, str):
        number = _from_text(value, int)
    if number is None:
        raise MessageError(f"{key!r} isn't an integer")
    check_range(key, number, minimum, maximum)
    return number


def number_prop(
    props: Props,
    key: str,
    default: float | None = None,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float | None:
    """A finite number within ``[minimum, maximum]``; numeric strings are converted (circusctl
    sends ``graceful_timeout`` as text). ``inf`` and ``nan`` are refused: a timeout of
    infinity never escalates and the waiting client never hears back."""
    value = props.get(key)
    if value is None:
        return default
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        number = _from_text(value, float)
    if number is None:
        raise MessageError(f"{key!r} isn't a number")
    if not math.isfinite(number):
        raise MessageError(f"{key!r} must be a finite number")
    check_range(key, number, minimum, maximum)
    return number
