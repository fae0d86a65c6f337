"""Root conftest: the suite holds whatever else is installed in the venv.

The fixtures for plugin authors (``circusd``, ``circus_plugin``, ``circus_events``,
``plugin_harness``) come from circus-core's ``pytest11`` entry point, like in any plugin's own
suite. Third-party hook distributions (``circus.hooks`` entry points) are not loaded, here or in
the circusd and plugin processes the tests start (they inherit the variable): a hook that drops
or rewrites events must not change what our tests see. Tests of hook loading set
``CIRCUS_LOAD_HOOKS`` themselves.
"""

import os
from typing import Any

os.environ["CIRCUS_LOAD_HOOKS"] = ""

pytest_plugins = ["pytester"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Count the skips on a line of their own: a skip is a test that proved nothing."""
    skipped = len(terminalreporter.stats.get("skipped", []))
    required = os.environ.get("CIRCUS_REQUIRE_PARTS", "") not in ("", "0")
    terminalreporter.write_line(
        f"circus: {skipped} test(s) skipped; missing real parts "
        f"{'fail (CIRCUS_REQUIRE_PARTS is set, as in CI)' if required else 'are skipped'}")
