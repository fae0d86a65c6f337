"""``[plugin:NAME]`` sections (and Python-API plugins) -> the watcher that runs the plugin.

Contract 6.1 with the improvements of section 12:

* the runner gets ``--check-delay <real check_delay>`` (P1);
* the command is an argument *vector* (``WatcherConfig.argv``), so ``--config`` values with spaces
  or quotes reach the plugin intact (P5);
* the INI artefact ``__name__`` is not added (P6);
* keys that are watcher options (``graceful_timeout``, ``respawn``, ``stop_signal``, ...) are
  converted to their types before they are applied to the plugin's watcher (P7).

Every key except ``use`` also reaches the plugin's ``config`` as a string (as in 0.19), because
some plugin options share a name with a watcher option (the flapping plugin's ``max_retry``).
Keys that define *what* the plugin watcher runs (``cmd``, ``args``, ``numprocesses``, ...) are
not applied to the watcher: they only reach the plugin.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from circus.config import convert
from circus.config.model import WATCHER_OPTIONS, CircusSettings, PluginConfig, WatcherConfig
from circus.config.schema import lookup
from circus.config.watcher_options import watcher_from_options
from circus.credentials import REGISTRY, permissions
from circus.errors import CircusError, ConfigError
from circus.plugins.codec import encode_config

PLUGIN_PREFIX = "plugin:"
#: The commands the plugin may send (circus.credentials); read by circusd, not passed on.
ALLOW_KEY = "allow"
RUNNER_MODULE = "circus.plugins.runner"


def _resolve(name: str, use: str, config: dict[str, str]) -> tuple[str, Any]:
    """Resolve ``use`` to a class path and check the plugin accepts ``config``.

    Uses :mod:`circus.plugins.registry` (plugin name, ``pkg.mod.Class`` or ``pkg.mod:Class``),
    which imports the class now so a typo stops circusd at load time with the list of installed
    plugins. Imported lazily: the plugin layer sits above config.
    """
    from circus.plugins import registry

    try:
        spec = registry.resolve(use)
        spec.check_options(dict(config))
        required = getattr(spec.load(), "required_commands", None)
    except ConfigError as exc:
        raise ConfigError(exc.message, section=name, key=exc.key) from None
    except CircusError as exc:
        raise ConfigError(str(exc), section=name, key="use") from None
    return spec.class_path, required


#: the class attribute by which a plugin declares the options it reads (names, a collection of
#: strings); without it circusd cannot tell a plugin option from a typo and does not judge them
OPTIONS_ATTRIBUTE = "config_options"
#: keys every plugin section may hold whatever the plugin declares (``queue_size`` and
#: ``topics`` are read by the plugin runtime itself, for every plugin)
_ALWAYS_KNOWN = frozenset({"use", ALLOW_KEY, "name", "active", "queue_size", "topics"})


def undeclared_keys(use: str, keys: Iterable[str]) -> tuple[list[str], list[str]]:
    """``keys`` of a ``[plugin:NAME]`` section its plugin does not declare, and what it declares.

    Empty when the plugin declares nothing (``config_options``): 0.19 plugins read any key, so
    only a plugin that says what it reads can have its keys judged. Watcher options (applied to
    the plugin's watcher) and ``use``/``allow``/``active`` are always known.
    """
    from circus.plugins import registry

    try:
        declared = getattr(registry.resolve(use).load(), OPTIONS_ATTRIBUTE, None)
    except CircusError:
        return [], []
    if declared is None or isinstance(declared, str):
        return [], []
    known = {str(name) for name in declared}
    unknown = [
        key for key in keys
        if key not in known and key not in _ALWAYS_KNOWN and lookup(WATCHER_OPTIONS, key) is None
    ]
    return unknown, sorted(known)


def _check_allowed(name: str, allowed: frozenset[str] | None) -> None:
    """``allow = incr, bogus`` is a config error naming the unknown command (imported lazily:
    the command layer sits above config)."""
    from circus.commands import COMMANDS

    unknown = sorted((allowed or frozenset()) - set(COMMANDS))
    if unknown:
        raise ConfigError(
            f"unknown command(s) {', '.join(map(repr, unknown))}; known: "
            f"{', '.join(sorted(COMMANDS))}",
            section=name,
            key=ALLOW_KEY,
        )


def is_plugin_watcher_option(key: str) -> bool:
    """A watcher option a plugin section may set on its watcher (``graceful_timeout``,
    ``min_uptime``...); those defining *what* runs (``cmd``, ``numprocesses``...) are fixed."""
    found = lookup(WATCHER_OPTIONS, key)
    return found is not None and found.option.plugin


def runner_argv(class_path: str, config: Mapping[str, str], settings: CircusSettings) -> list[str]:
    """The exact argument vector circusd executes for a plugin."""
    argv = [
        sys.executable,
        "-m",
        RUNNER_MODULE,
        "--endpoint",
        settings.endpoint,
        "--pubsub",
        settings.pubsub_endpoint,
        "--check-delay",
        str(settings.check_delay),
    ]
    if settings.statsd:  # the stats stream runs: plugins implementing handle_stats read it
        argv += ["--stats-endpoint", settings.stats_endpoint]
    encoded = encode_config(config)
    if encoded:
        argv += ["--config", encoded]
    if settings.debug:
        argv += ["--log-level", "DEBUG"]
    elif settings.loglevel:
        argv += ["--log-level", settings.loglevel]
    if settings.logoutput:
        argv += ["--log-output", settings.logoutput]
    argv.append(class_path)
    return argv


def plugin_watcher(
    name: str,
    use: str,
    options: Mapping[str, Any],
    settings: CircusSettings,
    env: Mapping[str, str] | None = None,
) -> tuple[PluginConfig, WatcherConfig]:
    """Build the plugin record and its singleton watcher.

    ``name`` is ``plugin:NAME`` (the prefix is added when missing); ``options`` are the section's
    other keys (``use`` excluded); ``env`` the ``[env]``/``[env:...]`` values for the watcher.
    Raises :class:`ConfigError` with ``section=name`` and the offending key: ``use`` when the
    plugin cannot be resolved, the option name for bad watcher values.
    """
    if not name.startswith(PLUGIN_PREFIX):
        name = PLUGIN_PREFIX + name
    if not name[len(PLUGIN_PREFIX) :].strip():
        raise ConfigError("plugin name must not be empty", section=name)
    if not use or not use.strip():
        message = "missing required option 'use' (the plugin to run)"
        raise ConfigError(message, section=name, key="use")
    config = {
        key: str(value)
        for key, value in options.items()
        if key not in ("use", "__name__", ALLOW_KEY)
    }
    config["name"] = name
    class_path, required = _resolve(name, use.strip(), config)
    allow = options.get(ALLOW_KEY)
    allowed = permissions(None if allow is None else str(allow), required)
    _check_allowed(name, allowed)
    REGISTRY.declare(name, allowed)
    for key in sorted(config):
        try:
            encode_config({key: config[key]})
        except ValueError as exc:
            raise ConfigError(str(exc), section=name, key=key) from None
    argv = runner_argv(class_path, config, settings)

    watcher_options: dict[str, Any] = {
        "cmd": argv[0],
        "args": shlex.join(argv[1:]),
        "argv": argv,
        "singleton": True,
        "numprocesses": 1,
        "priority": 1,
        "copy_env": True,
        "copy_path": True,
        "env": dict(env or {}),
    }
    if settings.debug:
        watcher_options["stdout_stream"] = {"class": "StdoutStream"}
        watcher_options["stderr_stream"] = {"class": "StdoutStream"}
    else:
        # visible by default (issue 8 item 7): one log record per line, tagged with the plugin;
        # `stdout_stream.*`/`stderr_stream.*` or `close_child_*` in the section replace this
        for stream in ("stdout_stream", "stderr_stream"):
            watcher_options[stream] = {"class": "LogStream", "tag": name}
    for key, value in options.items():
        if is_plugin_watcher_option(key):
            if key.startswith(("stdout_stream", "stderr_stream")):
                stream = key.partition(".")[0]
                if watcher_options.get(stream, {}).get("class") == "LogStream":
                    watcher_options[stream] = {}  # the section configures its own stream
            watcher_options[key] = value
    for closed, stream in (("close_child_stdout", "stdout_stream"),
                           ("close_child_stderr", "stderr_stream")):  # fmt: skip
        with contextlib.suppress(ValueError):  # a bad value is reported when converting
            if closed in options and convert.to_bool(options[closed]):
                watcher_options.pop(stream, None)
    if "copy_env" in options and "copy_path" not in options:
        # copy_path needs copy_env: turning copy_env off alone must not be an error
        with contextlib.suppress(ValueError):
            watcher_options["copy_path"] = convert.to_bool(options["copy_env"])
    try:
        watcher = watcher_from_options(name, watcher_options)
    except ConfigError as exc:
        raise ConfigError(exc.message, section=name, key=exc.key) from None
    watcher.is_plugin = True
    return PluginConfig(name=name, use=use, class_path=class_path, options=config), watcher


#: the plugin ``[circus] httpd = true`` starts (circushttpd's successor, circus-plugin-web)
HTTPD_PLUGIN = "web"


def httpd_plugin(
    settings: CircusSettings, env: Mapping[str, str] | None, taken: set[str]
) -> tuple[PluginConfig, WatcherConfig] | str | None:
    """``httpd = true``: the dashboard plugin on ``httpd_host:httpd_port``, as 0.19 started
    circushttpd; ``None`` without ``httpd``. A string says why it cannot run (circusd warns
    and runs the rest, as 0.19 did without circus-web): a ``[plugin:web]`` section already runs
    it (that section wins), the distribution is not installed, or the address would need an
    access token (give one in a ``[plugin:web]`` section). ``taken`` holds the lower-cased
    names of the watchers already defined."""
    if not settings.httpd:
        return None
    name = PLUGIN_PREFIX + HTTPD_PLUGIN
    if name in taken:
        return f"httpd = true and a [{name}] section: the section's dashboard runs"
    options = {"host": settings.httpd_host, "port": str(settings.httpd_port)}
    try:
        return plugin_watcher(name, HTTPD_PLUGIN, options, settings, env)
    except ConfigError as exc:
        option = {"host": "httpd_host", "port": "httpd_port"}.get(exc.key or "", exc.key)
        where = f" ({option})" if option else ""
        return (f"httpd = true: the dashboard does not start{where}: {exc.message}; install "
                "circus-plugin-web, or configure it in a [plugin:web] section")
