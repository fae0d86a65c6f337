"""``circus-plugin``: run one plugin against a circusd (contract 6.3, with the fixes of 12).

circusd starts every ``[plugin:NAME]`` section as ``python -m circus.plugins.runner ...``; people
run it by hand the same way. Differences from the 0.19 runner, all deliberate:

* SIGTERM (what circusd sends) and SIGINT stop the plugin cleanly: ``handle_stop`` runs (P2);
  SIGHUP calls the plugin's ``handle_reload`` in its loop thread.
* The plugin is constructed with keywords only, so a subclass may take its own parameters first
  (the seed ``Logger(filename, **kwargs)``).
* ``PLUGIN`` may be a short name from an installed distribution; ``--list`` shows them.
* ``circus-plugin new NAME`` writes a new plugin distribution (:mod:`circus.plugins.scaffold`).
* Extra ``key=value`` arguments (or ``-o key=value``) are merged into the plugin's config.
* An inactive plugin (``active = false``) idles until stopped instead of exiting 1, which made
  circusd respawn it forever (P8).
* ``--ssh`` is refused with a clear message: SSH tunnels are not supported.
* When no circusd answers at ``--endpoint`` within ``--connect-timeout`` seconds (10), the
  runner says so and exits 1 instead of waiting forever.

Exit status: 0 normal end (also after SIGTERM/SIGINT), 1 plugin not found / failed to load /
failed to start, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from circus import __version__
from circus.config.checks import did_you_mean
from circus.config.plugin_section import undeclared_keys
from circus.errors import CircusError
from circus.logs import FORMATS, LEVELS, configure_logging, get_logger
from circus.plugins import registry
from circus.plugins.codec import decode_config
from circus.protocol import DEFAULT_ENDPOINT, DEFAULT_PUBSUB

PROG = "circus-plugin"


class _Shutdown(BaseException):
    """Raised by the SIGTERM/SIGINT handler to leave the blocking ``start()``."""


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key.strip(), value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run a circus plugin against a running circusd.",
        epilog="PLUGIN is a short name (see --list) or a dotted path: pkg.mod.Class or "
        "pkg.mod:Class. Extra key=value arguments are added to the plugin's config.",
    )
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help="control endpoint")
    parser.add_argument("--pubsub", default=DEFAULT_PUBSUB, help="event (pub/sub) endpoint")
    parser.add_argument("--config", default=None, help="plugin options as k:v:::k2:v2")
    parser.add_argument("-o", "--option", dest="options", action="append", default=[],
                        type=_key_value, metavar="KEY=VALUE", help="one plugin option")
    parser.add_argument("--check-delay", type=float, default=5.0, metavar="SECONDS",
                        help="circusd's check_delay, passed to the plugin")
    parser.add_argument("--stats-endpoint", default=None, metavar="ENDPOINT",
                        help="circusd's stats stream, for plugins implementing handle_stats "
                        "(circusd passes it when statsd = true)")
    parser.add_argument("--connect-timeout", type=float, default=None, metavar="SECONDS",
                        help="fail when circusd does not answer within this many seconds "
                        "(default 10; 0 = do not ask, e.g. to feed events from elsewhere)")
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error...")
    parser.add_argument("--log-output", default="-", help="'-' (stdout), 'stderr' or a file")
    parser.add_argument("--log-format", default="auto", choices=FORMATS)
    parser.add_argument("--ssh", default=None, metavar="SERVER", help=argparse.SUPPRESS)
    parser.add_argument("--list", action="store_true", help="list installed plugins and exit")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("plugin", nargs="?", metavar="PLUGIN")
    parser.add_argument("extra", nargs="*", type=_key_value, metavar="KEY=VALUE")
    return parser


def print_installed() -> None:
    rows = [("NAME", "DISTRIBUTION", "VERSION", "CLASS", "ERROR")]
    for info in registry.installed():
        rows.append((info.name, info.dist_name or "-", info.version or "-", info.class_path,
                     info.error or ""))
    if len(rows) == 1:
        print("no plugins installed (entry-point group 'circus.plugins')")
        return
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        print("  ".join([*cells, row[4]]).rstrip())


def _construct(cls: type, args: argparse.Namespace, config: dict[str, Any]) -> Any:
    if args.stats_endpoint:  # only then: a 0.19-style constructor need not know the keyword
        config = {**config, "stats_endpoint": args.stats_endpoint}
    try:
        return cls(endpoint=args.endpoint, pubsub_endpoint=args.pubsub,
                   check_delay=args.check_delay, ssh_server=None, **config)
    except TypeError as exc:
        # almost always a missing or unexpected option: say so without a traceback
        raise CircusError(f"cannot create plugin {cls.__name__}: {exc}") from exc


def _install_signals(state: dict[str, Any]) -> None:
    def terminate(signum: int, _frame: FrameType | None) -> None:
        if state.get("stopping"):
            return
        state["stopping"] = True
        state["signal"] = signal.Signals(signum).name
        raise _Shutdown

    def reload(_signum: int, _frame: FrameType | None) -> None:
        plugin = state.get("plugin")
        if plugin is not None and hasattr(plugin, "reload"):
            plugin.reload()

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    signal.signal(signal.SIGHUP, reload)


def _warn_undeclared(log: Any, args: argparse.Namespace) -> None:
    """Warn about ``key=value`` options typed on this command line that the plugin does not
    declare (``config_options``), as circusd does for a plugin section: a misspelt option would
    otherwise be silently ignored. ``--config`` keys are not judged again: circusd judged them
    when it loaded its configuration, and would have them warned at every respawn."""
    unknown, known = undeclared_keys(args.plugin, [key for key, _ in [*args.options, *args.extra]])
    for key in unknown:
        log.warning(f"{key}: unknown option{did_you_mean(key, known)} (not an option the plugin "
                    "declares; passed to it anyway)")


def _run(args: argparse.Namespace, state: dict[str, Any]) -> int:
    spec = registry.resolve(args.plugin)
    cls = spec.load()
    config: dict[str, Any] = decode_config(args.config) if args.config else {}
    config.update(dict(args.options))
    config.update(dict(args.extra))
    log = get_logger(getattr(cls, "name", "") or spec.name)
    _warn_undeclared(log, args)
    log.info("Loading the plugin...")
    log.info(f"Endpoint: {args.endpoint!r}")
    log.info(f"Pub/sub: {args.pubsub!r}")
    plugin = _construct(cls, args, config)
    if args.connect_timeout is not None:
        plugin.connect_timeout = args.connect_timeout
    state["plugin"] = plugin
    try:
        if getattr(plugin, "active", True) is False:
            log.info("Plugin is not active (active = false); idling until stopped")
            while True:
                threading.Event().wait(3600)
        log.info("Starting")
        plugin.start()
    except _Shutdown:
        log.info(f"Received {state.get('signal', 'a signal')}")
    finally:
        state["stopping"] = True
        log.info("Stopping")
        plugin.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["new"]:  # `circus-plugin new NAME`: scaffold a plugin distribution
        from circus.plugins.scaffold import main as scaffold

        return scaffold(arguments[1:])
    parser = build_parser()
    args = parser.parse_args(arguments)
    if args.ssh:
        parser.error("--ssh: SSH tunnels are not supported; run the plugin on circusd's host")
    if args.list or args.plugin == "list":
        print_installed()
        return 0
    if not args.plugin:
        parser.print_usage()
        return 0
    level = args.log_level if args.log_level.lower() in LEVELS else "info"
    try:
        configure_logging(level, args.log_output, args.log_format, process_name=PROG)
    except ValueError as exc:
        parser.error(str(exc))
    if level != args.log_level:
        get_logger(PROG).warning(f"unknown log level {args.log_level!r}; using info")
    state: dict[str, Any] = {}
    _install_signals(state)
    try:
        return _run(args, state)
    except _Shutdown:
        return 0
    except CircusError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        if args.log_output not in ("-", "stdout", "stderr", ""):
            get_logger(PROG).error(str(exc))
        return 1
    except Exception:
        get_logger(PROG).exception("the plugin failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
