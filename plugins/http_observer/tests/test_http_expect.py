"""The healthy-answer rule of http_observer, without a server."""

from __future__ import annotations

import pytest

from circus_plugin_http_observer.expect import Expectation, parse_statuses


def test_statuses_parse_codes_and_classes() -> None:
    assert parse_statuses("200") == ("200",)
    assert parse_statuses(" 200, 2XX 301 ") == ("200", "2xx", "301")


@pytest.mark.parametrize("text", ["", "abc", "600", "20", "2x", "099", "2xx;301"])
def test_statuses_refuse_garbage(text: str) -> None:
    with pytest.raises(ValueError, match=r"status code|expected at least one"):
        parse_statuses(text)


def test_status_classes_and_exact_codes() -> None:
    rule = Expectation(("2xx", "301"))
    assert rule.status_ok(200)
    assert rule.status_ok(204)
    assert rule.status_ok(301)
    assert not rule.status_ok(302)
    assert not rule.status_ok(503)


def test_judge_checks_status_then_body() -> None:
    rule = Expectation(("200",), body="ok")
    assert rule.judge(200, "all ok") == (True, "status 200")
    ok, why = rule.judge(503, "ok")
    assert not ok
    assert why == "status 503 (expected 200)"
    ok, why = rule.judge(200, "degraded")
    assert not ok
    assert "lacks 'ok'" in why


def test_default_is_any_2xx_without_body_check() -> None:
    assert Expectation().judge(204, "")[0]
    assert not Expectation().judge(404, "")[0]
