"""Command-line options shared by circusd's client tools (``circusctl``, ``circus-top``).

One definition of each, so an option has the same name, environment fallback, help and error
in every tool: a user who talks CURVE to circusd with circusctl uses the very same flags (or
exported variables) with circus-top.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from circus.curve import ClientKeys, CurveKeyError, load_public, load_secret_pair

#: the control endpoint when ``--endpoint`` (circus-top: ``--control``) is not given
ENDPOINT_ENV = "CIRCUSCTL_ENDPOINT"
#: circusd's public CURVE key (file or z85 text) when ``--curve-server-key`` is not given
CURVE_SERVER_KEY_ENV = "CIRCUSCTL_CURVE_SERVER_KEY"
#: this client's ``.key_secret`` file when ``--curve-key`` is not given
CURVE_KEY_ENV = "CIRCUSCTL_CURVE_KEY"


def positive_float(text: str) -> float:
    """argparse type for a duration: a number of seconds above zero (a usage error otherwise,
    never a traceback or a zero timeout that would make every wait fail at once)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def add_curve_options(parser: argparse.ArgumentParser, default: Any = None) -> None:
    """``--curve-server-key`` and ``--curve-key``; ``default`` is what an absent option leaves
    (circusctl passes ``argparse.SUPPRESS`` so an option repeated after the command wins)."""
    parser.add_argument("--curve-server-key", default=default, metavar="FILE|KEY",
                        help=f"circusd's public CURVE key: its .key file or the 40 z85 "
                        f"characters (default ${CURVE_SERVER_KEY_ENV})")
    parser.add_argument("--curve-key", default=default, metavar="FILE",
                        help=f"this client's .key_secret file (default ${CURVE_KEY_ENV}); "
                        "make one with circusctl keygen")


def client_keys(server_key: str | None, key: str | None) -> ClientKeys | None:
    """The CURVE keys named by the options, each falling back to its environment variable;
    ``None`` when neither is set (CURVE off). :class:`CurveKeyError` when only one is set or a
    key cannot be used: the message names the file and what is wrong with it."""
    server_key = server_key or os.environ.get(CURVE_SERVER_KEY_ENV) or None
    key = key or os.environ.get(CURVE_KEY_ENV) or None
    if server_key is None and key is None:
        return None
    if server_key is None or key is None:
        raise CurveKeyError("CURVE needs both --curve-server-key and --curve-key")
    public, secret = load_secret_pair(key)
    return ClientKeys(load_public(server_key), public, secret)
