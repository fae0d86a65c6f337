"""0.19's log destinations: syslog:// outputs (a real UDP receiver on 127.0.0.1) and
loggerconfig files (JSON, INI, YAML), each in a fresh interpreter (logging is process-wide)."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from logging.handlers import SysLogHandler
from pathlib import Path

import pytest

from circus.testing import CircusdProcess


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    """A UDP syslog receiver on 127.0.0.1 (an ephemeral port), closed at teardown."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(20)
    try:
        yield sock
    finally:
        sock.close()


def received(sock: socket.socket, fragment: str) -> str:
    """The first datagram holding ``fragment`` (bounded by the socket timeout)."""
    while True:
        text = sock.recv(65536).decode()
        if fragment in text:
            return text


def test_syslog_udp_output_with_facility(receiver: socket.socket) -> None:
    port = receiver.getsockname()[1]
    result = python(f"""
        from circus.logs import configure_logging, get_logger
        configure_logging("info", "syslog://127.0.0.1:{port}?local3", process_name="circusd")
        get_logger("circus.test").info("hello syslog", watcher="web")
        get_logger("circus.test").debug("not at info")
    """)
    assert result.returncode == 0, result.stderr
    text = received(receiver, "hello syslog")
    priority = SysLogHandler.LOG_LOCAL3 << 3 | SysLogHandler.LOG_INFO
    assert text.startswith(f"<{priority}>")
    assert "circus.test[" in text
    assert "[INFO] hello syslog watcher='web'" in text


def test_circusd_logs_to_syslog_over_udp(tmp_path: Path, receiver: socket.socket) -> None:
    port = receiver.getsockname()[1]
    config = f"[circus]\nlogoutput = syslog://127.0.0.1:{port}?daemon\n[watcher:w]\ncmd = sleep 60"
    with CircusdProcess(config, tmp_path) as daemon:
        while True:  # bounded by the receiver's timeout
            text = receiver.recv(65536).decode()
            if "circusd started" in text:
                break
        assert text.startswith("<30>")  # daemon (3) << 3 | info (6)
        assert f"[{daemon.pid}] [INFO] circusd started" in text
        assert daemon.call("status")["statuses"] == {"w": "active"}


@pytest.mark.parametrize(
    ("output", "fragment"),
    [
        ("syslog://127.0.0.1:514?nope", "unknown syslog facility 'nope' (choose from"),
        ("syslog://127.0.0.1:port", "Port could not be cast"),
        ("syslog:///nonexistent/dev/log", "no such socket '/nonexistent/dev/log'"),
    ],
)
def test_bad_syslog_outputs_are_one_clear_error(output: str, fragment: str) -> None:
    result = python(f"""
        from circus.logs import configure_logging
        try:
            configure_logging("info", {output!r})
        except ValueError as exc:
            print(exc)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"log output {output!r}: ")
    assert fragment in result.stdout


DICT_CONFIG = {
    "version": 1,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s %(process)d %(message)s"}},
    "handlers": {"file": {"class": "logging.FileHandler", "formatter": "plain",
                          "filename": "FILE"}},
    "root": {"level": "DEBUG", "handlers": ["file"]},
}

INI_CONFIG = """\
[loggers]
keys = root

[handlers]
keys = file

[formatters]
keys = plain

[logger_root]
level = WARNING
handlers = file

[handler_file]
class = FileHandler
formatter = plain
args = ({file!r},)

[formatter_plain]
format = %(levelname)s %(name)s %(process)d %(message)s
"""


def _log_with(config: Path) -> subprocess.CompletedProcess[str]:
    return python(f"""
        import logging, os
        from circus.logs import configure_logging, get_logger
        configure_logging("info", "-", logger_config={str(config)!r})
        print(os.getpid())
        get_logger("circus.test").debug("a debug line", n=1)
        get_logger("circus.test").warning("a warning", watcher="web")
        logging.getLogger("zmq.x").error("stdlib %s", "record")
    """)


@pytest.mark.parametrize("kind", ["json", "ini", "yaml"])
def test_logger_config_files(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "out.log"
    config = tmp_path / f"logging.{kind}"
    as_dict = json.loads(json.dumps(DICT_CONFIG).replace("FILE", str(out)))
    if kind == "json":
        config.write_text(json.dumps(as_dict))
    elif kind == "ini":
        config.write_text(INI_CONFIG.format(file=str(out)))
    else:
        config.write_text(json.dumps(as_dict))  # JSON is YAML too
    result = _log_with(config)
    if kind == "yaml" and importlib.util.find_spec("yaml") is None:
        assert result.returncode == 1
        assert "a YAML logger config needs PyYAML: pip install 'circus-core[yaml]'" in (
            result.stderr)
        return
    assert result.returncode == 0, result.stderr
    pid = result.stdout.strip()
    lines = out.read_text().splitlines()
    expected = [
        f"WARNING circus.test {pid} a warning watcher='web'",
        f"ERROR zmq.x {pid} stdlib record",
    ]
    if kind != "ini":  # the INI file's root level is WARNING, the dictionaries' DEBUG
        expected.insert(0, f"DEBUG circus.test {pid} a debug line n=1")
    assert lines == expected


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("missing.json", None, "no such file"),
        ("bad.json", "{not json", "Expecting property name"),
        ("list.json", "[1]", "expected a dictConfig mapping"),
        ("bad.ini", "[loggers]\nkeys = root\n", "missing section or key 'formatters'"),
    ],
)
def test_bad_logger_configs_are_one_clear_error(
    tmp_path: Path, name: str, text: str | None, fragment: str
) -> None:
    config = tmp_path / name
    if text is not None:
        config.write_text(text)
    result = python(f"""
        from circus.logs import configure_logging
        try:
            configure_logging("info", "-", logger_config={str(config)!r})
        except ValueError as exc:
            print(exc)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"logger config {str(config)!r}: ")
    assert fragment in result.stdout


def test_default_logger_config_is_circus_own_set_up(tmp_path: Path) -> None:
    out = tmp_path / "out.log"
    result = python(f"""
        from circus.logs import configure_logging, get_logger
        configure_logging("info", {str(out)!r}, "text", logger_config="default")
        get_logger("circus.test").info("own format")
    """)
    assert result.returncode == 0, result.stderr
    assert "circus.test[" in out.read_text()
    assert "[INFO] own format" in out.read_text()
