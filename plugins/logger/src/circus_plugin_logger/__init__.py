"""The logger plugin for circus (implementation lands with issue 5)."""

from circus.plugins import CircusPlugin

__all__ = ["Logger"]


class Logger(CircusPlugin):
    """Placeholder registered under the ``circus.plugins`` entry-point group as ``logger``."""

    name = "logger"

    def handle_recv(self, data: tuple[str, str]) -> None:
        raise NotImplementedError("the logger plugin is not implemented yet")
