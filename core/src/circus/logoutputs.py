"""Where log lines go: the ``logoutput`` values and ``loggerconfig`` files of Circus 0.19.

``logoutput``: ``-``/``stdout``, ``stderr``, a file path, or syslog (stdlib
:class:`~logging.handlers.SysLogHandler`): ``syslog://HOST[:PORT][?FACILITY]`` (UDP, port 514
by default), ``syslog:///dev/log[?FACILITY]`` (a local socket) or ``syslog://[?FACILITY]`` (the
local ``/dev/log``). The facility defaults to ``user``.

``loggerconfig``: a stdlib logging configuration that replaces circusd's own handlers, read by
its extension as 0.19 does: ``.json`` and ``.yaml``/``.yml`` are ``dictConfig`` dictionaries,
anything else an INI ``fileConfig``; ``default`` means circusd's own set-up. YAML needs PyYAML
(``pip install circus-core[yaml]``), which circus does not otherwise need.
"""

from __future__ import annotations

import configparser
import importlib
import json
import logging
import logging.config
import os
import sys
import urllib.parse
from logging.handlers import SysLogHandler
from typing import IO, Any

SYSLOG_SCHEME = "syslog:"
DEFAULT_SYSLOG_SOCKET = "/dev/log"


def open_output(output: str) -> tuple[logging.Handler, IO[str] | None]:
    """A handler for ``output`` and the stream it writes to (``None`` for syslog).

    Raises ``ValueError`` with a readable message for an output that cannot be opened.
    """
    if output in ("-", "stdout", ""):
        return logging.StreamHandler(sys.stdout), sys.stdout
    if output == "stderr":
        return logging.StreamHandler(sys.stderr), sys.stderr
    if output.startswith(SYSLOG_SCHEME):
        return syslog_handler(output), None
    try:
        handler = logging.FileHandler(output, mode="a", encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot open log output {output!r}: {exc.strerror}") from None
    assert handler.stream is not None
    return handler, handler.stream


def syslog_handler(output: str) -> SysLogHandler:
    """``syslog://host:port?facility`` or ``syslog:///path?facility`` -> a SysLogHandler."""
    parsed = urllib.parse.urlsplit(output)
    facility_name = (parsed.query or "user").strip().lower()
    facility = SysLogHandler.facility_names.get(facility_name)
    if facility is None:
        names = ", ".join(sorted(SysLogHandler.facility_names))
        raise ValueError(f"log output {output!r}: unknown syslog facility {facility_name!r} "
                         f"(choose from {names})")
    address: str | tuple[str, int]
    try:
        if parsed.hostname:
            address = (parsed.hostname, parsed.port or 514)
        else:
            address = parsed.path or DEFAULT_SYSLOG_SOCKET
    except ValueError as exc:  # a port that is not a number
        raise ValueError(f"log output {output!r}: {exc}") from None
    if isinstance(address, str) and not os.path.exists(address):
        # SysLogHandler would only fail at the first line logged, silently
        raise ValueError(f"log output {output!r}: no such socket {address!r} (is syslog running?)")
    try:
        return SysLogHandler(address=address, facility=facility)
    except OSError as exc:
        raise ValueError(f"log output {output!r}: cannot reach syslog: {exc.strerror or exc}"
                         ) from None


def apply_logger_config(path: str) -> None:
    """Configure stdlib logging from the file at ``path`` (see the module docstring).

    Raises ``ValueError`` naming the file for a missing or unreadable file, a format error or a
    configuration ``logging`` refuses; nothing is half-applied silently.
    """
    if not os.path.isfile(path):
        raise ValueError(f"logger config {path!r}: no such file")
    extension = os.path.splitext(path)[1].lower()
    try:
        if extension == ".json":
            with open(path, encoding="utf-8") as handle:
                logging.config.dictConfig(_as_dict(path, json.load(handle)))
        elif extension in (".yaml", ".yml"):
            logging.config.dictConfig(_as_dict(path, _load_yaml(path)))
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except KeyError as exc:
        raise ValueError(f"logger config {path!r}: missing section or key {exc}") from None
    except (OSError, ValueError, TypeError, AttributeError, ImportError,
            configparser.Error) as exc:
        raise ValueError(f"logger config {path!r}: {exc}") from None


def _as_dict(path: str, loaded: Any) -> dict[str, Any]:
    if not isinstance(loaded, dict):
        raise ValueError("expected a dictConfig mapping at the top level")
    loaded.setdefault("version", 1)
    loaded.setdefault("disable_existing_loggers", False)
    return loaded


def _load_yaml(path: str) -> Any:
    try:
        yaml = importlib.import_module("yaml")
    except ImportError:
        raise ValueError("a YAML logger config needs PyYAML: pip install 'circus-core[yaml]' "
                         "(or use the same dictionary as .json)") from None
    with open(path, encoding="utf-8") as handle:
        try:
            return yaml.safe_load(handle)
        except yaml.YAMLError as exc:
            raise ValueError(str(exc).replace("\n", " ")) from None
