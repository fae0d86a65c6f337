"""``[env]`` / ``[env:PATTERNS]`` sections and load-time ``$(circus.env.X)`` substitution.

Contract 8.8 and 8.9. Only ``circus.env.*`` variables are replaced here; every other
``$(circus.*)`` variable (``circus.wid``, ``circus.sockets.web``, ...) is left untouched because
its value only exists when the daemon spawns a process.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping

ENV_SECTION = "env"
ENV_PREFIX = "env:"

_DOLLAR_NAME = re.compile(r"\$([A-Z][A-Z0-9_]*)")
_CIRCUS_VAR = re.compile(r"\$\(circus\.([\w.-]+)\)|\(\(circus\.([\w.-]+)\)\)", re.IGNORECASE)


def expand_dollar_names(value: str, environ: Mapping[str, str]) -> str:
    """Replace ``$NAME`` (upper case) by circusd's variable ``NAME``; undefined -> empty."""
    return _DOLLAR_NAME.sub(lambda m: environ.get(m.group(1), ""), value)


def env_section_patterns(section: str) -> list[str]:
    """``env:worker*,web`` -> ``["worker*", "web"]``."""
    return [p.strip() for p in section[len(ENV_PREFIX) :].split(",") if p.strip()]


def matches(patterns: list[str], watcher_name: str) -> bool:
    """Shell-style match, case-insensitive like every watcher-name lookup."""
    name = watcher_name.lower()
    return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in patterns)


def watcher_env(
    watcher_name: str,
    global_env: Mapping[str, str],
    pattern_sections: list[tuple[list[str], dict[str, str]]],
) -> dict[str, str]:
    """``[env]`` updated with every matching ``[env:...]`` section, in file order."""
    env = dict(global_env)
    for patterns, values in pattern_sections:
        if matches(patterns, watcher_name):
            env.update(values)
    return env


def _lookup(name: str, variables: Mapping[str, str]) -> str | None:
    if name in variables:
        return variables[name]
    folded = name.lower()
    for key, value in variables.items():
        if key.lower() == folded:
            return value
    return None


def substitute_env(value: str, variables: Mapping[str, str]) -> str:
    """Replace ``$(circus.env.X)`` and ``((circus.env.X))`` whose ``X`` is known.

    ``circus`` and ``env`` are case-insensitive; ``X`` is looked up exactly first, then ignoring
    case. Unknown variables and non-``env`` variables stay as written for spawn time.
    """

    def replace(match: re.Match[str]) -> str:
        key = match.group(1) or match.group(2)
        head, _, name = key.partition(".")
        if head.lower() != "env" or not name:
            return match.group(0)
        found = _lookup(name, variables)
        return match.group(0) if found is None else found

    return _CIRCUS_VAR.sub(replace, value)
