"""``load_config(path)``: read an INI file and its includes into a :class:`CircusConfig`.

Every user mistake becomes a :class:`~circus.errors.ConfigError` naming the file, section and key
(circusd prints it on one line and exits 1), never a traceback.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Mapping

import structlog

from circus.config.checks import ConfigWarning, check_section_type, unknown_key
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
from circus.config.model import WATCHER_OPTIONS, CircusConfig, WatcherConfig
from circus.config.plugin_keys import AddressedKey, plugin_key_warnings
from circus.config.plugin_section import (
    PLUGIN_PREFIX,
    httpd_plugin,
    plugin_watcher,
    undeclared_keys,
)
from circus.config.settings import (
    CIRCUS_SECTION,
    INCLUDE_KEYS,
    NOT_READ_BY_019,
    SETTINGS,
    settings_from_options,
)
from circus.config.socket_section import (
    SOCKET_KEYS,
    SOCKET_PREFIX,
    SocketConfig,
    socket_from_options,
)
from circus.config.socket_use import check_socket_references
from circus.config.watcher_options import watcher_from_options
from circus.errors import ConfigError

WATCHER_PREFIX = "watcher:"
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


def _include_paths(main_path: str, data: IniData, warnings: list[ConfigWarning]) -> list[str]:
    """Files named by ``include`` / ``include_dir`` of the main file, relative to its folder.

    What matches nothing is a warning (0.19 behaviour), so an optional ``conf.d/*.ini`` works.
    """
    options = data.sections.get(CIRCUS_SECTION, {})
    base = os.path.dirname(os.path.abspath(main_path))
    found: list[str] = []
    for pattern in options.get("include", "").split():
        full = os.path.join(base, os.path.expanduser(pattern))
        matched = sorted(glob.glob(full))
        if not matched:  # 0.19 warns and goes on, even for a plain file name
            warnings.append(
                ConfigWarning(
                    f"{'no file matches' if _GLOB_CHARS & set(pattern) else 'no such file'} "
                    f"{full!r}: nothing included",
                    path=main_path,
                    section=CIRCUS_SECTION,
                    key="include",
                )
            )
        found.extend(matched)
    for folder in options.get("include_dir", "").split():
        full = os.path.join(base, os.path.expanduser(folder))
        if not os.path.isdir(full):
            warnings.append(
                ConfigWarning(f"{full!r} is not a directory: nothing included", path=main_path,
                              section=CIRCUS_SECTION, key="include_dir")
            )
            continue
        matched = sorted(glob.glob(os.path.join(full, "*.ini")))
        if not matched:
            log.info("include_dir holds no *.ini file", include_dir=full, config=main_path)
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
        """``$NAME`` from circusd's environment, then ``$(circus.env.X)`` as in every other
        section (``[env]`` values are visible from ``[env:...]`` sections)."""
        items = self.data.items(section).items()
        variables = {**self.environ, **self.global_env}
        return {
            key: substitute_env(expand_dollar_names(value, self.environ), variables)
            for key, value in items
        }

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


def load_config(path: str | os.PathLike[str], *, strict: bool = False) -> CircusConfig:
    """Load the configuration file at ``path`` (contract section 8).

    Likely mistakes that 0.19 accepts (unknown keys, a missing include) land in
    ``config.warnings``; with ``strict`` (or ``[circus] strict = true``) the first one is raised
    as a :class:`ConfigError` instead.
    """
    main_path = os.fspath(path)
    data = IniData()
    warnings: list[ConfigWarning] = []
    _read(main_path, data)
    for include in _include_paths(main_path, data, warnings):
        _read(include, data, included_from=main_path)
    for section in data.names():
        odd = check_section_type(section, data.origin(section))
        if odd is not None:
            warnings.append(odd)

    sections = _Sections(data)
    settings = settings_from_options(
        sections.options(CIRCUS_SECTION, sections.global_env),
        lambda key: data.origin(CIRCUS_SECTION, key),
    )
    config = CircusConfig(
        path=os.path.abspath(main_path), settings=settings, env=sections.global_env
    )
    config.warnings.extend(warnings)
    config.warnings.extend(ConfigWarning(m, path=p, section=s) for p, s, m in data.warnings)
    config.warnings.extend(_circus_key_warnings(data, settings.extra))
    names = sorted(n for n in data.names() if data.items(n))
    for section in sorted(data.names()):  # an empty [socket:x] is a socket with 0.19's defaults
        if section.startswith(SOCKET_PREFIX):
            sock = _load_socket(section, sections)
            if any(other.name == sock.name for other in config.sockets):
                raise ConfigError(
                    f"duplicate socket name {sock.name!r} (socket names are lower-cased)",
                    path=data.origin(section),
                    section=section,
                )
            config.sockets.append(sock)
            config.warnings.extend(
                unknown_key(key, SOCKET_KEYS, path=data.origin(section, key), section=section,
                            note=" (ignored)")
                for key in _written(data, section, sock.extra)
            )
    seen: dict[str, str] = {}
    for section in names:
        if section.startswith(WATCHER_PREFIX):
            watcher = _load_watcher(section, sections, config.warnings)
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
        if not watcher.is_plugin:
            config.warnings.extend(_watcher_key_warnings(data, section, watcher))
    # after every section: a watcher key may address a plugin whose section comes later
    config.warnings.extend(_plugin_key_warnings(data, config))
    httpd = httpd_plugin(config.settings, sections.env_for(PLUGIN_PREFIX + "web"), set(seen))
    if isinstance(httpd, str):
        config.warnings.append(ConfigWarning(httpd, path=data.origin(CIRCUS_SECTION, "httpd"),
                                             section=CIRCUS_SECTION, key="httpd"))
    elif httpd is not None:
        config.plugins.append(httpd[0])
        config.watchers.append(httpd[1])
    try:
        check_socket_references(config.watchers, config.sockets)
    except ConfigError as exc:
        raise ConfigError(exc.message, path=data.origin(exc.section or ""), section=exc.section,
                          key=exc.key) from None
    if (strict or settings.strict) and config.warnings:
        raise config.warnings[0].as_error()
    return config


def _written(data: IniData, section: str, keys: Iterable[str]) -> list[str]:
    """The ``keys`` written in ``section`` itself (``[DEFAULT]`` values reach every section and
    are not judged against each of them)."""
    own = data.sections.get(section, {})
    return sorted(key for key in keys if key in own)


def _circus_key_warnings(data: IniData, extra: Mapping[str, str]) -> list[ConfigWarning]:
    found = []
    for key in _written(data, CIRCUS_SECTION, extra):
        path = data.origin(CIRCUS_SECTION, key)
        if key in NOT_READ_BY_019:
            found.append(ConfigWarning("ignored: 0.19 does not read it from a config file either",
                                       path=path, section=CIRCUS_SECTION, key=key))
        else:
            known = [*SETTINGS, *INCLUDE_KEYS]
            found.append(unknown_key(key, known, path=path, section=CIRCUS_SECTION,
                                     note=" (ignored)"))
    return found


def _watcher_key_warnings(
    data: IniData, section: str, watcher: WatcherConfig
) -> list[ConfigWarning]:
    """Free-form keys without a dot: ``numprocess`` is a typo that 0.19 keeps as a free-form
    option without a word; ``flapping.max_retry`` addresses a plugin and is judged against it
    (:mod:`circus.config.plugin_keys`) once every section is loaded."""
    unknown = [key for key in watcher.extra if "." not in key]
    return [
        unknown_key(key, WATCHER_OPTIONS, path=data.origin(section, key), section=section,
                    note=" (kept as a free-form option, as 0.19 does)")
        for key in _written(data, section, unknown)
    ]


def _plugin_key_warnings(data: IniData, config: CircusConfig) -> list[ConfigWarning]:
    """Dotted free-form keys of the ``[watcher:X]`` sections (``flapping.max_rety``), judged
    against the plugins they address."""
    addressed: list[AddressedKey] = []
    for watcher in config.watchers:
        section = WATCHER_PREFIX + watcher.name
        if not watcher.is_plugin and section in data.sections:
            addressed.extend(
                AddressedKey(key, section, data.origin(section, key))
                for key in _written(data, section, [k for k in watcher.extra if "." in k])
            )
    return plugin_key_warnings(addressed, config.plugins)


def _load_socket(section: str, sections: _Sections) -> SocketConfig:
    options = sections.options(section, sections.global_env)
    try:
        return socket_from_options(section[len(SOCKET_PREFIX) :], options)
    except ConfigError as exc:
        raise sections.locate(exc, section) from None


def _load_watcher(
    section: str, sections: _Sections, warnings: list[ConfigWarning]
) -> WatcherConfig:
    name = section[len(WATCHER_PREFIX) :]
    env = sections.env_for(name)
    options = sections.options(section, env, keep=TEMPLATE_KEYS)  # substituted at spawn
    if "env" in options:
        warnings.append(ConfigWarning(
            "ignored in a watcher section (as in 0.19); use an [env:NAME] section",
            path=sections.data.origin(section, "env"), section=section, key="env",
        ))
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
    unknown, known = undeclared_keys(use, _written(sections.data, section, options))
    config.warnings.extend(
        unknown_key(key, known, path=sections.data.origin(section, key), section=section,
                    note=" (not an option the plugin declares; passed to it anyway, as 0.19 does)")
        for key in unknown
    )
    return watcher
