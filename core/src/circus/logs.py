"""Logging set-up shared by circusd, circusctl and the plugin runner (structlog over stdlib).

Every process calls :func:`configure_logging` once, early. structlog's loggers and plain
``logging`` loggers (pyzmq, third-party plugins) end up in the same handler, rendered the same
way, because stdlib records go through structlog's ``ProcessorFormatter``.

Formats (``fmt``):

``console``
    structlog's developer renderer; colours only when the output is a terminal.
``text``
    one plain line per event in the original Circus layout,
    ``<date> <logger>[<pid>] [<LEVEL>] <message> key=value ...``: greppable, no colours.
``json``
    one JSON object per line (``timestamp``, ``level``, ``logger``, ``pid``, ``event``, ...).
``auto`` (default)
    ``console`` on a terminal, ``text`` otherwise (files, pipes, circusd capturing output).
    JSON is never chosen implicitly: ask for it with ``--log-format json``.
"""

from __future__ import annotations

import logging
import os
from typing import IO, Any

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from circus.logoutputs import apply_logger_config, open_output

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
FORMATS = ("auto", "console", "text", "json")

# The handler installed by the last configure_logging call (replaced, never duplicated).
_installed: list[logging.Handler] = []


def parse_level(level: str | int) -> int:
    """``"INFO"``/``"info"``/``20`` -> 20; anything else raises ``ValueError`` naming choices."""
    if isinstance(level, int):
        return level
    try:
        return LEVELS[level.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown log level {level!r} (choose from {', '.join(sorted(LEVELS))})"
        ) from None


def _add_process(process_name: str | None) -> Processor:
    pid = os.getpid()

    def add(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        event.setdefault("pid", pid)
        if process_name is not None:
            event.setdefault("process", process_name)
        return event

    return add


def _render_text(_: WrappedLogger, __: str, event: EventDict) -> str:
    """The original Circus line layout, with structured fields appended as ``key=value``."""
    timestamp = event.pop("timestamp", "")
    level = str(event.pop("level", "info")).upper()
    pid = event.pop("pid", os.getpid())
    process = event.pop("process", None)
    logger = event.pop("logger", None) or process or "circus"
    message = event.pop("event", "")
    exc = event.pop("exception", None)
    extras = " ".join(f"{key}={value!r}" for key, value in sorted(event.items()))
    line = f"{timestamp} {logger}[{pid}] [{level}] {message}"
    if extras:
        line = f"{line} {extras}"
    if exc:
        line = f"{line}\n{exc}"
    return line


def _render_message(_: WrappedLogger, __: str, event: EventDict) -> str:
    """The message and its fields as one string, for formatters of a ``loggerconfig`` file
    (which know ``%(message)s``, not structlog's event dictionaries)."""
    message = event.pop("event", "")
    exc = event.pop("exception", None)
    for meta in ("level", "logger", "timestamp"):
        event.pop(meta, None)
    extras = " ".join(f"{key}={value!r}" for key, value in sorted(event.items()))
    line = f"{message} {extras}" if extras else str(message)
    return f"{line}\n{exc}" if exc else line


def _renderer(fmt: str, stream: IO[str] | None) -> tuple[Processor, list[Processor]]:
    """The final renderer and any processors it needs before it (syslog: no stream)."""
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    if fmt == "auto":
        fmt = "console" if is_tty else "text"
    if fmt == "json":
        return structlog.processors.JSONRenderer(), [structlog.processors.format_exc_info]
    if fmt == "text":
        return _render_text, [structlog.processors.format_exc_info]
    return structlog.dev.ConsoleRenderer(colors=is_tty), []


def configure_logging(
    level: str | int = "info",
    output: str = "-",
    fmt: str = "auto",
    *,
    process_name: str | None = None,
    logger_config: str | None = None,
) -> None:
    """Route structlog and stdlib logging to ``output`` at ``level`` in format ``fmt``.

    ``output`` may be a syslog URL and ``logger_config`` a logging configuration file that
    replaces level, output and format (:mod:`circus.logoutputs`; ``default`` = not given).
    Calling it again replaces the previous set-up (handler closed, never duplicated), so a
    process logs each line once whatever its start-up path. Raises ``ValueError`` with a
    readable message for a bad level, format, output or logger config (the CLIs print it and
    exit).
    """
    numeric = parse_level(level)
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (choose from {', '.join(FORMATS)})")
    if logger_config and logger_config.strip() != "default":
        _configure_from_file(logger_config)
        return
    handler, stream = open_output(output)
    renderer, pre_render = _renderer(fmt, stream)

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
        _add_process(process_name),
        structlog.processors.StackInfoRenderer(),
    ]
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *pre_render,
                renderer,
            ],
        )
    )
    root = _remove_installed()
    root.addHandler(handler)
    root.setLevel(numeric)
    _installed.append(handler)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def _remove_installed() -> logging.Logger:
    root = logging.getLogger()
    while _installed:
        old = _installed.pop()
        root.removeHandler(old)
        old.close()
    return root


def _configure_from_file(path: str) -> None:
    """structlog renders each event to a plain message; the file's handlers and formatters
    (``%(asctime)s``, ``%(process)d``...) do the rest, as they did under 0.19."""
    apply_logger_config(path)  # first: a bad file leaves the current set-up in place
    _remove_installed()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            _render_message,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None, **initial: Any) -> Any:
    """A structlog logger named ``name`` (the stdlib logger name, shown in every line)."""
    return structlog.stdlib.get_logger(name, **initial)
