"""Which watchers a ``start``/``stop``/``restart`` name designates (the ``match`` property).

Compatible with Circus 0.19 (section 3.1): ``glob`` (default) matches the whole lower-cased
name, ``regex`` matches at the start of the lower-cased name only, ``simple`` is a plain
case-insensitive lookup.
"""

from __future__ import annotations

import fnmatch
import re

from circus.commands.api import ArbiterAPI, WatcherAPI
from circus.errors import MessageError

MATCH_METHODS = ("glob", "regex", "simple")


def match_watchers(arbiter: ArbiterAPI, name: str, method: str = "glob") -> list[WatcherAPI]:
    """The watchers ``name`` designates, in the arbiter's order; errno 3 when none match.

    Regular expressions are compiled case-insensitively rather than lower-cased as 0.19 does,
    which matches the same names but keeps escapes such as ``\\S`` intact.
    """
    if method == "simple":
        return [arbiter.get_watcher(name)]
    if method == "glob":
        pattern = re.compile(fnmatch.translate(name.lower()))
    elif method == "regex":
        try:
            pattern = re.compile(name, re.IGNORECASE)
        except re.error as exc:
            raise MessageError(f"invalid regex {name!r}: {exc}") from None
    else:
        raise MessageError(f"unknown match method {method}")
    found = [w for w in arbiter.watchers if pattern.match(w.name.lower())]
    if not found:
        raise MessageError(f"program {name} not found")
    return found
