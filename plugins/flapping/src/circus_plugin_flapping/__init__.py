"""The flapping plugin for circus (implementation lands with issue 5)."""

from circus.plugins import CircusPlugin

__all__ = ["Flapping"]


class Flapping(CircusPlugin):
    """Placeholder registered under the ``circus.plugins`` entry-point group as ``flapping``."""

    name = "flapping"

    def handle_recv(self, data: tuple[str, str]) -> None:
        raise NotImplementedError("the flapping plugin is not implemented yet")
