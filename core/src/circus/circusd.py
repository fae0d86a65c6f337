"""``circusd``: load a config, run the arbiter until ``quit`` or a signal (contract 10.1, 2.8).

User mistakes (bad config, stale pidfile, unbindable endpoint) print one line on stderr and exit
with status 1 before any child is started; no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import resource
import select
import signal
import sys
import time
from collections.abc import Callable, Sequence

import structlog
import zmq

import circus
from circus.arbiter import Arbiter
from circus.config import CircusConfig, load_config
from circus.discovery import start_responder
from circus.errors import ConfigError
from circus.leftovers import take_over
from circus.logs import configure_logging
from circus.process import Process

log = structlog.get_logger("circus.circusd")


class StartupError(Exception):
    """Something prevents circusd from starting; the message is printed as is."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="circusd", description="Run and supervise the processes described by a config file."
    )
    parser.add_argument("config", nargs="?", help="configuration file (INI)")
    parser.add_argument("--daemon", action="store_true", help="detach and run in the background")
    parser.add_argument("--pidfile", help="write circusd's pid to this file")
    parser.add_argument("--log-level", dest="loglevel", help="critical|error|warning|info|debug")
    parser.add_argument("--log-output", dest="logoutput", help="'-' (stderr) or a file path")
    parser.add_argument(
        "--log-format",
        dest="logformat",
        default="auto",
        choices=["auto", "json", "console", "text"],
    )
    parser.add_argument("--logger-config", dest="loggerconfig",
                        help="a logging config file (.ini, .json, .yaml) that replaces level "
                        "and output; 'default' = circusd's own")
    parser.add_argument("--strict", action="store_true",
                        help="refuse a config with unknown keys or a missing include (default: "
                        "warn, as 0.19 accepts them)")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    return parser


def _check_pidfile(path: str) -> None:
    """Refuse to start when the pidfile names another live process (0.19's message)."""
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StartupError(f"cannot read pid file '{path}': {exc.strerror}") from None
    if not text.isdigit():
        return
    pid = int(text)
    if pid == os.getpid():
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    except PermissionError:
        pass
    raise StartupError(f"pid file '{path}' is stale, current pid {pid}")


def _write_pidfile(path: str) -> None:
    try:
        with open(path, "w") as handle:
            handle.write(f"{os.getpid()}\n")
    except OSError as exc:
        raise StartupError(f"cannot write pid file '{path}': {exc.strerror}") from None


#: ignored by the Python runtime itself, on purpose (EPIPE instead of death); subprocess puts
#: them back to default in every child (``restore_signals``)
_KEPT_IGNORED = frozenset({signal.SIGPIPE, signal.SIGXFSZ})


def clean_signal_state() -> list[str]:
    """Undo the signal state circusd inherited; returns the names of what was reset.

    An ignored disposition and the signal mask survive ``exec``: started under ``nohup`` (or
    from a shell's background job, or a supervisor that blocks signals), circusd would pass
    SIGHUP-ignored to every child, so ``send_hup`` and ``signal HUP`` did nothing (a shell
    cannot even trap a signal ignored at entry), and a blocked SIGTERM would stop circusd from
    hearing ``kill``. Doing it once here, instead of in each child, keeps spawning on
    subprocess's fast vfork path (a preexec function costs ~2 ms per spawn).
    """
    reset = []
    for signum in signal.valid_signals():
        if signum in _KEPT_IGNORED or signum in (signal.SIGKILL, signal.SIGSTOP):
            continue
        with contextlib.suppress(OSError, ValueError):
            if signal.getsignal(signum) == signal.SIG_IGN:
                signal.signal(signum, signal.SIG_DFL)
                reset.append(signal.Signals(signum).name)
    blocked = signal.pthread_sigmask(signal.SIG_SETMASK, set())
    reset.extend(f"blocked {signal.Signals(s).name}" for s in sorted(blocked))
    return reset


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns (old, new) soft limits.

    1024 (the usual soft default) is far below what one circusd may need: every child with
    streams costs two pipes plus a pidfd. Children inherit the raised limit; a program that
    still uses ``select()`` gets its own with ``rlimit_nofile = 1024``.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    candidates = [hard] if hard != resource.RLIM_INFINITY else []
    # an unlimited hard limit is not a valid soft one everywhere (macOS: OPEN_MAX)
    candidates += [1 << 20, 65536, 10240]
    for target in candidates:
        if soft != resource.RLIM_INFINITY and target <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError):
            continue
        return soft, target
    return soft, soft


#: what the daemon writes on the start-up pipe once its channels are bound
_READY = b"\0"
#: how long ``circusd --daemon`` waits for the daemon to listen (taking over leftovers included)
STARTUP_REPORT_TIMEOUT = 120.0


def _daemonize() -> Callable[[], None]:
    """Double fork, new session, stdin/stdout to /dev/null; returns the "started" callback.

    Unlike 0.19, the launching process waits for the daemon: until the daemon calls the
    returned function (every channel bound), the daemon's stderr is a pipe the launcher reads,
    so a bind failure or a bad log output is printed by the launcher, which exits 1; after it,
    the launcher exits 0 and the daemon's stderr goes to /dev/null.
    """
    read_end, write_end = os.pipe()
    if os.fork() > 0:
        os.close(write_end)
        os._exit(_report_startup(read_end))
    os.close(read_end)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(write_end, 2)
    os.close(write_end)

    def started() -> None:
        with contextlib.suppress(OSError):
            os.write(2, _READY)
        os.dup2(devnull, 2)
        if devnull > 2:
            os.close(devnull)

    return started


def _report_startup(read_end: int, timeout: float = STARTUP_REPORT_TIMEOUT) -> int:
    """In the launcher: relay the daemon's start-up messages; 0 once it said it is ready.

    Bounded: a daemon still not listening after ``timeout`` seconds is reported (exit 1) and
    left to finish on its own.
    """
    chunks = []
    deadline = time.monotonic() + timeout
    late = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([read_end], [], [], left)[0]:
            late = True
            break
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        if chunk.endswith(_READY):
            break
    text = b"".join(chunks)
    ready = text.endswith(_READY)
    message = text.removesuffix(_READY).decode("utf-8", "replace")
    if late:
        message += (f"circusd: the daemon is not listening after {timeout:g} s; not waiting "
                    "longer (see its log)\n")
    elif not ready and not message.strip():
        message = "circusd: the daemon exited during start-up without a message\n"
    sys.stderr.write(message)
    sys.stderr.flush()
    return 0 if ready else 1


async def _serve(
    config: CircusConfig,
    reopen_logs: Callable[[], None],
    on_bound: Callable[[], None] | None = None,
    strict: bool = False,
) -> None:
    arbiter = Arbiter.from_config(config)
    arbiter.reopen_logs = reopen_logs
    arbiter.on_bound = on_bound
    arbiter.strict_config = strict
    loop = asyncio.get_running_loop()
    background: set[asyncio.Task[None]] = set()

    def on_signal(action: str) -> None:
        if action == "quit":
            task = loop.create_task(arbiter.quit())
        else:
            task = loop.create_task(arbiter.reload(graceful=True))
        background.add(task)
        task.add_done_callback(background.discard)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        loop.add_signal_handler(signum, on_signal, "quit")
    loop.add_signal_handler(signal.SIGHUP, on_signal, "reload")
    registry = await take_over(config.settings.endpoint)
    Process.tracker = registry
    discovery = None
    if config.settings.discovery:
        discovery = await start_responder(config.settings.multicast_endpoint,
                                          config.settings.endpoint)
    try:
        await arbiter.run()
    except zmq.ZMQError as exc:
        raise StartupError(f"cannot bind: {exc}") from None
    finally:
        Process.tracker = None
        if discovery is not None:
            discovery.close()
    if registry is not None:
        registry.close()
    log.info("circusd stopped")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        print(circus.__version__)
        return 0
    if not args.config:
        parser.print_usage()
        return 0
    try:
        config = load_config(args.config, strict=args.strict)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    settings = config.settings
    level = args.loglevel or settings.loglevel or "info"
    output = args.logoutput or settings.logoutput or "-"
    pidfile = args.pidfile or settings.pidfile
    setup = functools.partial(configure_logging, level, output, args.logformat,
                              process_name="circus",
                              logger_config=args.loggerconfig or settings.loggerconfig)
    try:
        setup()
    except ValueError as exc:
        print(f"circusd: {exc}", file=sys.stderr)
        return 1
    for warning in config.warnings:
        log.warning(str(warning))
    reset = clean_signal_state()
    if reset:
        log.info("inherited signal state reset for the children", signals=reset)
    old, new = raise_fd_limit()
    log.debug("RLIMIT_NOFILE", soft_before=old, soft=new)
    try:
        if pidfile:
            pidfile = os.path.abspath(pidfile)
            _check_pidfile(pidfile)
        started = None
        if args.daemon:
            started = _daemonize()
            # the pid captured by the log processors is the launcher's: set it up again
            setup()
        if pidfile:
            _write_pidfile(pidfile)
        reopen = functools.partial(_reopen_logs, setup)
        try:
            asyncio.run(_serve(config, reopen, started, args.strict))
        finally:
            if pidfile:
                _remove_own_pidfile(pidfile)
    except StartupError as exc:
        print(f"circusd: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:  # found while building the watchers (e.g. a stream's file)
        exc.path = exc.path or os.path.abspath(args.config)
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def _reopen_logs(setup: Callable[[], None]) -> None:
    try:
        setup()
    except (OSError, ValueError) as exc:
        log.error("cannot reopen the log output", error=str(exc))


def _remove_own_pidfile(path: str) -> None:
    with contextlib.suppress(OSError):
        with open(path) as handle:
            if handle.read().strip() != str(os.getpid()):
                return
        os.unlink(path)


if __name__ == "__main__":
    sys.exit(main())
