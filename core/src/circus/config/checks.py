"""Mistakes Circus 0.19 silently ignores, caught at load: unknown keys and section types.

0.19 keeps any unknown watcher key as a free-form option and drops any section whose type it does
not know, so ``numprocess = 3`` runs one process and ``[wacher:web]`` runs nothing, without a
word. Here:

* an unknown **section type** (``[wacher:web]``) is a :class:`ConfigError` naming the file and
  the section it most likely meant: a dropped watcher is never what the user wants;
* an unknown **key** is a :class:`ConfigWarning` ("did you mean ...") naming file, section and
  key, because 0.19 accepts it and a config that ran under 0.19 must keep running; under
  ``--strict`` (or ``[circus] strict = true``) the loader raises it as an error instead.

Which keys are known comes from the declarations, never from a list kept here: watcher options
from the model (:data:`~circus.config.model.WATCHER_OPTIONS`), ``[circus]`` keys from
:data:`~circus.config.settings.SETTINGS`. A watcher key with a dot (``flapping.max_retry``) is a
free-form option addressed to a plugin, as 0.19 documents: it is judged against the keys that
plugin declares, by :mod:`circus.config.plugin_keys`. Keys of a
``[plugin:NAME]`` section belong to the plugin: they are judged by the plugin's own
``check_config`` (:mod:`circus.plugins.registry`), not here.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from circus.errors import ConfigError

#: section names and prefixes the loader reads (``[env]``/``[env:PATTERNS]``, ``[DEFAULT]``)
SECTION_TYPES = ("circus", "env", "DEFAULT", "watcher:", "plugin:", "socket:", "env:")
KNOWN_SECTIONS = "[circus], [env], [env:PATTERNS], [watcher:NAME], [plugin:NAME], [socket:NAME]"


@dataclass(frozen=True)
class ConfigWarning:
    """A config entry that loads but is probably a mistake; ``str()`` locates it like
    :class:`ConfigError` does, so warnings and errors read the same."""

    message: str
    path: str | None = None
    section: str | None = None
    key: str | None = None

    def as_error(self) -> ConfigError:
        return ConfigError(
            f"{self.message} (refused under strict mode)",
            path=self.path,
            section=self.section,
            key=self.key,
        )

    def __str__(self) -> str:
        return str(ConfigError(self.message, path=self.path, section=self.section, key=self.key))


def suggest(word: str, choices: Iterable[str], cutoff: float = 0.7) -> str | None:
    """The closest of ``choices`` to ``word`` (case-insensitive), if any is close enough."""
    folded = {choice.lower(): choice for choice in choices}
    found = difflib.get_close_matches(word.lower(), list(folded), n=1, cutoff=cutoff)
    return folded[found[0]] if found else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'numprocesses'?"`` or an empty string."""
    found = suggest(word, choices)
    return f"; did you mean {found!r}?" if found else ""


def check_section_type(section: str, path: str | None) -> ConfigWarning | None:
    """Judge a section the loader would otherwise drop without a word.

    Close to a known type (``[wacher:web]``, ``[circs]``, ``[Watcher:web]``): a
    :class:`ConfigError` naming the section meant, since a dropped watcher or ``[circus]`` is
    never intended. Unlike any (``[tool-x]``, perhaps another program's): a warning, as 0.19
    accepts it.
    """
    prefixes = tuple(t for t in SECTION_TYPES if t.endswith(":"))
    if section in SECTION_TYPES or section.startswith(prefixes):
        return None
    kind, colon, rest = section.partition(":")
    kinds = [t for t in SECTION_TYPES if t.endswith(":") == bool(colon)]
    guess = suggest(kind + colon, kinds, cutoff=0.6)  # short words: one swap costs more
    if guess is not None:
        raise ConfigError(
            f"unknown section type; did you mean [{guess}{rest}]? (known: {KNOWN_SECTIONS})",
            path=path,
            section=section,
        )
    return ConfigWarning(f"unknown section type, ignored (known: {KNOWN_SECTIONS})", path=path,
                         section=section)


def unknown_key(
    key: str, known: Iterable[str], *, path: str | None, section: str, note: str = ""
) -> ConfigWarning:
    """The warning for ``key`` that is none of ``known``."""
    message = f"unknown option{did_you_mean(key, known)}{note}"
    return ConfigWarning(message, path=path, section=section, key=key)
