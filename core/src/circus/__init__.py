"""circus: a process supervisor wire-compatible with Circus 0.19, built around plugins.

``__version__`` and ``get_arbiter`` are resolved lazily (PEP 562): ``importlib.metadata`` alone
costs circusd about 4 MB of RSS, and clients importing ``circus.protocol`` must not load the daemon.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from circus.arbiter import get_arbiter

    __version__: str


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("circus-core")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = _version()
        globals()["__version__"] = value
        return value
    if name == "get_arbiter":
        from circus.arbiter import get_arbiter

        return get_arbiter
    raise AttributeError(f"module 'circus' has no attribute {name!r}")


__all__ = ["__version__", "get_arbiter"]
