"""The option table of ``set`` and ``add`` (contract section 3.3, ``set``).

The table is the watcher option schema (:data:`circus.config.model.WATCHER_OPTIONS`): a key is
accepted when its option is settable, and its kind checks the JSON value. Validation is
all-or-nothing: every key is checked before anything is applied, and the error texts (errno 3)
are those of Circus 0.19 so clients that match on them keep working. A few checks 0.19 lacks
(``cmd``, ``working_dir``, ``args``, hook values, signal numbers) are added with texts in the
same style.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from circus.config.kinds import CheckError
from circus.config.watcher_options import settable
from circus.errors import MessageError


def validate_option(key: str, value: Any) -> Any:
    """Check one ``set``/``add`` option and return the value to apply (errno 3 if invalid)."""
    found = settable(key)
    if found is None:
        raise MessageError(f"unknown key {key!r}")
    kind = found.option.kind
    try:
        if found.sub is None:
            return kind.check(key, value)
        return kind.check_item(key, found.sub, value)
    except CheckError as exc:
        raise MessageError(str(exc)) from None


def validate_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate every key first, so nothing is applied when one of them is wrong."""
    return {key: validate_option(key, value) for key, value in options.items()}
