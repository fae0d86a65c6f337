"""The 25 control commands of Circus 0.19 (and our additions in ``observe``), one module per
family, and their registry.

``COMMANDS`` maps the lower-cased name to the command object; the dispatcher looks names up
case-insensitively, as 0.19 does (``"LIST"`` works).
"""

from __future__ import annotations

from circus.commands import info, lifecycle, observe, processes, settings, watchers
from circus.commands.base import Background, Command

COMMANDS: dict[str, Command] = {
    command.name: command
    for module in (lifecycle, watchers, processes, settings, info, observe)
    for command in module.COMMANDS
}


def get_command(name: str) -> Command | None:
    return COMMANDS.get(name.lower())


__all__ = ["COMMANDS", "Background", "Command", "get_command"]
