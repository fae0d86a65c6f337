"""``circusctl``: send commands to a running circusd and print the replies (contract 10.2).

Exit status (contract 2.7), which scripts rely on:

* 0: a reply arrived and is not an error (with ``--json``: any reply);
* 1: no reply in time (the daemon is unreachable or slow) or another client failure;
* 2: the command line is wrong (unknown command or option, bad value, ``--ssh``);
* 3: the daemon answered with an error (not in ``--json`` mode).

The command table lives in :mod:`circus.ctl.commands`, rendering in :mod:`circus.ctl.render`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import zmq

from circus import __version__
from circus.client import CircusClient
from circus.clientopts import ENDPOINT_ENV, client_keys
from circus.config.settings import check_endpoint
from circus.credentials import CIRCUSCTL_LABEL
from circus.ctl import tail
from circus.ctl.commands import COMMANDS, LONG_STATUS, UsageError
from circus.ctl.globalopts import DEFAULT_TIMEOUT, add_global_options
from circus.ctl.listen import listen
from circus.ctl.render import as_json, is_error, note, render
from circus.ctl.shell import CtlShell
from circus.curve import ClientKeys, CurveKeyError, write_pair
from circus.discovery import discover
from circus.errors import CallError, CallTimeout
from circus.logs import configure_logging, get_logger
from circus.protocol import DEFAULT_ENDPOINT, DEFAULT_PUBSUB

EXIT_OK, EXIT_CLIENT, EXIT_USAGE, EXIT_ERROR_REPLY = 0, 1, 2, 3

TIMEOUT_HINT = (
    "circusd at {endpoint} is unreachable or slow: check --endpoint (or ${env}) and that "
    "circusd is running; for long operations (--waiting) raise --timeout."
)
EPILOG = (
    "Global options may also follow the command. Exit status: 0 ok, 1 no reply (timeout) or "
    "client failure, 2 usage error, 3 error reply from circusd. Run without a command for an "
    "interactive prompt."
)

log = get_logger("circusctl")


def _connect(settings: _Settings) -> CircusClient:
    """circusctl's client: its label makes events say ``"by": "circusctl"``."""
    return CircusClient(
        settings.endpoint, settings.timeout, label=CIRCUSCTL_LABEL, curve=settings.curve
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="circusctl", description="Control a running circusd.", epilog=EPILOG
    )
    add_global_options(parser)
    parser.add_argument("--version", action="version", version=f"circusctl {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    add_global_options(common)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for command in COMMANDS.values():
        cmd_parser = sub.add_parser(
            command.name, help=command.help, description=command.help, parents=[common]
        )
        command.arguments(cmd_parser)
    return parser


class _Settings:
    """Global options after defaults: explicit value, then the inherited one, then the default."""

    def __init__(self, ns: argparse.Namespace, inherited: _Settings | None = None) -> None:
        def pick(name: str, default: Any) -> Any:
            if hasattr(ns, name):
                return getattr(ns, name)
            return getattr(inherited, name) if inherited is not None else default

        self.explicit_endpoint: bool = hasattr(ns, "endpoint") or (
            inherited is not None and inherited.explicit_endpoint
        )
        self.endpoint = str(pick("endpoint", os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT))
        self.timeout = float(pick("timeout", DEFAULT_TIMEOUT))
        self.json = bool(pick("json", False))
        self.prettify = bool(pick("prettify", False))
        self.ssh: str | None = pick("ssh", None)
        self.ssh_keyfile: str | None = pick("ssh_keyfile", None)
        # the environment fallbacks ($CIRCUSCTL_CURVE_*) are applied by clientopts.client_keys
        self.curve_server_key: str | None = pick("curve_server_key", None)
        self.curve_key: str | None = pick("curve_key", None)
        self.curve: ClientKeys | None = None
        self.discover: str | None = pick("discover", None)

    def resolve_endpoint(self) -> None:
        """Ask the multicast group for circusd's endpoint when ``--discover`` is given
        (:class:`UsageError` for a bad address, :class:`TimeoutError` when nobody answers)."""
        if self.discover is None or self.explicit_endpoint:
            _check_endpoint(self.endpoint)
            return
        try:
            self.endpoint = discover(self.discover, self.timeout)
        except ValueError as exc:
            raise UsageError(f"--discover: {exc}") from None
        self.discover = None  # found: shell lines inheriting these settings reuse it

    def load_keys(self) -> None:
        """Read the CURVE keys named by the options (:class:`CurveKeyError` if unusable)."""
        self.curve = client_keys(self.curve_server_key, self.curve_key)


def _call(settings: _Settings, command: str, props: dict[str, object],
          client: CircusClient | None, *, unknown_hint: str | None = None) -> int:
    own = client is None or client.endpoint != settings.endpoint
    active = _connect(settings) if own else client
    assert active is not None
    active.timeout = settings.timeout
    try:
        reply = active.call(command, **props)
    except CallTimeout as exc:
        print(f"circusctl: {exc}", file=sys.stderr)
        print(TIMEOUT_HINT.format(endpoint=settings.endpoint, env=ENDPOINT_ENV), file=sys.stderr)
        return EXIT_CLIENT
    except (CallError, zmq.ZMQError) as exc:
        print(f"circusctl: {settings.endpoint}: {exc}", file=sys.stderr)
        return EXIT_CLIENT
    finally:
        if own:
            active.close()
    if settings.json:
        print(as_json(reply, settings.prettify))
        return EXIT_OK
    text = render(command, reply)
    remark = note(command, props, reply)
    if remark is not None:
        print(remark, file=sys.stderr)
    if is_error(reply):
        print(text, file=sys.stderr)
        if unknown_hint and "unknown command" in str(reply.get("reason")).lower():
            print(unknown_hint, file=sys.stderr)
        return EXIT_ERROR_REPLY
    print(text)
    return EXIT_OK


def run_command(ns: argparse.Namespace, settings: _Settings,
                client: CircusClient | None = None) -> int:
    """Run the one command parsed into ``ns``; returns the exit status."""
    if settings.ssh is not None or settings.ssh_keyfile is not None:
        print("circusctl: --ssh is not supported; open a tunnel instead, e.g. "
              "ssh -L 5555:127.0.0.1:5555 user@host, and use --endpoint", file=sys.stderr)
        return EXIT_USAGE
    command = COMMANDS[ns.command]
    try:
        props = command.properties(ns)
        if command.name != "keygen":
            settings.resolve_endpoint()
            settings.load_keys()
    except (UsageError, CurveKeyError) as exc:
        print(f"circusctl {command.name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TimeoutError as exc:
        print(f"circusctl: {exc}", file=sys.stderr)
        return EXIT_CLIENT
    if command.name == "keygen":
        return _keygen(props["directory"], props["name"])
    if command.name == "listen":
        endpoint = settings.endpoint if settings.explicit_endpoint else DEFAULT_PUBSUB
        return listen(endpoint, props["topics"], curve=settings.curve)
    if command.name in ("tail", "logs"):
        return _tail(settings, props)
    if props.pop(LONG_STATUS, False):
        return _call(settings, "processes", props, client,
                     unknown_hint="this circusd predates `status -l` (Circus 0.19?): "
                     "use `circusctl stats` for per-process figures")
    return _call(settings, command.name, props, client)


def _check_endpoint(endpoint: str) -> None:
    """``--endpoint bogus`` is a usage error (exit 2, one line), not a ZeroMQ traceback."""
    try:
        check_endpoint(endpoint)
    except ValueError as exc:
        raise UsageError(f"--endpoint: {exc}") from None


def _tail(settings: _Settings, props: dict[str, Any]) -> int:
    """``tail``/``logs``: backlog from the ``tail`` command, then the output channel."""
    with _connect(settings) as client:
        try:
            tail.run(client, props["names"], props["lines"], follow=props["follow"],
                     prefixed=props["prefixed"], stream=props["stream"], curve=settings.curve)
        except CallTimeout as exc:
            print(f"circusctl: {exc}", file=sys.stderr)
            print(TIMEOUT_HINT.format(endpoint=settings.endpoint, env=ENDPOINT_ENV),
                  file=sys.stderr)
            return EXIT_CLIENT
        except CallError as exc:
            print(f"circusctl: {exc}", file=sys.stderr)
            return EXIT_CLIENT
        except tail.TailError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_ERROR_REPLY
    return EXIT_OK


def _keygen(directory: str, name: str) -> int:
    """Write a key pair locally (no daemon involved) and say what to do with it."""
    try:
        public_path, secret_path = write_pair(directory, name)
    except FileExistsError as exc:
        print(f"circusctl keygen: error: {exc.filename} exists; not overwriting a key",
              file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"circusctl keygen: error: {exc}", file=sys.stderr)
        return EXIT_CLIENT
    print(f"public key: {public_path}\nsecret key: {secret_path} (mode 0600: keep it private)")
    print("For circusd: curve_server_key = <the .key_secret>; give clients the .key. For a "
          "client: copy the .key into circusd's curve_authorized_keys directory and use "
          "--curve-key <the .key_secret>.")
    return EXIT_OK


def _interactive(parser: argparse.ArgumentParser, settings: _Settings) -> int:
    client = _connect(settings)

    def run_words(words: list[str]) -> int:
        try:
            ns = parser.parse_args(words)
        except SystemExit as exc:  # argparse printed the usage message
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        if ns.command is None:
            return EXIT_OK
        return run_command(ns, _Settings(ns, settings), client)

    print(f"circusctl {__version__}")
    shell = CtlShell(run_words, parser.print_help)
    try:
        shell.last_status = run_words(["status"])
        shell.cmdloop()
    except KeyboardInterrupt:
        print()
    finally:
        client.close()
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging("warning", "stderr", process_name="circusctl")
    parser = build_parser()
    ns = parser.parse_args(argv)
    settings = _Settings(ns)
    try:
        if ns.command is None:
            try:
                settings.resolve_endpoint()
                settings.load_keys()
            except (CurveKeyError, UsageError) as exc:
                print(f"circusctl: error: {exc}", file=sys.stderr)
                return EXIT_USAGE
            except TimeoutError as exc:
                print(f"circusctl: {exc}", file=sys.stderr)
                return EXIT_CLIENT
            return _interactive(parser, settings)
        return run_command(ns, settings)
    except KeyboardInterrupt:
        return EXIT_CLIENT
    except Exception:
        log.exception("circusctl failed unexpectedly")
        return EXIT_CLIENT


if __name__ == "__main__":
    sys.exit(main())
