"""configure_logging in fresh interpreters (it sets process-wide state, so never in pytest's)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from circus.logs import parse_level


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, check=False)


def test_json_lines_include_stdlib_records_once_after_reconfiguring(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    result = python(f"""
        import logging
        from circus.logs import configure_logging, get_logger
        configure_logging("debug", {str(out)!r}, "json", process_name="circusd")
        configure_logging("info", {str(out)!r}, "json", process_name="circusd")  # idempotent
        get_logger("circus.test").info("Starting", watcher="web")
        get_logger("circus.test").debug("hidden at info")
        logging.getLogger("zmq.stdlib").warning("routed %s", "through structlog")
        try:
            1 / 0
        except ZeroDivisionError:
            get_logger("circus.test").exception("boom")
    """)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["event"] for r in records] == ["Starting", "routed through structlog", "boom"]
    assert records[0]["watcher"] == "web"
    assert records[0]["logger"] == "circus.test"
    assert records[0]["process"] == "circusd"
    assert records[1]["level"] == "warning"
    assert "ZeroDivisionError" in records[2]["exception"]


def test_text_format_is_the_original_layout_when_not_a_terminal() -> None:
    result = python("""
        from circus.logs import configure_logging, get_logger
        configure_logging("INFO", "-")
        get_logger("logger").info("Endpoint: 'tcp://127.0.0.1:5555'")
    """)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.endswith(" logger[" + line.split("[")[1].split("]")[0]
                         + "] [INFO] Endpoint: 'tcp://127.0.0.1:5555'")
    assert "\x1b[" not in line  # no colours in a pipe


def test_stderr_output_and_console_format() -> None:
    result = python("""
        from circus.logs import configure_logging, get_logger
        configure_logging("warning", "stderr", "console")
        get_logger("x").info("not shown")
        get_logger("x").error("shown", key=1)
    """)
    assert result.returncode == 0
    assert result.stdout == ""
    assert "shown" in result.stderr
    assert "key=1" in result.stderr
    assert "not shown" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("'loud'", "unknown log level 'loud'"),
        ("'info', 'syslog://localhost:514?nope'", "unknown syslog facility 'nope'"),
        ("'info', '-', 'xml'", "unknown log format 'xml'"),
        ("'info', '/nonexistent/dir/file.log'", "cannot open log output"),
    ],
)
def test_bad_settings_are_clear_errors(args: str, message: str) -> None:
    result = python(f"""
        from circus.logs import configure_logging
        try:
            configure_logging({args})
        except ValueError as exc:
            print(exc)
    """)
    assert message in result.stdout


def test_parse_level() -> None:
    assert parse_level("DEBUG") == 10
    assert parse_level(" warning ") == 30
    assert parse_level(40) == 40
    with pytest.raises(ValueError, match="choose from"):
        parse_level("verbose")
