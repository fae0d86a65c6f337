"""``load_config(path)``: read an INI file and its includes into a :class:`CircusConfig`.

Every user mistake becomes a :class:`~circus.errors.ConfigError` naming the file, section and key
(circusd prints it on one line and exits 1), never a traceback.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping

import structlog

from circus.config.environment import (
    ENV_PREFIX,
    ENV_SECTION,
    TEMPLATE_KEYS,
    check_templates,
    env_section_patterns,
    expand_dollar_names,
    substitute_env,
    watcher_env,
)
from circus.config.ini import IniData, parse_ini
from circus.config.model import CircusConfig, WatcherConfig
from circus.config.plugin_section import PLUGIN_PREFIX, plugin_watcher
from circus.config.settings import CIRCUS_SECTION, settings_from_options
from circus.config.watcher_options import watcher_from_options
from circus.errors import ConfigError

WATCHER_PREFIX = "watcher:"
SOCKET_PREFIX = "socket:"
_GLOB_CHARS = frozenset("*?[")

log = structlog.get_logger(__name__)


def _read(path: str, data: IniData, included_from: str | None = None) -> None:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        what = "cannot read included config file" if included_from else "cannot read config file"
        raise ConfigError(
            f"{what} {path!r}: {reason}",
            path=included_from or path,
            section=CIRCUS_SECTION if included_from else None,
            key="include" if included_from else None,
        ) from None
    parse_ini(text, path, data)


def _include_paths(main_path: str, data: IniData) -> list[str]:
    """Files named by ``include`` / ``include_dir`` of the main file, relative to its folder."""
    options = data.sections.get(CIRCUS_SECTION, {})
    base = os.path.dirname(os.path.abspath(main_path))
    found: list[str] = []
    for pattern in options.get("include", "").split():
        full = os.path.join(base, os.path.expanduser(pattern))
        matched = sorted(glob.glob(full))
        if not matched and not _GLOB_CHARS & set(pattern):
            raise ConfigError(
                f"included file {full!r} does not exist",
                path=main_path,
                section=CIRCUS_SECTION,
                key="include",
            )
        if not matched:
            log.warning("include pattern matches no file", pattern=pattern, config=main_path)
        found.extend(matched)
    for folder in options.get("include_dir", "").split():
        full = os.path.join(base, os.path.expanduser(folder))
        if not os.path.isdir(full):
            log.warning("include_dir is not a directory", include_dir=full, config=main_path)
            continue
        matched = sorted(glob.glob(os.path.join(full, "*.ini")))
        if not matched:
            log.warning("include_dir holds no *.ini file", include_dir=full, config=main_path)
        found.extend(matched)
    unique: list[str] = []
    seen = {os.path.realpath(main_path)}
    for path in found:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            unique.append(path)
    return unique


class _Sections:
    """The merged INI data plus the environment tables every section is resolved against."""

    def __init__(self, data: IniData) -> None:
        self.data = data
        self.environ = dict(os.environ)
        self.global_env: dict[str, str] = {}
        if ENV_SECTION in data.sections:
            self.global_env = self._expanded(ENV_SECTION)
        self.pattern_sections = [
            (env_section_patterns(name), self._expanded(name))
            for name in data.names()
            if name.startswith(ENV_PREFIX)
        ]

    def _expanded(self, section: str) -> dict[str, str]:
        items = self.data.items(section).items()
        return {key: expand_dollar_names(value, self.environ) for key, value in items}

    def env_for(self, watcher_name: str) -> dict[str, str]:
        return watcher_env(watcher_name, self.global_env, self.pattern_sections)

    def options(
        self, section: str, env: Mapping[str, str], keep: frozenset[str] = frozenset()
    ) -> dict[str, str]:
        """Options of ``section`` after ``$(circus.env.X)`` substitution, except ``keep``.

        Precedence of variables: ``env`` (``[env]`` + ``[env:...]``) over circusd's environment.
        """
        variables = {**self.environ, **env}
        items = self.data.items(section).items()
        return {
            key: value if key in keep else substitute_env(value, variables)
            for key, value in items
        }

    def locate(self, exc: ConfigError, section: str) -> ConfigError:
        """Re-raise an error from a builder with the file of the offending key added."""
        path = self.data.origin(section, exc.key)
        return ConfigError(exc.message, path=path, section=section, key=exc.key)


def load_config(path: str | os.PathLike[str]) -> CircusConfig:
    """Load the configuration file at ``path`` (contract section 8)."""
    main_path = os.fspath(path)
    data = IniData()
    _read(main_path, data)
    for include in _include_paths(main_path, data):
        _read(include, data, included_from=main_path)

    sections = _Sections(data)
    settings = settings_from_options(
        sections.options(CIRCUS_SECTION, sections.global_env),
        lambda key: data.origin(CIRCUS_SECTION, key),
    )
    config = CircusConfig(
        path=os.path.abspath(main_path), settings=settings, env=sections.global_env
    )
    names = sorted(n for n in data.names() if data.items(n))
    for section in names:
        if section.startswith(SOCKET_PREFIX):
            raise ConfigError(
                "[socket:*] sections are not supported yet; remove the section (and use_sockets)",
                path=data.origin(section),
                section=section,
            )
    seen: dict[str, str] = {}
    for section in names:
        if section.startswith(WATCHER_PREFIX):
            watcher = _load_watcher(section, sections)
        elif section.startswith(PLUGIN_PREFIX):
            watcher = _load_plugin(section, sections, config)
        else:
            continue
        folded = watcher.name.lower()
        if folded in seen:
            raise ConfigError(
                f"duplicate watcher name {watcher.name!r} (names are case-insensitive; "
                f"already defined by [{seen[folded]}])",
                path=data.origin(section),
                section=section,
            )
        seen[folded] = section
        config.watchers.append(watcher)
    return config


def _load_watcher(section: str, sections: _Sections) -> WatcherConfig:
    name = section[len(WATCHER_PREFIX) :]
    env = sections.env_for(name)
    options = sections.options(section, env, keep=TEMPLATE_KEYS)  # substituted at spawn
    if "env" in options:
        log.warning(
            "'env' is ignored in a watcher section; use an [env:NAME] section",
            section=section,
            config=sections.data.origin(section, "env"),
        )
        del options["env"]
    try:
        watcher = watcher_from_options(name, {**options, "env": env})
        check_templates(watcher)
        return watcher
    except ConfigError as exc:
        raise sections.locate(exc, section) from None


def _load_plugin(section: str, sections: _Sections, config: CircusConfig) -> WatcherConfig:
    env = sections.env_for(section)
    options = sections.options(section, env)
    use = options.pop("use", "")
    try:
        plugin, watcher = plugin_watcher(section, use, options, config.settings, env)
    except ConfigError as exc:
        raise sections.locate(exc, section) from None
    config.plugins.append(plugin)
    return watcher
