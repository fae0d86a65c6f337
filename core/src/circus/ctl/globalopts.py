"""The options every circusctl command accepts, before or after the command.

Their defaults are ``argparse.SUPPRESS``: an absent option leaves no attribute, so circusctl can
tell "not given" from "given with the default value" (an option after the command wins over
the same one before it, and a line typed at the interactive prompt inherits the rest). The
``add`` command reads them again from the end of its command line (:mod:`circus.ctl.commands`).
"""

from __future__ import annotations

import argparse

from circus.clientopts import ENDPOINT_ENV, add_curve_options, positive_float
from circus.protocol import DEFAULT_ENDPOINT, DEFAULT_MULTICAST, DEFAULT_PUBSUB

DEFAULT_TIMEOUT = 5.0


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """Add circusctl's global options to ``parser`` (the main parser and every command's)."""
    sup = argparse.SUPPRESS
    parser.add_argument("--endpoint", default=sup,
                        help=f"control endpoint (default ${ENDPOINT_ENV} or {DEFAULT_ENDPOINT}); "
                        f"for listen the pub/sub endpoint (default {DEFAULT_PUBSUB})")
    parser.add_argument("--discover", default=sup, metavar="udp://GROUP:PORT",
                        help="find circusd by multicast discovery instead of --endpoint (its "
                        f"multicast_endpoint, e.g. {DEFAULT_MULTICAST}; add ?interface=ADDR "
                        "to choose the interface)")
    parser.add_argument("--timeout", type=positive_float, default=sup, metavar="SECONDS",
                        help=f"how long to wait for a reply (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--json", action="store_true", default=sup,
                        help="print the raw JSON reply")
    parser.add_argument("--prettify", action="store_true", default=sup,
                        help="indent the JSON output (with --json)")
    add_curve_options(parser, default=sup)
    parser.add_argument("--ssh", default=sup, metavar="USER@HOST:PORT",
                        help="not supported: tunnel the endpoint yourself (ssh -L)")
    parser.add_argument("--ssh_keyfile", default=sup, help=argparse.SUPPRESS)
