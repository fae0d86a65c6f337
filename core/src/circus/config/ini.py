"""The INI dialect of Circus configuration files (contract 8.1).

Not :mod:`configparser`: Circus needs the *first* value of a repeated option to win (so the main
file beats its includes), case-sensitive option names, no ``%`` interpolation, and the origin
(file) of every value so errors point at the file the user must edit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from circus.errors import ConfigError

DEFAULT_SECTION = "DEFAULT"
# as 0.19's configparser: the name runs to the *last* ``]``; text after it is not part of it
_HEADER = re.compile(r"^\[(?P<name>.+)\](?P<rest>.*)$")


@dataclass
class IniData:
    """Sections merged from one or more files, first value of each option winning.

    ``origins`` remembers which file each ``(section, key)`` came from; ``section_files`` the file
    where a section first appeared. Section order is the order of first appearance.
    """

    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    section_files: dict[str, str] = field(default_factory=dict)
    #: things 0.19 accepts that are likely mistakes, as (path, section, message)
    warnings: list[tuple[str, str | None, str]] = field(default_factory=list)

    def add(self, path: str, section: str, key: str, value: str) -> None:
        options = self.sections.setdefault(section, {})
        self.section_files.setdefault(section, path)
        if key not in options:
            options[key] = value
            self.origins[(section, key)] = path

    def ensure_section(self, path: str, section: str) -> None:
        self.sections.setdefault(section, {})
        self.section_files.setdefault(section, path)

    def items(self, section: str) -> dict[str, str]:
        """The options of ``section`` with ``[DEFAULT]`` values filling the gaps."""
        merged = dict(self.sections.get(section, {}))
        for key, value in self.sections.get(DEFAULT_SECTION, {}).items():
            merged.setdefault(key, value)
        return merged

    def origin(self, section: str, key: str | None = None) -> str | None:
        """File that defined ``section``/``key`` (falls back to ``[DEFAULT]``, then the section)."""
        if key is not None:
            for sect in (section, DEFAULT_SECTION):
                if (sect, key) in self.origins:
                    return self.origins[(sect, key)]
        return self.section_files.get(section)

    def names(self) -> list[str]:
        """Section names except ``[DEFAULT]``, in order of first appearance."""
        return [name for name in self.sections if name != DEFAULT_SECTION]


def _strip_comment(text: str) -> str:
    """Cut an inline comment: only the first ``;``, and only when whitespace precedes it (0.19)."""
    pos = text.find(";")
    if pos > 0 and text[pos - 1].isspace():
        return text[:pos]
    return text


def _finish(value_lines: list[str]) -> str:
    value = "\n".join(value_lines)
    return "" if value == '""' else value


def parse_ini(text: str, path: str, data: IniData) -> None:
    """Parse ``text`` (read from ``path``) into ``data``; raise ConfigError on malformed lines.

    As in 0.19: an indented line continues the current option (blank continuation lines are
    dropped, no comment stripping in them); blank lines do not end an option; ``""`` is empty.
    Unlike 0.19, indented ``#``/``;`` lines are comments too, and a line starting with ``[``
    that is not a complete header is an error (0.19 makes it an option of the section above).
    """
    section: str | None = None
    key: str | None = None
    lines: list[str] = []

    def flush() -> None:
        if section is not None and key is not None:
            data.add(path, section, key, _finish(lines))

    for lineno, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if raw[0].isspace() and key is not None:
            lines.append(stripped)
            continue
        flush()
        key, lines = None, []
        header = _HEADER.match(_strip_comment(stripped).strip())
        if header:
            section = header.group("name").strip()
            if not section:
                raise ConfigError(f"line {lineno}: empty section name", path=path)
            rest = header.group("rest").strip()
            if rest and rest[0] not in "#;":
                data.warnings.append(
                    (path, section, f"line {lineno}: text after the section header ignored: "
                     f"{rest!r}")
                )
            data.ensure_section(path, section)
            continue
        if stripped.startswith("["):
            # 0.19 reads "[watcher:web" as an option of the previous section and drops the
            # watcher without a word
            raise ConfigError(
                f"line {lineno}: malformed section header {stripped!r}: missing ']'? "
                f"(meant [{stripped[1:].strip()}]?)",
                path=path,
            )
        if section is None:
            raise ConfigError(
                f"line {lineno}: option outside any section (add a [section] header first)",
                path=path,
            )
        positions = [pos for pos in (stripped.find("="), stripped.find(":")) if pos >= 0]
        if not positions:
            raise ConfigError(
                f"line {lineno}: expected 'key = value', got {stripped!r}",
                path=path,
                section=section,
            )
        cut = min(positions)
        key = stripped[:cut].strip()
        if not key:
            raise ConfigError(f"line {lineno}: option without a name", path=path, section=section)
        lines = [_strip_comment(stripped[cut + 1 :].lstrip()).strip()]
    flush()
