"""circus: a process supervisor wire-compatible with Circus 0.19, built around plugins."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("circus-core")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
