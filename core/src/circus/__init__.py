"""circus: a process supervisor wire-compatible with Circus 0.19, built around plugins."""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("circus-core")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

if TYPE_CHECKING:
    from circus.arbiter import get_arbiter


def __getattr__(name: str) -> Any:
    # Imported lazily: `import circus.protocol` (clients, plugins) must not pull in the daemon.
    if name == "get_arbiter":
        from circus.arbiter import get_arbiter

        return get_arbiter
    raise AttributeError(f"module 'circus' has no attribute {name!r}")


__all__ = ["__version__", "get_arbiter"]
