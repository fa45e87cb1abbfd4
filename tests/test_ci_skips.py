"""CI=true turns a skip into a failed run, serially and under pytest-xdist (tests/ci_skips.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

SKIPPING = """
import pytest

def test_passes():
    pass

def test_needs_a_tool():
    pytest.skip("needs `frobnicate` on PATH")

def test_optional():
    pytest.skip("optional: pdbparse does not install here")
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_skip_fails_the_run_under_ci(pytester, monkeypatch, workers):
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # the plugin, as tests/conftest.py loads it
    pytester.makepyfile(test_skipping=SKIPPING)
    result = pytester.runpytest_subprocess("-p", "ci_skips", "-p", "no:cacheprovider", *workers)
    result.assert_outcomes(passed=1, skipped=2)
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*CI=true: 1 test(s) skipped*",
                                 "*test_skipping.py::test_needs_a_tool: needs `frobnicate` on PATH"])
    assert "test_optional:" not in result.stdout.str()


def test_only_optional_skips_pass_under_ci(pytester, monkeypatch):
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    pytester.makepyfile(test_optional="import pytest\n\ndef test_optional():\n    pytest.skip('optional: absent')\n")
    result = pytester.runpytest_subprocess("-p", "ci_skips", "-p", "no:cacheprovider", "-n", "2")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(skipped=1)


def test_a_skip_is_a_skip_outside_ci(pytester, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    pytester.makepyfile(test_skipping=SKIPPING)
    result = pytester.runpytest_subprocess("-p", "ci_skips", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1, skipped=2)
