"""Under ``CI=true`` a skipped test fails the run (a plugin, loaded by tests/conftest.py).

A skip means something CI was meant to install is missing, so it must not pass
quietly: the run's exit status becomes 1 and the terminal summary lists every
skip, unless its reason starts with ``optional:`` (e.g. pdbparse, which does not
install on every Python).

Works alone and under pytest-xdist: the controller receives every worker's
reports through ``pytest_runtest_logreport`` and owns the exit status and the
summary; workers collect nothing (a serialised skip's ``longrepr`` arrives as a
list, not a tuple).  tests/test_ci_skips.py runs it both ways.
"""

from __future__ import annotations

import os

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_in_worker = False

_bad_skips: list[str] = []


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    text = str(longrepr[-1]) if isinstance(longrepr, (tuple, list)) else str(longrepr)
    return text.split("Skipped: ", 1)[-1]


def pytest_configure(config):
    global _in_worker
    _in_worker = hasattr(config, "workerinput")  # set by xdist in its workers only


def pytest_runtest_logreport(report):
    if IN_CI and not _in_worker and report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        if not reason.startswith("optional:"):
            _bad_skips.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    if _bad_skips and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _bad_skips:
        terminalreporter.write_line(
            f"CI=true: {len(_bad_skips)} test(s) skipped; nothing but 'optional:' skips may be skipped in CI:",
            red=True,
        )
        for line in _bad_skips:
            terminalreporter.write_line(f"  {line}", red=True)
