"""``[socket:NAME]`` sections (contract 8.6) and watchers' references to them, at load time."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest
import structlog

from circus.config import CircusConfig, load_config
from circus.config.socket_use import referenced_sockets, used_sockets
from circus.errors import ConfigError
from circus.spawn import build_spec


def load(folder: Path, text: str) -> CircusConfig:
    path = folder / "circus.ini"
    path.write_text(textwrap.dedent(text))
    return load_config(path)


def error(folder: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(folder, text)
    return info.value


def test_defaults_are_0_19s_and_the_name_is_lower_cased(tmp_path: Path) -> None:
    (sock,) = load(tmp_path, "[socket:Web]\n").sockets
    assert (sock.name, sock.host, sock.port, sock.backlog, sock.umask) == (
        "web", "localhost", 8080, 2048, 8)
    assert (sock.family, sock.type, sock.proto) == (socket.AF_INET, socket.SOCK_STREAM, 0)
    assert (sock.path, sock.interface, sock.replace, sock.so_reuseport, sock.blocking) == (
        None, None, False, False, False)


def test_every_option_converted(tmp_path: Path) -> None:
    (sock,) = load(tmp_path, """
        [socket:x]
        host = ::1
        port = 0
        family = AF_INET6
        type = sock_dgram
        proto = udp
        backlog = 10
        interface = lo
        umask = 0
        replace = true
        so_reuseport = yes
        blocking = on
    """).sockets
    assert (sock.family, sock.type, sock.proto) == (
        socket.AF_INET6, socket.SOCK_DGRAM, socket.getprotobyname("udp"))
    assert (sock.port, sock.backlog, sock.interface, sock.umask) == (0, 10, "lo", 0)
    assert sock.replace
    assert sock.so_reuseport
    assert sock.blocking


def test_path_makes_a_unix_socket(tmp_path: Path) -> None:
    (sock,) = load(tmp_path, "[socket:u]\npath = /tmp/x.sock\n").sockets
    assert sock.family == socket.AF_UNIX
    assert sock.is_unix


def test_umask_is_decimal_as_in_0_19_with_a_warning_and_0o_is_octal(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        a, b, c = load(tmp_path, """
            [socket:a]
            umask = 022
            [socket:b]
            umask = 0o022
            [socket:c]
            umask = 18
        """).sockets
    assert (a.umask, b.umask, c.umask) == (22, 0o022, 18)
    warned = [e for e in logs if "decimal" in e["event"]]
    assert len(warned) == 1
    assert warned[0]["written"] == "022"


@pytest.mark.parametrize(
    ("line", "key", "words"),
    [
        ("family = AF_INTE", "family", "AF_INET, AF_INET6, AF_UNIX"),
        ("type = stream2", "type", "SOCK_STREAM"),
        ("port = http", "port", "invalid integer"),
        ("port = 70000", "port", "at most 65535"),
        ("proto = nosuchproto", "proto", "unknown protocol"),
        ("replace = maybe", "replace", "invalid boolean"),
        ("umask = 999", "umask", "at most 511"),
        ("family = AF_UNIX", "family", "needs a path"),
    ],
)
def test_bad_values_name_file_section_and_key(
    tmp_path: Path, line: str, key: str, words: str
) -> None:
    exc = error(tmp_path, f"[socket:web]\n{line}\n")
    assert exc.section == "socket:web"
    assert exc.key == key
    assert str(exc).startswith(str(tmp_path / "circus.ini"))
    assert words in str(exc)


def test_duplicate_socket_names_ignoring_case(tmp_path: Path) -> None:
    exc = error(tmp_path, "[socket:Web]\n[socket:web]\n")
    assert "duplicate socket name 'web'" in str(exc)


def test_unknown_socket_key_is_warned_with_a_suggestion(tmp_path: Path) -> None:
    config = load(tmp_path, "[socket:web]\nbaklog = 5\n")
    (sock,) = config.sockets
    assert sock.backlog == 2048
    assert sock.extra == {"baklog": "5"}
    (warning,) = config.warnings
    assert (warning.section, warning.key) == ("socket:web", "baklog")
    assert "did you mean 'backlog'" in str(warning)


def test_stdin_socket_must_name_a_socket(tmp_path: Path) -> None:
    exc = error(tmp_path, "[socket:a]\n[watcher:w]\ncmd = cat\nstdin_socket = b\n")
    assert (exc.section, exc.key) == ("watcher:w", "stdin_socket")
    assert "no [socket:b] section (sockets: a)" in str(exc)


def test_doubtful_references_are_warned_about(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        load(tmp_path, """
            [socket:a]
            [watcher:typo]
            cmd = app --fd $(circus.sockets.b)
            use_sockets = true
            [watcher:nouse]
            cmd = app --fd $(circus.sockets.a)
            [watcher:lazy]
            cmd = app
            on_demand = true
        """)
    events = {e["section"]: e["event"] for e in logs if "section" in e}
    assert "names no [socket:NAME]" in events["watcher:typo"]
    assert "use_sockets is false" in events["watcher:nouse"]
    assert "uses no socket" in events["watcher:lazy"]


def test_used_sockets_references_else_all_plus_stdin(tmp_path: Path) -> None:
    config = load(tmp_path, """
        [socket:a]
        [socket:b]
        [socket:c]
        [watcher:one]
        cmd = app --fd $(circus.sockets.A)
        args = ((circus.sockets.b))
        use_sockets = true
        [watcher:all]
        cmd = app
        use_sockets = true
        [watcher:stdin]
        cmd = app
        stdin_socket = c
        [env:one]
        X = $(circus.sockets.c)
    """)
    one, every, stdin = (next(w for w in config.watchers if w.name == n)
                         for n in ("one", "all", "stdin"))
    names = [s.name for s in config.sockets]
    assert referenced_sockets(one) == ["a", "c", "b"]
    assert used_sockets(one, names) == ["a", "c", "b"]
    assert used_sockets(every, names) == ["a", "b", "c"]
    assert used_sockets(stdin, names) == ["c"]


def test_spawn_spec_substitutes_fds_and_passes_only_those(tmp_path: Path) -> None:
    config = load(tmp_path, """
        [socket:a]
        [socket:c]
        [watcher:w]
        cmd = app --fd $(circus.sockets.a) --wid $(circus.wid)
        use_sockets = true
        stdin_socket = c
        [env:w]
        FD = $(circus.sockets.a)
        OTHER = $(circus.wid)
    """)
    (cfg,) = config.watchers
    spec = build_spec(cfg, 1, sockets={"a": 7, "c": 9})
    assert spec.argv == ["app", "--fd", "7", "--wid", "1"]
    assert spec.env is not None
    assert spec.env["FD"] == "7"
    assert spec.env["OTHER"] == "$(circus.wid)"  # only socket fds substitute in env values
    assert spec.pass_fds == (7, 9)
    assert spec.stdin_fd == 9
    cfg.use_sockets = False
    spec = build_spec(cfg, 1, sockets={"c": 9})
    assert spec.pass_fds == ()
    assert spec.stdin_fd == 9
