"""Plugin base class. Placeholder until the plugin layer lands (issue 4)."""

from typing import Any


class CircusPlugin:
    """Base class of every circus plugin: subclass it and implement :meth:`handle_recv`."""

    name = ""

    def __init__(self, **config: Any) -> None:
        self.config = config

    def handle_recv(self, data: tuple[str, str]) -> None:
        raise NotImplementedError
