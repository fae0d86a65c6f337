"""The statsd plugin for circus (implementation lands with issue 5)."""

from circus.plugins import CircusPlugin

__all__ = ["StatsdEmitter"]


class StatsdEmitter(CircusPlugin):
    """Placeholder registered under the ``circus.plugins`` entry-point group as ``statsd``."""

    name = "statsd"

    def handle_recv(self, data: tuple[str, str]) -> None:
        raise NotImplementedError("the statsd plugin is not implemented yet")
