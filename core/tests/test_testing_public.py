"""``circus.testing`` is a public kit: what it exports is what plugin authors get, documented.

This repository's own test plumbing (``tests/support``) must not leak back into it, and
``missing_part`` must turn a missing real part into a failure when CI asks for it.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import support

import circus.testing

PLUGINS_DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def defined_public_names() -> set[str]:
    """Functions and classes the module itself defines without a leading underscore."""
    return {
        name for name, value in vars(circus.testing).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == circus.testing.__name__
    }


def test_all_lists_exactly_what_the_module_defines() -> None:
    assert sorted(circus.testing.__all__) == sorted(defined_public_names())


def test_the_repository_plumbing_is_not_shipped() -> None:
    assert support.__all__, "tests/support exports nothing?"
    leaked = [name for name in support.__all__ if hasattr(circus.testing, name)]
    assert leaked == []


def test_every_exported_helper_is_documented_for_plugin_authors() -> None:
    section = PLUGINS_DOC.read_text().split("## Testing your plugin", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`(\w+)[(`]", section))
    assert set(circus.testing.__all__) - documented == set()


@pytest.mark.parametrize(("required", "outcome"), [("", "skipped"), ("0", "skipped"),
                                                   ("1", "failed")])
def test_missing_part_skips_locally_and_fails_in_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, required: str, outcome: str,
) -> None:
    monkeypatch.setenv("CIRCUS_REQUIRE_PARTS", required)
    pytester.makepyfile(
        """
        from circus.testing import missing_part

        def test_needs_a_server():
            missing_part("the frobnicator is not installed")
        """
    )
    result = pytester.runpytest("-rsf", "-p", "no:cacheprovider")
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["*the frobnicator is not installed*"])
