"""The ``--config`` serialisation of plugin options (contract 6.2): ``k:v:::k2:v2``.

The format has no escaping, so :func:`encode_config` refuses what it cannot represent (a key
containing ``:``, a value containing ``:::``) instead of producing a string that decodes
differently. A value that is empty, starts or ends with ``:`` would merge with a neighbouring
separator (``a::::b:1``), so it is padded with one space on that side, which the decoder (ours
and the original) strips. Leading and trailing whitespace of values is not preserved, as in the
original.

Values with spaces or quotes are fine: circusd passes the encoded string as one element of an
argument vector, never through a shell-style split (fixing P5); the original runner decodes such
a string unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

SEPARATOR = ":::"


def encode_config(config: Mapping[str, str]) -> str:
    """Serialise ``config`` sorted by key; ValueError naming the key if it cannot round-trip."""
    items = []
    for key in sorted(config):
        value = str(config[key])
        if not key or ":" in key or key != key.strip():
            raise ValueError(
                f"plugin option name {key!r} cannot be passed to a plugin "
                "(empty, contains ':' or surrounding spaces)"
            )
        if SEPARATOR in value:
            raise ValueError(
                f"plugin option {key!r}: value {value!r} cannot be passed to a plugin "
                "(contains ':::')"
            )
        if not value or value.startswith(":"):
            value = " " + value
        if value.endswith(":"):
            value += " "
        items.append(f"{key}:{value}")
    return SEPARATOR.join(items)


def decode_config(text: str) -> dict[str, str]:
    """Parse ``k:v:::k2:v2`` like the original runner.

    Items are split at their first ``:``; items without ``:`` are dropped; keys and values are
    whitespace-stripped; later duplicates win; every value is a string.
    """
    config: dict[str, str] = {}
    for item in text.split(SEPARATOR):
        key, sep, value = item.partition(":")
        if sep:
            config[key.strip()] = value.strip()
    return config
