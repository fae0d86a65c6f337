"""load_config on real files: dialect, settings, watchers, includes, env sections, substitution."""

from __future__ import annotations

import os
import resource
import textwrap
from pathlib import Path

import pytest

from circus.config import CircusConfig, WatcherConfig, load_config
from circus.config.watcher_options import parse_hook
from circus.errors import ConfigError
from circus.spawn import build_argv, child_env


def write(folder: Path, text: str, name: str = "circus.ini") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load(folder: Path, text: str) -> CircusConfig:
    return load_config(write(folder, text))


def watcher(config: CircusConfig, name: str) -> WatcherConfig:
    (found,) = [w for w in config.watchers if w.name == name]
    return found


def load_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


def assert_located(exc: ConfigError, path: Path, section: str | None, key: str | None) -> None:
    """The one-line message names file, section and key, and the attributes agree."""
    text = str(exc)
    assert exc.path == str(path)
    assert text.startswith(f"{path}: ")
    if section is not None:
        assert exc.section == section
        assert f"[{section}]" in text
    if key is not None:
        assert exc.key == key
        assert f"]: {key}: " in text


# -- dialect ------------------------------------------------------------------------------


def test_dialect(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        # comment
        ; another comment
        [watcher:web]
        cmd = run;this is not a comment
        args: --a ; but this is
        numprocesses = 2
        numprocesses = 3
        NumProcesses = 9
        shell_args = ""
        working_dir =
        stdout_stream.filename = /tmp/a;b
        hooks.before_start = mod.func
            ; a comment line inside the value is skipped

        [watcher:web]
        priority = 4
        numprocesses = 5

        [watcher:empty]
        """,
    )
    web = watcher(config, "web")
    assert web.cmd == "run;this is not a comment"
    assert web.args == "--a"
    assert web.numprocesses == 2  # first value wins, also over the second [watcher:web]
    assert web.priority == 4  # repeated sections are merged
    assert web.extra == {"NumProcesses": "9"}  # option names are case-sensitive
    assert web.shell_args is None  # "" means empty
    assert web.working_dir is None
    assert web.stdout_stream == {"filename": "/tmp/a;b"}
    assert web.hooks == {"before_start": "mod.func"}
    assert [w.name for w in config.watchers] == ["web"]  # [watcher:empty] has no options


def test_continuation_lines(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        [watcher:w]
        cmd = python
          -m http.server

          8000
        args = x
        """,
    )
    # as in 0.19: blank lines neither end the value nor appear in it
    assert watcher(config, "w").cmd == "python\n-m http.server\n8000"


def test_inline_comment_rule_of_0_19(tmp_path: Path) -> None:
    """Only the first ``;`` can start a comment, and only after whitespace."""
    config = load(
        tmp_path,
        """\
        [watcher:w]
        cmd = a;b ;c
        args = ;x
        working_dir = /srv ; comment ; more
        """,
    )
    w = watcher(config, "w")
    assert (w.cmd, w.args, w.working_dir) == ("a;b ;c", ";x", "/srv")


def test_default_section_applies_everywhere(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        [DEFAULT]
        graceful_timeout = 3
        [watcher:a]
        cmd = a
        [watcher:b]
        cmd = b
        graceful_timeout = 7.5
        """,
    )
    assert watcher(config, "a").graceful_timeout == 3.0
    assert watcher(config, "b").graceful_timeout == 7.5


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("cmd = x\n", "line 1: option outside any section"),
        ("[watcher:w]\njust words\n", "line 2: expected 'key = value'"),
        ("[watcher:w]\n= value\n", "line 2: option without a name"),
    ],
)
def test_malformed_lines(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    exc = load_error(path)
    assert exc.path == str(path)
    assert str(exc).startswith(f"{path}: ")
    assert fragment in str(exc)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.ini"
    exc = load_error(path)
    assert exc.path == str(path)
    assert "cannot read config file" in str(exc)
    assert "No such file or directory" in str(exc)


def test_undecodable_file(tmp_path: Path) -> None:
    path = tmp_path / "bin.ini"
    path.write_bytes(b"[watcher:w]\ncmd = \xff\xfe\n")
    exc = load_error(path)
    assert exc.path == str(path)
    assert "cannot read config file" in str(exc)


# -- [circus] -----------------------------------------------------------------------------


def test_circus_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path, "[watcher:w]\ncmd = x\n").settings
    assert settings.endpoint == "tcp://127.0.0.1:5555"
    assert settings.pubsub_endpoint == "tcp://127.0.0.1:5556"
    assert settings.stats_endpoint == "tcp://127.0.0.1:5557"
    assert settings.multicast_endpoint == "udp://237.219.251.97:12027"
    assert settings.check_delay == 5.0
    assert settings.warmup_delay == 0.0
    assert settings.statsd is False
    assert settings.umask is None
    assert settings.loglevel is None
    assert settings.logoutput is None
    assert (settings.httpd, settings.httpd_host, settings.httpd_port) == (False, "localhost", 8080)


def test_circus_settings(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """\
        [circus]
        endpoint = ipc:///tmp/c.sock
        pubsub_endpoint = ipc:///tmp/p.sock
        stats_endpoint = tcp://127.0.0.1:6000
        check_delay = 0.5
        warmup_delay = 0.25
        umask = 002
        debug = yes
        debug_gc = off
        pidfile = /tmp/c.pid
        loglevel = WARNING
        logoutput = /tmp/c.log
        loggerconfig = default
        fqdn_prefix = box
        httpd_port = 9000
        statsd_close_outputs = true
        """,
    ).settings
    assert settings.endpoint == "ipc:///tmp/c.sock"
    assert settings.pubsub_endpoint == "ipc:///tmp/p.sock"
    assert settings.stats_endpoint == "tcp://127.0.0.1:6000"
    assert settings.statsd is True  # an explicit stats_endpoint turns statsd on
    assert settings.check_delay == 0.5
    assert settings.warmup_delay == 0.25  # fractional, unlike 0.19 (E6)
    assert settings.umask == 0o002
    assert settings.debug is True
    assert settings.debug_gc is False
    assert settings.pidfile == "/tmp/c.pid"
    assert settings.loglevel == "WARNING"
    assert settings.logoutput == "/tmp/c.log"
    assert settings.loggerconfig == "default"
    assert settings.fqdn_prefix == "box"
    assert settings.httpd_port == 9000
    assert settings.extra == {"statsd_close_outputs": "true"}


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("check_delay", "soon", "invalid number 'soon'"),
        ("warmup_delay", "-1", "must be at least 0"),
        ("debug", "maybe", "invalid boolean 'maybe'"),
        ("umask", "999", "octal"),
        ("endpoint", "localhost:5555", "invalid endpoint"),
        ("loglevel", "chatty", "invalid log level 'chatty'"),
        ("httpd_port", "70000", "at most 65535"),
        ("endpoint_owner", "no-such-user-xyz", "unknown user"),
    ],
)
def test_circus_errors(tmp_path: Path, key: str, value: str, fragment: str) -> None:
    path = write(tmp_path, f"[circus]\n{key} = {value}\n")
    exc = load_error(path)
    assert_located(exc, path, "circus", key)
    assert fragment in str(exc)


# -- [watcher:NAME] -------------------------------------------------------------------------


def test_watcher_defaults(tmp_path: Path) -> None:
    w = watcher(load(tmp_path, "[watcher:w]\ncmd = sleep 10\n"), "w")
    assert w == WatcherConfig(name="w", cmd="sleep 10")
    assert (w.numprocesses, w.stop_signal, w.graceful_timeout, w.max_retry) == (1, 15, 30.0, 5)
    assert (w.autostart, w.respawn, w.close_child_stdin) == (True, True, True)
    assert (w.max_age, w.max_age_variance, w.priority, w.warmup_delay) == (0, 30, 0, 0.0)
    assert w.argv is None
    assert w.is_plugin is False


def test_watcher_typed_options(tmp_path: Path) -> None:
    me = os.getuid()
    config = load(
        tmp_path,
        f"""\
        [watcher:Web]
        cmd = python -m http.server
        args = $(circus.wid)
        numprocesses = 3
        warmup_delay = 0.5
        working_dir = /tmp
        shell = true
        shell_args = -e
        uid = {me}
        gid = {os.getgid()}
        copy_env = on
        copy_path = 1
        send_hup = yes
        stop_signal = QUIT
        stop_children = true
        graceful_timeout = 2.5
        max_retry = -1
        priority = -3
        use_sockets = false
        autostart = false
        respawn = false
        on_demand = false
        max_age = 60
        max_age_variance = 5
        executable = /usr/bin/python3
        close_child_stdin = false
        close_child_stdout = true
        close_child_stderr = true
        virtualenv = /opt/venv
        virtualenv_py_ver = 3.12
        rlimit_nofile = 1024
        rlimit_CORE =
        stdout_stream.class = FileStream
        stdout_stream.filename = /tmp/out.log
        stderr_stream.class = StdoutStream
        hooks.after_spawn = mypkg.hooks.check, true
        flapping.max_retry = 7
        """,
    )
    w = watcher(config, "Web")
    assert w.args == "$(circus.wid)"  # spawn-time variables are left for the daemon
    assert (w.numprocesses, w.warmup_delay, w.working_dir) == (3, 0.5, "/tmp")
    assert (w.shell, w.shell_args, w.uid, w.gid) == (True, "-e", me, os.getgid())
    assert (w.copy_env, w.copy_path, w.send_hup) == (True, True, True)
    assert (w.stop_signal, w.stop_children, w.graceful_timeout) == (3, True, 2.5)
    assert (w.max_retry, w.priority, w.use_sockets) == (-1, -3, False)
    assert (w.autostart, w.respawn, w.on_demand) == (False, False, False)
    assert (w.max_age, w.max_age_variance, w.executable) == (60, 5, "/usr/bin/python3")
    assert (w.close_child_stdin, w.close_child_stdout, w.close_child_stderr) == (False, True, True)
    assert (w.virtualenv, w.virtualenv_py_ver) == ("/opt/venv", "3.12")
    assert w.rlimits == {"nofile": 1024, "core": None}
    assert w.stdout_stream == {"class": "FileStream", "filename": "/tmp/out.log"}
    assert w.stderr_stream == {"class": "StdoutStream"}
    assert w.hooks == {"after_spawn": "mypkg.hooks.check, true"}
    assert parse_hook(w.hooks["after_spawn"]) == ("mypkg.hooks.check", True)
    assert parse_hook("a.b") == ("a.b", False)
    assert w.extra == {"flapping.max_retry": "7"}


def test_watchers_sorted_by_section_name(tmp_path: Path) -> None:
    config = load(tmp_path, "[watcher:b]\ncmd = b\n[watcher:a]\ncmd = a\n[other]\nx = 1\n")
    assert [w.name for w in config.watchers] == ["a", "b"]
    assert [(w.section, w.key) for w in config.warnings] == [("other", None)]


def test_singleton_allows_zero_or_one(tmp_path: Path) -> None:
    config = load(tmp_path, "[watcher:s]\ncmd = x\nsingleton = true\nnumprocesses = 0\n")
    assert watcher(config, "s").numprocesses == 0


def test_watcher_env_key_is_ignored(tmp_path: Path) -> None:
    config = load(tmp_path, "[env]\nA = 1\n[watcher:w]\ncmd = x\nenv = B=2\n")
    w = watcher(config, "w")
    assert w.env == {"A": "1"}
    assert "env" not in w.extra
    (warning,) = config.warnings
    assert (warning.section, warning.key) == ("watcher:w", "env")
    assert "use an [env:NAME] section" in str(warning)


@pytest.mark.parametrize(
    ("body", "key", "fragment"),
    [
        ("numprocesses = 2\n", "cmd", "missing required option 'cmd'"),
        ("cmd =\n", "cmd", "cmd must not be empty"),
        ("cmd = x\nnumprocesses = two\n", "numprocesses", "invalid integer 'two'"),
        ("cmd = x\nnumprocesses = -1\n", "numprocesses", "at least 0"),
        ("cmd = x\ngraceful_timeout = 1s\n", "graceful_timeout", "invalid number '1s'"),
        ("cmd = x\nwarmup_delay = -0.5\n", "warmup_delay", "at least 0"),
        ("cmd = x\nrespawn = nope\n", "respawn", "invalid boolean 'nope'"),
        ("cmd = x\nstop_signal = SIGWHATEVER\n", "stop_signal", "unknown signal 'SIGWHATEVER'"),
        ("cmd = x\nmax_retry = -2\n", "max_retry", "at least -1"),
        ("cmd = x\nrlimit_bogus = 3\n", "rlimit_bogus", "unknown resource limit 'bogus'"),
        ("cmd = x\nrlimit_nofile = many\n", "rlimit_nofile", "invalid integer 'many'"),
        ("cmd = x\nsingleton = true\nnumprocesses = 2\n", "numprocesses", "singleton"),
        ("cmd = x\ncopy_path = true\n", "copy_path", "copy_path requires copy_env"),
        ("cmd = x\nvirtualenv = /v\n", "virtualenv", "virtualenv requires copy_env"),
        ("cmd = x\nvirtualenv_py_ver = three\n", "virtualenv_py_ver", "expected X.Y"),
        ("cmd = x\nuid = no-such-user-xyz\n", "uid", "unknown user 'no-such-user-xyz'"),
        ("cmd = x\ngid = no-such-group-xyz\n", "gid", "unknown group 'no-such-group-xyz'"),
        ("cmd = x\nhooks.on_lunch = a.b\n", "hooks.on_lunch", "unknown hook 'on_lunch'"),
        ("cmd = x\nhooks.before_start = not a path\n", "hooks.before_start", "invalid hook"),
        ("cmd = x\nhooks.before_start = a.b, perhaps\n", "hooks.before_start", "invalid boolean"),
    ],
)
def test_watcher_errors_are_located(tmp_path: Path, body: str, key: str, fragment: str) -> None:
    path = write(tmp_path, "[watcher:web]\n" + body)
    exc = load_error(path)
    assert_located(exc, path, "watcher:web", key)
    assert fragment in exc.message


def test_rlimit_error_lists_known_limits(tmp_path: Path) -> None:
    path = write(tmp_path, "[watcher:w]\ncmd = x\nrlimit_bogus = 3\n")
    exc = load_error(path)
    assert "nofile" in exc.message
    assert hasattr(resource, "RLIMIT_NOFILE")


def test_duplicate_watcher_names_case_insensitive(tmp_path: Path) -> None:
    path = write(tmp_path, "[watcher:Web]\ncmd = a\n[watcher:web]\ncmd = b\n")
    exc = load_error(path)
    assert_located(exc, path, "watcher:web", None)
    assert "duplicate watcher name 'web'" in str(exc)
    assert "[watcher:Web]" in str(exc)


# -- includes -------------------------------------------------------------------------------


def test_includes_relative_to_main_file(tmp_path: Path) -> None:
    write(tmp_path, "[watcher:a]\ncmd = from-include\npriority = 2\n", "conf/a.ini")
    write(tmp_path, "[watcher:b]\ncmd = b\n", "conf/sub/b.ini")
    write(tmp_path, "[watcher:c]\ncmd = c\n", "more.d/c.ini")
    write(tmp_path, "[watcher:ignored]\ncmd = x\n", "more.d/c.txt")
    main = write(
        tmp_path,
        """\
        [circus]
        include = conf/*.ini conf/sub/b.ini nothing-*.ini
        include_dir = more.d missing.d
        [watcher:a]
        cmd = from-main
        """,
        "main/../circus.ini",
    )
    cwd = os.getcwd()
    os.chdir("/")
    try:
        config = load_config(main)
    finally:
        os.chdir(cwd)
    assert [w.name for w in config.watchers] == ["a", "b", "c"]
    a = watcher(config, "a")
    assert a.cmd == "from-main"  # the main file wins over includes
    assert a.priority == 2  # sections merge across files


def test_missing_include_warns_as_in_0_19(tmp_path: Path) -> None:
    path = write(tmp_path, "[circus]\ninclude = other.ini\n[watcher:w]\ncmd = w\n")
    config = load_config(path)
    assert [w.name for w in config.watchers] == ["w"]
    (warning,) = config.warnings
    assert (warning.path, warning.section, warning.key) == (str(path), "circus", "include")
    assert f"no such file {str(tmp_path / 'other.ini')!r}" in str(warning)
    exc = load_error(write(tmp_path, "[circus]\ninclude = other.ini\nstrict = true\n"))
    assert_located(exc, path, "circus", "include")
    assert "refused under strict mode" in str(exc)


def test_unreadable_include_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "dir.ini").mkdir()
    path = write(tmp_path, "[circus]\ninclude = *.ini\n")
    exc = load_error(path)
    assert_located(exc, path, "circus", "include")
    assert "cannot read included config file" in str(exc)


def test_error_in_include_names_the_included_file(tmp_path: Path) -> None:
    included = write(tmp_path, "[watcher:w]\ncmd = x\nnumprocesses = lots\n", "inc/w.ini")
    write(tmp_path, "[circus]\ninclude_dir = inc\n")
    exc = load_error(tmp_path / "circus.ini")
    assert_located(exc, included, "watcher:w", "numprocesses")


# -- env sections and substitution ----------------------------------------------------------


def test_env_sections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("H3_BASE", "/base")
    monkeypatch.delenv("H3_UNSET", raising=False)
    config = load(
        tmp_path,
        """\
        [env]
        SHARED = $H3_BASE/bin:$H3_UNSET:end
        LEVEL = global
        lower = $h3_base
        [env:work*]
        LEVEL = workers
        [env:web , db]
        LEVEL = web-or-db
        ONLY = yes
        [watcher:worker1]
        cmd = x
        [watcher:WEB]
        cmd = x
        [watcher:other]
        cmd = x
        """,
    )
    assert config.env == {"SHARED": "/base/bin::end", "LEVEL": "global", "lower": "$h3_base"}
    assert watcher(config, "worker1").env["LEVEL"] == "workers"
    assert watcher(config, "WEB").env == {**config.env, "LEVEL": "web-or-db", "ONLY": "yes"}
    assert watcher(config, "other").env == config.env


def test_env_pattern_sections_apply_in_file_order(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "[env:w*]\nX = first\n[env:web]\nX = second\n[watcher:web]\ncmd = x\n",
    )
    assert watcher(config, "web").env == {"X": "second"}


def test_load_time_substitution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("H3_PROC", "from-process")
    monkeypatch.setenv("H3_OVER", "process")
    config = load(
        tmp_path,
        """\
        [circus]
        pidfile = /run/$(circus.env.H3_PROC).pid
        [env]
        H3_OVER = global
        PORT = 8000
        [env:web]
        H3_OVER = web
        [watcher:web]
        cmd = serve --port $(CIRCUS.ENV.PORT) --who ((circus.env.h3_over)) --id $(circus.wid)
        args = $(circus.env.NOT_DEFINED_ANYWHERE) $(circus.sockets.web) $(circus.env.H3_PROC)
        [watcher:other]
        cmd = echo $(circus.env.H3_OVER)
        [plugin:p]
        use = circus.plugins.CircusPlugin
        target = $(circus.env.PORT)
        """,
    )
    assert config.settings.pidfile == "/run/from-process.pid"
    web = watcher(config, "web")
    # command templates are split, then substituted at spawn (issue 9 item 5, docs/daemon.md)
    assert web.cmd == (
        "serve --port $(CIRCUS.ENV.PORT) --who ((circus.env.h3_over)) --id $(circus.wid)"
    )
    assert build_argv(web, 2, child_env(web)) == [
        "serve", "--port", "8000", "--who", "web", "--id", "2",
        "$(circus.env.NOT_DEFINED_ANYWHERE)", "$(circus.sockets.web)", "from-process",
    ]
    other = watcher(config, "other")
    assert build_argv(other, 1, child_env(other)) == ["echo", "global"]
    assert config.plugins[0].options["target"] == "8000"


def test_a_duration_beyond_the_longest_accepted_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "circus.ini"
    path.write_text("[watcher:w]\ncmd = sleep 1\ngraceful_timeout = 1e300\n")
    with pytest.raises(ConfigError, match=r"\[watcher:w\].*graceful_timeout.*at most"):
        load_config(str(path))
