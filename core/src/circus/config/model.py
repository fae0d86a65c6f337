"""Typed configuration model: what circusd runs, independent of where it was written.

The INI loader (:mod:`circus.config.loader`), the Python API (``get_arbiter``) and the ``add``
command all produce these objects, so the daemon has one shape to consume and every value in it is
already converted and validated (numbers are numbers, signals are ints, booleans are bools).
Defaults are those of the Circus 0.19 INI file (protocol contract, section 8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from circus.config import convert
from circus.config.checks import ConfigWarning
from circus.config.kinds import (
    ArgsKind,
    BoolKind,
    EnvKind,
    FloatKind,
    HooksKind,
    IdKind,
    IntKind,
    RlimitsKind,
    SignalKind,
    StreamKind,
    StrKind,
    seconds,
)
from circus.config.schema import Effect, Option, family, legacy, option, options_of
from circus.config.socket_section import SocketConfig
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
    #: CURVE (circus.curve): the daemon's .key_secret file and the directory of admitted keys.
    curve_server_key: str | None = None
    curve_authorized_keys: str | None = None
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
    #: unknown keys are errors instead of warnings (``circusd --strict`` does the same)
    strict: bool = False
    #: answer discovery datagrams: only when ``multicast_endpoint`` is set (circus.discovery)
    discovery: bool = False
    # Keys of [circus] that circus does not know, kept as written (0.19 ignores them too).
    extra: dict[str, str] = field(default_factory=dict)

STORE, RELOAD, IGNORE = Effect.STORE, Effect.RELOAD, Effect.IGNORE


def _cmd(value: Any) -> str:
    text = convert.to_str(value)
    if not text.strip():
        raise ValueError("cmd must not be empty")
    return text


def _argv(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("argv must be a non-empty list of strings")
    return [convert.to_str(item) for item in value]


def _py_version(value: Any) -> str | None:
    text = convert.to_optional_str(value)
    if text is not None and not re.fullmatch(r"\d+\.\d+", text.strip()):
        raise ValueError(f"invalid Python version {text!r}: expected X.Y, e.g. 3.12")
    return text.strip() if text else None


@dataclass(slots=True)  # 500 watchers: -0.6 MB (no per-instance dict of ~60 fields)
class WatcherConfig:
    """One watcher (contract 8.3): a ``[watcher:NAME]`` or ``[plugin:NAME]`` section, or ``add``.

    **This class is the option schema**: each field declared with :func:`option`/:func:`family`
    is a watcher option, with its kind (conversion and checks), its default, what ``set`` does
    with it and whether ``options`` shows it (:mod:`circus.config.schema`). Adding an option is
    one line here; the loader, ``set``/``add``/``options``/``get``, circusctl and plugin sections
    all read :data:`WATCHER_OPTIONS`.

    Notes for the daemon:

    * ``argv``: when not ``None`` it is the exact argument vector to execute (no shell-style
      splitting, no ``$(circus.*)`` substitution, ``cmd``/``args`` are informative only). Plugin
      watchers use it so that ``--config`` values containing spaces or quotes survive (P5).
    * ``env`` holds ``[env]`` plus the matching ``[env:...]`` sections (``$NAME`` already expanded),
      *not* circusd's environment: ``copy_env``/``copy_path`` are applied when spawning.
    * ``rlimits`` keys are lower-case resource names without prefix (``nofile``), ``None`` means
      unlimited. ``uid``/``gid`` are numeric (names are resolved when loading).
    * ``executable`` is stored for the daemon to honour (0.19 ignored it, E6).
    * ``min_uptime``, ``backoff_start``, ``backoff_max``, ``give_up_after``: crash-loop protection
      (ours, docs/daemon.md); ``max_retry`` keeps 0.19's meaning (failed spawns in a row).
    * ``extra`` holds free-form options as raw strings (``"flapping.max_retry": "7"``).
    """

    name: str
    cmd: str = option("", StrKind(conv=_cmd), RELOAD, plugin=False)
    args: str | list[str] = option("", ArgsKind(), RELOAD, plugin=False)
    argv: list[str] | None = option(None, StrKind(conv=_argv), shown=False, plugin=False)
    numprocesses: int = option(1, IntKind(0), STORE, plugin=False)
    warmup_delay: float = option(0.0, seconds(), STORE)
    working_dir: str | None = option(None, StrKind(optional=True), RELOAD)
    shell: bool = option(False, BoolKind(), RELOAD, plugin=False)
    shell_args: str | None = option(None, StrKind(optional=True), plugin=False)
    uid: int | None = option(None, IdKind(convert.to_uid), RELOAD)
    gid: int | None = option(None, IdKind(convert.to_gid), RELOAD)
    copy_env: bool = option(False, BoolKind(), RELOAD)
    copy_path: bool = option(False, BoolKind(), shown=False)
    env: dict[str, str] = family(dict, EnvKind(), RELOAD, shown=True, plugin=False)
    send_hup: bool = option(False, BoolKind(), STORE)
    stop_signal: int = option(15, SignalKind(), STORE)
    stop_children: bool = option(False, BoolKind(), STORE)
    graceful_timeout: float = option(30.0, seconds(), STORE)
    max_retry: int = option(5, IntKind(-1), STORE)
    min_uptime: float = option(1.0, seconds(), STORE)
    backoff_start: float = option(0.1, seconds(), STORE)
    backoff_max: float = option(30.0, seconds(), STORE)
    give_up_after: int = option(0, IntKind(0), STORE)
    priority: int = option(0, IntKind())
    singleton: bool = option(False, BoolKind(), IGNORE, plugin=False)
    use_sockets: bool = option(False, BoolKind())
    autostart: bool = option(True, BoolKind(), shown=False)
    respawn: bool = option(True, BoolKind(), STORE)
    on_demand: bool = option(False, BoolKind())
    max_age: int = option(0, IntKind(0), RELOAD)
    max_age_variance: int = option(30, IntKind(0), RELOAD)
    executable: str | None = option(None, StrKind(optional=True), plugin=False)
    close_child_stdin: bool = option(True, BoolKind(), RELOAD)
    close_child_stdout: bool = option(False, BoolKind(), RELOAD)
    close_child_stderr: bool = option(False, BoolKind(), RELOAD)
    stdin_socket: str | None = option(None, StrKind(optional=True), shown=False)
    virtualenv: str | None = option(None, StrKind(optional=True), shown=False)
    virtualenv_py_ver: str | None = option(None, StrKind(conv=_py_version), shown=False)
    check_flapping: bool = option(True, BoolKind(), shown=False)
    rlimits: dict[str, int | None] = family(dict, RlimitsKind(), RELOAD, prefix="rlimit_")
    stdout_stream: dict[str, str] = family(
        dict, StreamKind(), RELOAD, prefix="stdout_stream.", shown_as="stdout_stream_conf"
    )
    stderr_stream: dict[str, str] = family(
        dict, StreamKind(), RELOAD, prefix="stderr_stream.", shown_as="stderr_stream_conf"
    )
    hooks: dict[str, str] = family(dict, HooksKind(), STORE, prefix="hooks.")
    extra: dict[str, str] = field(default_factory=dict)
    is_plugin: bool = False


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
    #: ``[socket:NAME]`` sections (:mod:`circus.config.socket_section`), sorted by name
    sockets: list[SocketConfig] = field(default_factory=list)
    # The [env] section (after $NAME expansion), for reference and for `add`.
    env: dict[str, str] = field(default_factory=dict)
    #: likely mistakes 0.19 accepts silently (unknown keys...): circusd logs them at start
    warnings: list[ConfigWarning] = field(default_factory=list)


#: every watcher option, by name (see :class:`WatcherConfig`)
WATCHER_OPTIONS: dict[str, Option] = options_of(WatcherConfig)
#: keys 0.19's ``set`` accepts that are not watcher options (accepted, ignored)
LEGACY_SET_KEYS: dict[str, Option] = {"retry_in": legacy("retry_in", FloatKind(), IGNORE)}
