"""``[env]`` / ``[env:PATTERNS]`` sections and ``$(circus.*)`` substitution (contract 8.8, 8.9).

Substitution is one pass: each variable is replaced by its value and the inserted text is never
scanned again, so a value holding ``$(circus.env.SECRET)`` (an environment variable, an
``[env]`` entry) stays as written instead of leaking the secret. At load only ``circus.env.*``
is replaced, in every option but the command templates (``cmd``, ``args``, ``shell_args``); those
are split into arguments first and substituted at spawn (:mod:`circus.spawn`), where
``circus.wid``, ``circus.sockets.NAME``... exist, so a value is exactly one argument whatever it
holds. 0.19 substituted first, then split, and substituted ``cmd`` twice.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import shlex
from collections.abc import Callable, Mapping

from circus.config.model import WatcherConfig
from circus.errors import ConfigError

ENV_SECTION = "env"
ENV_PREFIX = "env:"

_DOLLAR_NAME = re.compile(r"\$([A-Z][A-Z0-9_]*)")
#: ``$(circus.KEY)``, ``((circus.KEY))`` (any case) and 0.19's legacy ``$WID`` (upper case only)
VARIABLE = re.compile(
    r"\$\(circus\.([\w.-]+)\)|\(\(circus\.([\w.-]+)\)\)|(?-i:\$WID)\b", re.IGNORECASE
)
#: options substituted at spawn, after splitting, instead of at load
TEMPLATE_KEYS = frozenset({"cmd", "args", "shell_args"})

#: ``lookup(key)`` with ``key`` as written after ``circus.`` (``wid``, ``env.HOME``); None leaves
#: the variable as written
Lookup = Callable[[str], str | None]


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


def lookup_name(name: str, variables: Mapping[str, str]) -> str | None:
    """``variables[name]``, else the first name equal ignoring case, else None."""
    if name in variables:
        return variables[name]
    folded = name.lower()
    for key, value in variables.items():
        if key.lower() == folded:
            return value
    return None


def expand(text: str, lookup: Lookup) -> str:
    """Replace every variable ``lookup`` knows, in one pass (inserted text is not rescanned)."""
    if "circus." not in text.lower() and "$WID" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        key = match.group(1) or match.group(2) or "wid"
        found = lookup(key)
        return match.group(0) if found is None else found

    return VARIABLE.sub(replace, text)


def substitute_env(value: str, variables: Mapping[str, str]) -> str:
    """Replace ``$(circus.env.X)`` and ``((circus.env.X))`` whose ``X`` is known (load time).

    ``circus`` and ``env`` are case-insensitive; ``X`` is looked up exactly first, then ignoring
    case. Unknown variables and non-``env`` variables stay as written for spawn time.
    """

    def lookup(key: str) -> str | None:
        head, _, name = key.partition(".")
        if head.lower() != "env" or not name:
            return None
        return lookup_name(name, variables)

    return expand(value, lookup)


@functools.lru_cache(maxsize=512)
def _split(text: str) -> tuple[str, ...]:
    return tuple(shlex.split(text))


def split_template(text: str, key: str = "cmd") -> list[str]:
    """Split a command template shell-style into arguments, *before* any substitution.

    Raises :class:`ValueError` naming ``key`` when it cannot be split (an unclosed quote).
    Cached: the same templates are split at every spawn.
    """
    try:
        return list(_split(text))
    except ValueError as exc:
        raise ValueError(f"cannot split {key} into arguments ({exc}): {text!r}") from None


def check_templates(cfg: WatcherConfig) -> None:
    """At load: the command templates of a watcher can be split (ConfigError naming the key)."""
    if cfg.argv is not None:
        return
    checks = [("args", cfg.args if isinstance(cfg.args, str) else ""),
              ("shell_args", cfg.shell_args or "")]
    if not cfg.shell:
        checks.insert(0, ("cmd", cfg.cmd))
    for key, text in checks:
        try:
            split_template(text, key)
        except ValueError as exc:
            raise ConfigError(str(exc), key=key) from None
