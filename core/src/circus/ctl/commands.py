"""The circusctl command table: each command's CLI arguments and the properties it sends.

One entry per command of contract 10.2. The properties are what the daemon's command expects
(contract 3.2), with two deliberate fixes of the original client (contract C14): ``rm`` sends
``nostop`` and ``waiting``, and ``kill`` sends ``waiting`` and a numeric ``graceful_timeout``
(the original sent it as a string, which made the daemon's background kill fail).
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from circus.ctl.globalopts import add_global_options
from circus.ctl.setvalues import SetValueError, convert_set_options
from circus.protocol import EVENT_PREFIX

Properties = dict[str, Any]
#: property of ``status`` that makes circusctl ask ``processes`` instead (``status -l``)
LONG_STATUS = "long"


class UsageError(ValueError):
    """Arguments that parse but make no sense (circusctl exits 2 with the message)."""


@dataclass(frozen=True)
class CtlCommand:
    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    properties: Callable[[argparse.Namespace], Properties]


def _none(_: argparse.ArgumentParser) -> None:
    """No arguments."""


def _empty(_: argparse.Namespace) -> Properties:
    return {}


def _waiting(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--waiting", action="store_true",
        help="reply only when the operation has finished (raise --timeout for long ones)",
    )


def _signum(text: str) -> int | str:
    """Numbers go as integers; names (``HUP``, ``SIGRTMIN+1``) as typed: the daemon converts."""
    stripped = text.strip()
    return int(stripped) if stripped.lstrip("+-").isdigit() else stripped


def _optional(ns: argparse.Namespace, *keys: str) -> Properties:
    return {key: getattr(ns, key) for key in keys if getattr(ns, key) is not None}


# add --------------------------------------------------------------------------------------------

def _start_option(p: argparse.ArgumentParser, default: Any) -> None:
    p.add_argument("--start", action="store_true", default=default,
                   help="start the watcher at once (before NAME or at the end of the line)")


@functools.cache
def _trailing_parser() -> argparse.ArgumentParser:
    """The options ``add`` accepts at the end of its line: ``--start`` and the global ones,
    absent ones leaving no attribute (so they cannot reset what came before NAME)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    add_global_options(parser)
    _start_option(parser, argparse.SUPPRESS)
    return parser


def _split_trailing(parser: argparse.ArgumentParser,
                    words: list[str]) -> tuple[list[str], argparse.Namespace | None]:
    """``words`` -> (the command, circusctl's options read from the end of the line or None).

    The options are the shortest tail of ``words`` made only of circusctl's options (with their
    values): ``sleep 10 --start`` and ``python -m http.server --start --json`` end in options,
    ``prog --start x`` does not. A tail that starts like an option of circusctl but does not
    parse (``--timeout soon``) is a usage error naming the way out, ``--``.
    """
    for index, word in enumerate(words):
        if not word.startswith("-"):
            continue
        try:
            options, rest = _trailing_parser().parse_known_args(words[index:])
        except argparse.ArgumentError as exc:
            parser.error(f"{exc} (at the end of the command line; to give these words to the "
                         "program, put -- before the command: add NAME -- CMD...)")
        if not rest:
            return words[:index], options
    return words, None


class _NameAndCommand(argparse.Action):
    """``add``'s NAME and CMD, read as one list so that a ``--`` after NAME is seen (argparse
    drops it when NAME is a positional of its own).

    CMD is every word after NAME, options included, except circusctl's own options at the end
    of the line, which 0.19 accepted there (``add NAME CMD --start``); after ``--`` every word
    is the command's.
    """

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        words = [str(word) for word in values]
        if words[:1] == ["--"]:  # add -- NAME CMD...
            words = words[1:]
        name, words = (words[0], words[1:]) if words else (None, [])
        if words[:1] == ["--"]:
            command = words[1:]
        else:
            command, options = _split_trailing(parser, words)
            if options is not None:
                _take_options(namespace, options, command, words)
        namespace.name = name
        namespace.cmd = command


def _take_options(namespace: argparse.Namespace, options: argparse.Namespace,
                  command: list[str], words: list[str]) -> None:
    taken = vars(options)
    for key, value in taken.items():
        setattr(namespace, key, value)
    if set(taken) - {"start"} and any(word.startswith("-") for word in command):
        # the one ambiguous reading (gunicorn app --timeout 30): say which one was chosen,
        # and how to get the other
        print(f"circusctl add: read {' '.join(words[len(command):])!r} as circusctl's "
              "options; to give them to the program write: add NAME -- CMD...",
              file=sys.stderr)


def _add_args(p: argparse.ArgumentParser) -> None:
    _start_option(p, False)
    p.add_argument("words", nargs=argparse.REMAINDER, metavar="NAME CMD",
                   action=_NameAndCommand,
                   help="the watcher's name, then its command line: every word after NAME, "
                   "options included, except circusctl's own options (--start, the global "
                   "ones) at the end of the line; after -- every word")


def _add_props(ns: argparse.Namespace) -> Properties:
    if not ns.name or not ns.cmd:
        raise UsageError("add needs NAME and the command line to run")
    return {"name": ns.name, "cmd": " ".join(ns.cmd), "start": ns.start}


# incr / decr ------------------------------------------------------------------------------------

def _count_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="watcher name")
    p.add_argument("nb", nargs="?", type=int, help="number of processes (default 1)")
    _waiting(p)


def _count_props(ns: argparse.Namespace) -> Properties:
    return {"name": ns.name, **_optional(ns, "nb"), "waiting": ns.waiting}


# get / globaloptions / options ------------------------------------------------------------------

def _get_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="watcher name")
    p.add_argument("keys", nargs="+", metavar="KEY", help="option names")


def _get_props(ns: argparse.Namespace) -> Properties:
    return {"name": ns.name, "keys": ns.keys}


def _globaloptions_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("option", nargs="?", help="one of endpoint, pubsub_endpoint, "
                   "stats_endpoint, check_delay, multicast_endpoint (default: all)")


def _name_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="watcher name")


def _optional_name_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="watcher name (default: all watchers)")


# kill / signal ----------------------------------------------------------------------------------

def _kill_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="watcher name")
    p.add_argument("pid", nargs="?", type=int, help="only this process (default: all)")
    p.add_argument("--signum", help="signal to send first (default: the watcher's stop_signal)")
    p.add_argument("--graceful_timeout", type=float, metavar="SECONDS",
                   help="wait this long before SIGKILL (default: the watcher's)")
    _waiting(p)


def _kill_props(ns: argparse.Namespace) -> Properties:
    props: Properties = {"name": ns.name, **_optional(ns, "pid", "graceful_timeout")}
    if ns.signum is not None:
        props["signum"] = _signum(ns.signum)
    props["waiting"] = ns.waiting
    return props


def _signal_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="watcher name")
    p.add_argument("target", nargs="+", metavar="[PID] SIGNUM",
                   help="optional pid, then the signal (number or name)")
    p.add_argument("--children", action="store_true", help="signal only the children")
    p.add_argument("--recursive", action="store_true", help="signal the process and descendants")


def _signal_props(ns: argparse.Namespace) -> Properties:
    if len(ns.target) > 2:
        raise UsageError("signal takes NAME [PID] SIGNUM")
    props: Properties = {"name": ns.name, "signum": _signum(ns.target[-1]),
                         "children": ns.children, "recursive": ns.recursive}
    if len(ns.target) == 2:
        try:
            props["pid"] = int(ns.target[0])
        except ValueError:
            raise UsageError(f"PID must be an integer, got {ns.target[0]!r}") from None
    return props


# listen -----------------------------------------------------------------------------------------

def _listen_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("topics", nargs="*", metavar="TOPIC",
                   help="topic prefixes, e.g. watcher.web. (default: every event, watcher.; "
                   "output. for the processes' output lines); "
                   "--endpoint is the pub/sub endpoint here (default tcp://127.0.0.1:5556)")


def _listen_props(ns: argparse.Namespace) -> Properties:
    # every *event*: the channel also carries ``output.`` lines (circusctl tail), asked for only
    return {"topics": list(ns.topics) or [EVENT_PREFIX]}


# quit / reloadconfig / reload / start / stop / restart / rm -------------------------------------

def _waiting_props(ns: argparse.Namespace) -> Properties:
    return {"waiting": ns.waiting}


def _reload_args(p: argparse.ArgumentParser) -> None:
    _optional_name_args(p)
    p.add_argument("--terminate", action="store_true", help="restart instead of graceful reload")
    p.add_argument("--sequential", action="store_true", help="replace processes one by one")
    _waiting(p)


def _reload_props(ns: argparse.Namespace) -> Properties:
    return {**_optional(ns, "name"), "graceful": not ns.terminate, "waiting": ns.waiting,
            "sequential": ns.sequential}


def _lifecycle_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="watcher name or pattern (default: all watchers)")
    p.add_argument("--match", choices=("simple", "glob", "regex"), default="glob",
                   help="how NAME is matched (default glob)")
    _waiting(p)


def _lifecycle_props(ns: argparse.Namespace) -> Properties:
    return {**_optional(ns, "name"), "waiting": ns.waiting, "match": ns.match}


def _rm_args(p: argparse.ArgumentParser) -> None:
    _name_args(p)
    p.add_argument("--nostop", action="store_true", help="leave the processes running")
    _waiting(p)


def _rm_props(ns: argparse.Namespace) -> Properties:
    return {"name": ns.name, "nostop": ns.nostop, "waiting": ns.waiting}


# set / stats ------------------------------------------------------------------------------------

def _set_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="watcher name")
    p.add_argument("pairs", nargs="+", metavar="KEY VALUE",
                   help="options to change, e.g. numprocesses 3 stop_signal HUP env A=1,B=2")
    _waiting(p)


def _set_props(ns: argparse.Namespace) -> Properties:
    try:
        options = convert_set_options(ns.pairs)
    except SetValueError as exc:
        raise UsageError(str(exc)) from None
    props: Properties = {"name": ns.name, "options": options}
    if ns.waiting:
        props["waiting"] = True
    return props


def _stats_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="watcher name (default: all watchers)")
    p.add_argument("pid", nargs="?", type=int, help="only this process")
    p.add_argument("--extended", action="store_true", help="include the extended_stats hook")


def _stats_props(ns: argparse.Namespace) -> Properties:
    props = _optional(ns, "name")
    if ns.pid is not None:
        props["process"] = ns.pid
    props["extended"] = ns.extended
    return props


def _status_args(p: argparse.ArgumentParser) -> None:
    _optional_name_args(p)
    p.add_argument("-l", "--long", action="store_true",
                   help="one line per process: pid, state, uptime, restarts, cpu, mem "
                   "(asks circusd's `processes` command, our addition)")


def _status_props(ns: argparse.Namespace) -> Properties:
    props = _optional(ns, "name")
    if ns.long:
        props[LONG_STATUS] = True
    return props


# tail / logs (our additions; circusctl reads the output channel itself, like listen) -----------

def _lines_arg(p: argparse.ArgumentParser, default: int) -> None:
    p.add_argument("-n", "--lines", type=int, default=default, metavar="N",
                   help=f"how many recent lines to print first (default {default})")


def _tail_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="watcher name")
    p.add_argument("stream", nargs="?", choices=("stdout", "stderr"),
                   help="only this stream (default: both), as in supervisorctl tail")
    _lines_arg(p, 10)
    p.add_argument("-f", "--follow", action="store_true",
                   help="then print new lines as they come, across restarts (Ctrl-C ends)")


def _logs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME", help="watchers (default: all)")
    _lines_arg(p, 15)
    p.add_argument("--no-follow", dest="follow", action="store_false",
                   help="print the recent lines and exit (default: keep following)")


def _lines_count(ns: argparse.Namespace) -> int:
    if ns.lines < 0:
        raise UsageError(f"-n must be 0 or more, got {ns.lines}")
    return int(ns.lines)


def _tail_props(ns: argparse.Namespace) -> Properties:
    return {"names": [ns.name], "lines": _lines_count(ns), "follow": ns.follow,
            "prefixed": False, "stream": ns.stream}


def _logs_props(ns: argparse.Namespace) -> Properties:
    return {"names": list(ns.names), "lines": _lines_count(ns), "follow": ns.follow,
            "prefixed": True, "stream": None}


def _keygen_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", help="where to write the files (created if missing)")
    p.add_argument("--name", default="client",
                   help="file name stem: NAME.key (public) and NAME.key_secret (default client)")


def _keygen_props(ns: argparse.Namespace) -> Properties:
    if not ns.name or "/" in ns.name or ns.name.startswith("."):
        raise UsageError(f"--name must be a plain file name, got {ns.name!r}")
    return {"directory": ns.directory, "name": ns.name}


def _name_props(ns: argparse.Namespace) -> Properties:
    return {"name": ns.name}


def _optional_name_props(ns: argparse.Namespace) -> Properties:
    return _optional(ns, "name")


_COMMANDS = [
    CtlCommand("add", "add a watcher", _add_args, _add_props),
    CtlCommand("decr", "remove processes from a watcher", _count_args, _count_props),
    CtlCommand("dstats", "circusd's own process info", _none, _empty),
    CtlCommand("get", "values of some options of a watcher", _get_args, _get_props),
    CtlCommand("globaloptions", "circusd's global options", _globaloptions_args,
               lambda ns: _optional(ns, "option")),
    CtlCommand("incr", "add processes to a watcher", _count_args, _count_props),
    CtlCommand("ipython", "ask circusd for an IPython kernel", _none, _empty),
    CtlCommand("keygen", "write a CURVE key pair (NAME.key, NAME.key_secret, mode 0600); "
               "runs locally", _keygen_args, _keygen_props),
    CtlCommand("kill", "stop processes gracefully, then SIGKILL", _kill_args, _kill_props),
    CtlCommand("list", "watcher names, or the pids of one watcher", _optional_name_args,
               _optional_name_props),
    CtlCommand("listen", "print events as they are published", _listen_args, _listen_props),
    CtlCommand("listsockets", "sockets circusd holds", _none, _empty),
    CtlCommand("logs", "recent and new output of every process (or of some watchers), "
               "prefixed watcher[wid]", _logs_args, _logs_props),
    CtlCommand("numprocesses", "number of processes (of one watcher)", _optional_name_args,
               _optional_name_props),
    CtlCommand("numwatchers", "number of watchers", _none, _empty),
    CtlCommand("options", "every option of a watcher", _name_args, _name_props),
    CtlCommand("quit", "stop every watcher and circusd", _waiting, _waiting_props),
    CtlCommand("reload", "reload watchers (graceful by default)", _reload_args, _reload_props),
    CtlCommand("reloadconfig", "re-read circusd's config file", _waiting, _waiting_props),
    CtlCommand("restart", "restart watchers", _lifecycle_args, _lifecycle_props),
    CtlCommand("rm", "remove a watcher", _rm_args, _rm_props),
    CtlCommand("set", "change options of a watcher", _set_args, _set_props),
    CtlCommand("signal", "send a signal to processes", _signal_args, _signal_props),
    CtlCommand("start", "start watchers", _lifecycle_args, _lifecycle_props),
    CtlCommand("stats", "process info", _stats_args, _stats_props),
    CtlCommand("status", "state of every watcher, or of one (-l: every process)",
               _status_args, _status_props),
    CtlCommand("stop", "stop watchers", _lifecycle_args, _lifecycle_props),
    CtlCommand("tail", "last lines a watcher's processes wrote; -f to follow",
               _tail_args, _tail_props),
]

COMMANDS: dict[str, CtlCommand] = {command.name: command for command in _COMMANDS}
