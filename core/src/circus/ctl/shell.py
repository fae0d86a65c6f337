"""The interactive ``(circusctl)`` prompt, entered when circusctl is run without a command.

Every line is parsed and run exactly like a command line would be (same parser, same output,
same client), so the shell needs no command logic of its own. A mistake in one line prints its
usage message and the prompt comes back.
"""

from __future__ import annotations

import cmd
import shlex
from collections.abc import Callable

from circus.ctl.commands import COMMANDS

RunLine = Callable[[list[str]], int]


class CtlShell(cmd.Cmd):
    prompt = "(circusctl) "
    intro = None

    def __init__(self, run_words: RunLine, print_help: Callable[[], None]) -> None:
        super().__init__()
        self._run_words = run_words
        self._print_help = print_help
        self.last_status = 0

    def default(self, line: str) -> None:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            print(f"error: {exc}")
            return
        if words:
            self.last_status = self._run_words(words)

    def do_help(self, arg: str) -> bool | None:
        if arg.strip():
            self.default(f"{arg.strip()} --help")
        else:
            self._print_help()
        return None

    def do_EOF(self, _: str) -> bool:
        print()
        return True

    def emptyline(self) -> bool:
        return False

    def completenames(self, text: str, *ignored: object) -> list[str]:
        return [name for name in sorted(COMMANDS) if name.startswith(text)]
