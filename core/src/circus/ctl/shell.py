"""The interactive ``(circusctl)`` prompt, entered when circusctl is run without a command.

Every line is parsed and run exactly like a command line would be (same parser, same output,
same client), so the shell needs no command logic of its own. A mistake in one line prints its
usage message and the prompt comes back.

Leaving the shell is not stopping the daemon: in 0.19 ``quit`` at this prompt sends ``quit`` to
circusd, which stops every process without asking, and ``exit`` is refused. Here ``exit`` and
``quit`` leave the shell; ``quit`` first asks whether circusd should stop too (default no), and
``stop-daemon`` stops it (the ``quit`` command, options such as ``--waiting`` passed on).
"""

from __future__ import annotations

import cmd
import shlex
from collections.abc import Callable

from circus.ctl.commands import COMMANDS

RunLine = Callable[[list[str]], int]
Ask = Callable[[str], str]
STOP_DAEMON = "stop-daemon"
CONFIRM = "Stop circusd and every process it runs as well? [y/N] "


class CtlShell(cmd.Cmd):
    prompt = "(circusctl) "
    intro = None

    def __init__(
        self, run_words: RunLine, print_help: Callable[[], None], ask: Ask = input
    ) -> None:
        super().__init__()
        self._run_words = run_words
        self._print_help = print_help
        self._ask = ask
        self.last_status = 0
        self._leave = False

    def default(self, line: str) -> None:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            print(f"error: {exc}")
            return
        if words and words[0] == STOP_DAEMON:
            self.last_status = self._run_words(["quit", *words[1:]])
            self._leave = self.last_status == 0  # nothing left to control
        elif words:
            self.last_status = self._run_words(words)

    def postcmd(self, stop: bool, line: str) -> bool:
        return stop or self._leave

    def do_exit(self, _: str) -> bool:
        return True

    def do_quit(self, arg: str) -> bool:
        try:
            answer = self._ask(CONFIRM)
        except EOFError:
            answer = ""
        if answer.strip().lower() in ("y", "yes"):
            self.last_status = self._run_words(["quit", *shlex.split(arg)])
        else:
            print(f"circusd keeps running ({STOP_DAEMON} stops it)")
        return True

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
        names = sorted({*COMMANDS, "exit", STOP_DAEMON})
        return [name for name in names if name.startswith(text)]
