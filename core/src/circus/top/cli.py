"""``circus-top``: a live table of circusd's watchers and processes in the terminal.

    circus-top [--endpoint STATS] [--control CONTROL] [--process-timeout 3]
               [--curve-server-key FILE|KEY --curve-key FILE]

The command line of 0.19's circus-top keeps its meaning (``--endpoint`` is the *stats*
endpoint, ``--process-timeout`` drops a process the stream stopped mentioning, ``--ssh`` is
refused as in circusctl). What is new comes from the control channel (``--control``, default
``$CIRCUSCTL_ENDPOINT`` or ``tcp://127.0.0.1:5555``): the stats and event endpoints are asked
with ``globaloptions`` when not given, states and restart counts come from the ``processes``
command, and events refresh them at once. Without a stats stream (``statsd = false``) the
figures still come, every two seconds, from those snapshots. A circusd that requires CURVE
takes the options (and ``$CIRCUSCTL_CURVE_*`` variables) circusctl takes
(:mod:`circus.clientopts`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

from circus import __version__
from circus.clientopts import ENDPOINT_ENV, add_curve_options, client_keys, positive_float
from circus.ctl.tail import reachable
from circus.curve import ClientKeys, CurveKeyError
from circus.errors import CallError
from circus.protocol import DEFAULT_ENDPOINT, DEFAULT_PUBSUB
from circus.top.feeds import discover
from circus.top.model import TopModel

DEFAULT_STATS = "tcp://127.0.0.1:5557"
EXIT_OK, EXIT_CLIENT, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="circus-top", description="Live table of circusd's watchers and processes.",
        epilog="Keys: c m a r n p s sort (again: reverse), / filter, Esc clear, q quit.",
    )
    parser.add_argument("--endpoint", metavar="STATS",
                        help="stats endpoint (default: circusd's stats_endpoint, else "
                        f"{DEFAULT_STATS})")
    parser.add_argument("--control", metavar="ENDPOINT",
                        help=f"circusd's control endpoint (default ${ENDPOINT_ENV} or "
                        f"{DEFAULT_ENDPOINT}); 'none' for the stats stream alone")
    parser.add_argument("--pubsub", metavar="ENDPOINT",
                        help="event endpoint (default: circusd's pubsub_endpoint)")
    parser.add_argument("--process-timeout", type=positive_float, default=3.0, metavar="SECONDS",
                        help="without the control channel, drop a process the stream has not "
                        "mentioned for this long (default 3)")
    add_curve_options(parser)
    parser.add_argument("--ssh", help="not supported: tunnel the endpoints yourself (ssh -L)")
    parser.add_argument("--version", action="version", version=f"circus-top {__version__}")
    return parser


def resolve(ns: argparse.Namespace, curve: ClientKeys | None = None) -> dict[str, Any]:
    """The three endpoints (given, else asked from circusd, else the defaults) and the CURVE
    keys every socket uses: with CURVE circusd's three channels are all CURVE servers."""
    control = ns.control or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT
    options: dict[str, Any] = {}
    if control.lower() == "none":
        control = None
    else:
        try:
            options = asyncio.run(discover(control, curve))
        except CallError as exc:
            print(f"circus-top: {exc}; showing the stats stream alone until circusd answers",
                  file=sys.stderr)
    stats = ns.endpoint or options.get("stats_endpoint") or DEFAULT_STATS
    pubsub = ns.pubsub or options.get("pubsub_endpoint") or (DEFAULT_PUBSUB if control else None)
    return {
        "stats_endpoint": reachable(str(stats)),
        "control_endpoint": control,
        "pubsub_endpoint": reachable(str(pubsub)) if pubsub else None,
        "curve": curve,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    if ns.ssh is not None:
        print("circus-top: --ssh is not supported; open a tunnel instead, e.g. "
              "ssh -L 5557:127.0.0.1:5557 -L 5555:127.0.0.1:5555 user@host", file=sys.stderr)
        return EXIT_USAGE
    try:
        curve = client_keys(ns.curve_server_key, ns.curve_key)
    except CurveKeyError as exc:
        print(f"circus-top: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("circus-top: needs a terminal (stdin and stdout); for scripts use "
              "`circusctl status -l` or `circusctl stats`", file=sys.stderr)
        return EXIT_USAGE
    endpoints = resolve(ns, curve)
    from circus.top.app import TopApp  # urwid is imported only when a screen is drawn

    TopApp(TopModel(process_timeout=ns.process_timeout), endpoints,
           title=f"circus-top {__version__}").run()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
