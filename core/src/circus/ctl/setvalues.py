"""Typing the ``KEY VALUE`` words of ``circusctl set`` for the daemon's ``set`` table.

Everything typed on a command line is a string, but the daemon validates JSON types strictly
(``"3"`` for ``numprocesses`` is rejected, contract 3.3 ``set``), so circusctl converts each value
to the type that key requires before sending, using the kind the watcher option schema declares
(:data:`circus.config.model.WATCHER_OPTIONS`). Keys the schema does not know are sent as the
string typed: the daemon, not the client, decides which keys exist, and its error reply names
the key.
"""

from __future__ import annotations

from typing import Any

from circus.config.kinds import parse_env, parse_hooks
from circus.config.model import LEGACY_SET_KEYS, WATCHER_OPTIONS
from circus.config.schema import lookup

__all__ = ["SetValueError", "convert_set_options", "parse_env", "parse_hooks"]


class SetValueError(ValueError):
    """A ``set`` value that cannot be converted; the message names the key."""


def _convert(key: str, text: str) -> Any:
    found = lookup(WATCHER_OPTIONS, key) or lookup(LEGACY_SET_KEYS, key)
    if found is None:
        return text
    kind = found.option.kind
    return kind.from_text(text) if found.sub is None else kind.item_from_text(found.sub, text)


def convert_set_options(pairs: list[str]) -> dict[str, Any]:
    """``["numprocesses", "3", "stop_signal", "HUP"]`` -> ``{"numprocesses": 3, "stop_signal": 1}``.

    Keys are lower-cased (as the original client did). Raises :class:`SetValueError` for an odd
    number of words or a value that does not fit its key.
    """
    if not pairs or len(pairs) % 2:
        raise SetValueError("expected KEY VALUE pairs (an even number of words after the name)")
    options: dict[str, Any] = {}
    for key_text, value in zip(pairs[::2], pairs[1::2], strict=True):
        key = key_text.lower()
        try:
            options[key] = _convert(key, value)
        except ValueError as exc:
            raise SetValueError(f"bad value for {key!r}: {exc}") from None
    return options
