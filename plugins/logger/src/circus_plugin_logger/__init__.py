"""The logger plugin: every circusd event appended to a file, one line per event.

It is the seed documentation's example made a product, and doubles as an example of a small
third-party plugin: options are checked at config load (``check_config``), the file is opened
in the constructor so a bad path stops the plugin with one clear line, events are written in
the loop thread, SIGHUP reopens the file (``handle_reload``) and ``handle_stop`` closes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from circus.errors import ConfigError
from circus.plugins import CircusPlugin
from circus.plugins.options import PluginOptions
from circus_plugin_logger.lines import FORMATS
from circus_plugin_logger.logfile import LogFile, check_writable

__all__ = ["Logger"]

#: the options it reads (``topics`` is read by circus-core's event hook for every plugin)
OPTIONS = PluginOptions("filename", "format")


def _options(config: Mapping[str, Any]) -> tuple[Path, str]:
    config = OPTIONS.view(config)
    filename = str(config.get("filename", "")).strip()
    if not filename:
        raise ConfigError("the logger plugin needs a 'filename' option", key="filename")
    fmt = str(config.get("format", "text")).strip().lower()
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}",
                          key="format")
    return Path(filename).expanduser(), fmt


class Logger(CircusPlugin):
    """Options: ``filename`` (required), ``format`` (text|json), ``topics`` (glob patterns)."""

    name = "logger"
    #: the options it reads: circusd warns about any other key of its section (typos)
    config_options: ClassVar[frozenset[str]] = OPTIONS.names

    def __init__(self, filename: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        path, fmt = _options({**self.config, "filename": filename})
        self.filename = str(path)
        self.format = FORMATS[fmt]
        self.file = LogFile(path)

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        """Refuse a missing or unwritable file when circusd loads its configuration."""
        path, _ = _options(config)
        check_writable(path.absolute())

    def handle_recv(self, data: tuple[str, str]) -> None:
        topic, message = data
        self.file.write_line(self.format(topic, message))

    def handle_reload(self) -> None:
        """SIGHUP: start a new file (the usual logrotate ``postrotate`` signal)."""
        self.file.reopen()
        self.log.info("reopened the log file", filename=self.filename)

    def handle_stop(self) -> None:
        self.file.close()
