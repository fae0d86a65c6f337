"""circusctl's command line -> request properties, ``set`` typing and reply rendering.

These are the client-side halves of contract 10.2 (which properties each CLI form sends, how
each reply prints); the end-to-end tests in tests/test_circusctl*.py run them against circusd.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest

from circus.circusctl import build_parser
from circus.ctl.commands import COMMANDS, UsageError
from circus.ctl.render import render
from circus.ctl.setvalues import SetValueError, convert_set_options, parse_env


def props(*argv: str) -> dict[str, Any]:
    ns = build_parser().parse_args(list(argv))
    return COMMANDS[ns.command].properties(ns)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["add", "web", "python", "-m", "http.server"],
         {"name": "web", "cmd": "python -m http.server", "start": False}),
        (["add", "--start", "web", "sleep", "10"],
         {"name": "web", "cmd": "sleep 10", "start": True}),
        (["add", "web", "--", "ls", "-l"], {"name": "web", "cmd": "ls -l", "start": False}),
        # 0.19's order: --start at the end of the line (contract 10.2 `add [--start] NAME CMD`)
        (["add", "web", "sleep", "10", "--start"],
         {"name": "web", "cmd": "sleep 10", "start": True}),
        (["add", "web", "sleep 10", "--start"], {"name": "web", "cmd": "sleep 10", "start": True}),
        (["add", "web", "python", "-m", "http.server", "--start"],
         {"name": "web", "cmd": "python -m http.server", "start": True}),
        # not at the end, or after --: the program's
        (["add", "web", "prog", "--start", "x"],
         {"name": "web", "cmd": "prog --start x", "start": False}),
        (["add", "web", "--", "prog", "--start"],
         {"name": "web", "cmd": "prog --start", "start": False}),
        (["add", "--start", "web", "--", "prog", "--json"],
         {"name": "web", "cmd": "prog --json", "start": True}),
        (["incr", "web"], {"name": "web", "waiting": False}),
        (["decr", "web", "3", "--waiting"], {"name": "web", "nb": 3, "waiting": True}),
        (["get", "web", "numprocesses", "env"], {"name": "web", "keys": ["numprocesses", "env"]}),
        (["globaloptions"], {}),
        (["globaloptions", "check_delay"], {"option": "check_delay"}),
        (["kill", "web"], {"name": "web", "waiting": False}),
        (["kill", "web", "42", "--signum", "HUP", "--graceful_timeout", "2.5", "--waiting"],
         {"name": "web", "pid": 42, "signum": "HUP", "graceful_timeout": 2.5, "waiting": True}),
        (["kill", "web", "--signum", "9"], {"name": "web", "signum": 9, "waiting": False}),
        (["list"], {}),
        (["list", "web"], {"name": "web"}),
        (["listen"], {"topics": ["watcher."]}),
        (["listen", "watcher.web.", "watcher.db."], {"topics": ["watcher.web.", "watcher.db."]}),
        (["numprocesses", "web"], {"name": "web"}),
        (["options", "web"], {"name": "web"}),
        (["quit", "--waiting"], {"waiting": True}),
        (["reloadconfig"], {"waiting": False}),
        (["reload"], {"graceful": True, "waiting": False, "sequential": False}),
        (["reload", "web", "--terminate", "--sequential", "--waiting"],
         {"name": "web", "graceful": False, "waiting": True, "sequential": True}),
        (["restart"], {"waiting": False, "match": "glob"}),
        (["start", "we*", "--match", "regex", "--waiting"],
         {"name": "we*", "waiting": True, "match": "regex"}),
        (["stop", "web"], {"name": "web", "waiting": False, "match": "glob"}),
        (["rm", "web"], {"name": "web", "nostop": False, "waiting": False}),
        (["rm", "web", "--nostop", "--waiting"], {"name": "web", "nostop": True, "waiting": True}),
        (["set", "web", "numprocesses", "3"], {"name": "web", "options": {"numprocesses": 3}}),
        (["set", "web", "graceful_timeout", "2", "--waiting"],
         {"name": "web", "options": {"graceful_timeout": 2.0}, "waiting": True}),
        (["signal", "web", "HUP"],
         {"name": "web", "signum": "HUP", "children": False, "recursive": False}),
        (["signal", "web", "42", "15", "--children"],
         {"name": "web", "signum": 15, "children": True, "recursive": False, "pid": 42}),
        (["stats"], {"extended": False}),
        (["stats", "--extended", "web", "42"], {"name": "web", "process": 42, "extended": True}),
        (["status"], {}),
        (["status", "web"], {"name": "web"}),
        (["dstats"], {}),
        (["numwatchers"], {}),
        (["listsockets"], {}),
        (["ipython"], {}),
    ],
)
def test_cli_arguments_become_the_properties_of_contract_10_2(
    argv: list[str], expected: dict[str, Any]
) -> None:
    assert props(*argv) == expected


def test_every_command_of_the_contract_has_a_cli_form() -> None:
    contract = {
        "add", "decr", "dstats", "get", "globaloptions", "incr", "ipython", "kill", "list",
        "listen", "listsockets", "numprocesses", "numwatchers", "options", "quit", "reload",
        "reloadconfig", "restart", "rm", "set", "signal", "start", "stats", "status", "stop",
    }
    assert contract <= set(COMMANDS)
    # our additions (docs/circusctl.md)
    assert set(COMMANDS) - contract <= {"keygen", "logs", "tail"}


def test_global_options_are_accepted_after_the_command() -> None:
    ns = build_parser().parse_args(["status", "--endpoint", "ipc:///x", "--json"])
    assert ns.endpoint == "ipc:///x"
    assert ns.json is True


def test_add_reads_circusctls_options_from_the_end_of_its_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 0.19 read options anywhere: `add web "sleep 10" --endpoint E --json` talks to E
    ns = build_parser().parse_args(
        ["add", "web", "sleep 10", "--endpoint", "ipc:///x", "--json", "--timeout", "2"]
    )
    assert (ns.name, ns.cmd, ns.endpoint, ns.json, ns.timeout) == (
        "web", ["sleep 10"], "ipc:///x", True, 2.0)
    assert capsys.readouterr().err == ""  # the 0.19 form is not ambiguous: no note
    # after a command with options of its own the reading is ambiguous: it is said, not silent
    ns = build_parser().parse_args(["add", "web", "gunicorn", "-w", "2", "app", "--timeout", "30"])
    assert (ns.cmd, ns.timeout) == (["gunicorn", "-w", "2", "app"], 30.0)
    assert "add NAME -- CMD" in capsys.readouterr().err
    # --start before NAME is not reset by a tail without it
    ns = build_parser().parse_args(["add", "--start", "web", "sleep", "1", "--json"])
    assert (ns.start, ns.json) == (True, True)


def test_add_with_a_bad_value_at_the_end_is_a_usage_error_naming_the_way_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["add", "web", "prog", "--timeout", "soon"])
    assert exc.value.code == 2
    assert "put -- before the command" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["incr"], ["incr", "web", "many"], ["stop", "web", "--match", "fuzzy"], ["bogus"],
     ["--timeout", "-1", "status"], ["--timeout", "soon", "status"], ["options"]],
)
def test_malformed_command_lines_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["set", "web", "numprocesses"], ["set", "web", "numprocesses", "many"],
     ["set", "web", "stop_signal", "SIGNOPE"], ["signal", "web", "1", "2", "3"],
     ["signal", "web", "abc", "HUP"], ["set", "web", "env", "novalue"], ["add", "web"],
     ["add", "web", "--start"], ["add"]],
)
def test_values_that_do_not_fit_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        props(*argv)


def test_set_values_get_the_types_of_the_set_table() -> None:
    words = [
        "NumProcesses", "4", "warmup_delay", "0.5", "send_hup", "yes", "stop_signal", "sighup",
        "env", "A=1, B = two", "uid", "1000", "gid", "staff", "max_age", "30", "respawn", "off",
        "stdout_stream.max_bytes", "1024", "stdout_stream.filename", "/tmp/out.log",
        "hooks", "before_start:mod.fn,after_stop:mod.other", "hooks.before_stop", "mod.x",
        "rlimit_nofile", "unlimited", "cmd", "sleep 10", "flapping.max_retry", "3",
    ]
    assert convert_set_options(words) == {
        "numprocesses": 4, "warmup_delay": 0.5, "send_hup": True,
        "stop_signal": int(signal.SIGHUP), "env": {"A": "1", "B": "two"}, "uid": 1000,
        "gid": "staff", "max_age": 30, "respawn": False, "stdout_stream.max_bytes": 1024,
        "stdout_stream.filename": "/tmp/out.log",
        "hooks": {"before_start": "mod.fn", "after_stop": "mod.other"},
        "hooks.before_stop": "mod.x", "rlimit_nofile": -1, "cmd": "sleep 10",
        # unknown keys go as typed: the daemon names them in its error reply
        "flapping.max_retry": "3",
    }


def test_env_accepts_a_json_object() -> None:
    assert parse_env('{"A": 1, "B": "x"}') == {"A": "1", "B": "x"}
    with pytest.raises(ValueError, match="JSON"):
        parse_env("{nope")
    with pytest.raises(SetValueError):
        convert_set_options(["send_hup", "maybe"])


@pytest.mark.parametrize(
    ("command", "reply", "text"),
    [
        ("start", {"status": "ok"}, "ok"),
        ("status", {"status": "ok", "statuses": {"web": "active", "Db": "stopped"}},
         "Db: stopped\nweb: active"),
        ("status", {"status": "stopping"}, "stopping"),
        ("list", {"status": "ok", "pids": [3, 1, 2]}, "3,1,2"),
        ("list", {"status": "ok", "watchers": ["a", "b"]}, "a,b"),
        ("incr", {"status": "ok", "numprocesses": 4}, "4"),
        ("incr", {"status": "ok"}, "ok"),
        ("decr", {"status": "ok", "numprocesses": 1, "singleton": True},
         "This watcher is a singleton: the number of processes did not change"),
        ("numprocesses", {"status": "ok", "numprocesses": 7, "watcher_name": "web"}, "7"),
        ("numwatchers", {"status": "ok", "numwatchers": 2}, "2"),
        ("options", {"status": "ok", "options": {"env": {"B": "2", "A": "1"}, "uid": None,
                                                 "numprocesses": 2}},
         "env: A=1,B=2\nnumprocesses: 2\nuid: "),
        ("globaloptions", {"status": "ok", "options": {"check_delay": 5.0}}, "check_delay: 5.0"),
        ("listsockets", {"status": "ok", "sockets": [
            {"fd": 5, "name": "web", "host": "127.0.0.1", "port": 8888},
            {"fd": 6, "name": "unix", "path": "/tmp/s"}]},
         "5:socket 'web' at 127.0.0.1:8888\n6:socket 'unix' at /tmp/s"),
        ("stop", {"status": "error", "reason": "program x not found", "errno": 3},
         "error: program x not found"),
        ("list", {"status": "error", "reason": "boom"}, "error: boom"),
    ],
)
def test_replies_render_as_contract_10_2_says(
    command: str, reply: dict[str, Any], text: str
) -> None:
    assert render(command, reply) == text


def test_stats_render_one_line_per_process_with_children_indented() -> None:
    info = {"pid": 10, "cmdline": "sleep", "username": "me", "nice": 0, "mem_info1": "1M",
            "mem_info2": "2M", "cpu": 0.0, "mem": 0.1, "ctime": "0:00.01",
            "children": [{"pid": 11, "cmdline": "sh", "username": "me", "nice": 0,
                          "mem_info1": "1K", "mem_info2": "2K", "cpu": 0.0, "mem": 0.0,
                          "ctime": "0:00.00"}]}
    assert render("stats", {"status": "ok", "name": "web", "info": {"10": info}}) == (
        "web:\n10: 10 sleep me 0 1M 2M 0.0 0.1 0:00.01\n   11 sh me 0 1K 2K 0.0 0.0 0:00.00"
    )
    assert render("stats", {"status": "ok", "infos": {"web": {"10": "No such process"}}}) == (
        "web:\n10: No such process"
    )
    assert render("stats", {"status": "ok", "process": 10, "info": info}).startswith(
        "10: 10 sleep me"
    )
    assert render("dstats", {"status": "ok", "info": info}).splitlines()[0] == "Main Process:"
