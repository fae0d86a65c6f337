"""Typed configuration model: what circusd runs, independent of where it was written.

The INI loader (:mod:`circus.config.loader`), the Python API (``get_arbiter``) and the ``add``
command all produce these objects, so the daemon has one shape to consume and every value in it is
already converted and validated (numbers are numbers, signals are ints, booleans are bools).
Defaults are those of the Circus 0.19 INI file (protocol contract, section 8).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from circus.protocol import (
    DEFAULT_ENDPOINT,
    DEFAULT_MULTICAST,
    DEFAULT_PUBSUB,
    DEFAULT_STATS_ENDPOINT,
)


@dataclass
class CircusSettings:
    """The ``[circus]`` section (contract 8.2).

    ``loglevel``/``logoutput`` are ``None`` when the file does not set them: circusd then uses its
    command-line values (default ``info`` / ``-``) and plugins get no ``--log-level`` or
    ``--log-output``.
    ``check_delay`` is 5.0 as in 0.19 INI files (the Python API's 1.0 default is the arbiter's).
    """

    endpoint: str = DEFAULT_ENDPOINT
    pubsub_endpoint: str = DEFAULT_PUBSUB
    stats_endpoint: str = DEFAULT_STATS_ENDPOINT
    multicast_endpoint: str = DEFAULT_MULTICAST
    check_delay: float = 5.0
    endpoint_owner: str | None = None
    statsd: bool = False
    umask: int | None = None
    warmup_delay: float = 0.0
    debug: bool = False
    debug_gc: bool = False
    pidfile: str | None = None
    loglevel: str | None = None
    logoutput: str | None = None
    loggerconfig: str | None = None
    fqdn_prefix: str | None = None
    httpd: bool = False
    httpd_host: str = "localhost"
    httpd_port: int = 8080
    # Keys of [circus] that circus does not know, kept as written (0.19 ignores them too).
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class WatcherConfig:
    """One watcher (contract 8.3): a ``[watcher:NAME]`` or ``[plugin:NAME]`` section, or ``add``.

    Notes for the daemon:

    * ``argv``: when not ``None`` it is the exact argument vector to execute (no shell-style
      splitting, no ``$(circus.*)`` substitution, ``cmd``/``args`` are informative only). Plugin
      watchers use it so that ``--config`` values containing spaces or quotes survive (P5).
    * ``env`` holds ``[env]`` plus the matching ``[env:...]`` sections (``$NAME`` already expanded),
      *not* circusd's environment: ``copy_env``/``copy_path`` are applied when spawning.
    * ``rlimits`` keys are lower-case resource names without prefix (``nofile``), ``None`` means
      unlimited. ``uid``/``gid`` are numeric (names are resolved when loading).
    * ``executable`` is stored for the daemon to honour (0.19 ignored it, E6).
    * ``extra`` holds free-form options as raw strings (``"flapping.max_retry": "7"``).
    """

    name: str
    cmd: str
    args: str | list[str] = ""
    argv: list[str] | None = None
    numprocesses: int = 1
    warmup_delay: float = 0.0
    working_dir: str | None = None
    shell: bool = False
    shell_args: str | None = None
    uid: int | None = None
    gid: int | None = None
    copy_env: bool = False
    copy_path: bool = False
    env: dict[str, str] = field(default_factory=dict)
    send_hup: bool = False
    stop_signal: int = 15
    stop_children: bool = False
    graceful_timeout: float = 30.0
    max_retry: int = 5
    priority: int = 0
    singleton: bool = False
    use_sockets: bool = False
    autostart: bool = True
    respawn: bool = True
    on_demand: bool = False
    max_age: int = 0
    max_age_variance: int = 30
    executable: str | None = None
    close_child_stdin: bool = True
    close_child_stdout: bool = False
    close_child_stderr: bool = False
    stdin_socket: str | None = None
    virtualenv: str | None = None
    virtualenv_py_ver: str | None = None
    check_flapping: bool = True
    rlimits: dict[str, int | None] = field(default_factory=dict)
    stdout_stream: dict[str, str] = field(default_factory=dict)
    stderr_stream: dict[str, str] = field(default_factory=dict)
    hooks: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    is_plugin: bool = False

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> WatcherConfig:
        """Build a validated watcher from option values (see :func:`watcher_from_options`)."""
        from circus.config.watcher_options import watcher_from_options

        return watcher_from_options(name, options)


@dataclass
class PluginConfig:
    """A ``[plugin:NAME]`` section, kept for reference; the process itself is a WatcherConfig.

    ``name`` is the full ``plugin:NAME``; ``class_path`` is what ``use`` resolved to; ``options``
    are the strings the plugin receives as its ``config``.
    """

    name: str
    use: str
    class_path: str
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class CircusConfig:
    """A whole loaded configuration: settings, watchers (plugin watchers included), plugins."""

    path: str | None
    settings: CircusSettings = field(default_factory=CircusSettings)
    watchers: list[WatcherConfig] = field(default_factory=list)
    plugins: list[PluginConfig] = field(default_factory=list)
    # The [env] section (after $NAME expansion), for reference and for `add`.
    env: dict[str, str] = field(default_factory=dict)
