"""The built wheel installs both commands: `symtool` and cargo's `cargo symtool`."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, need_tool

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the wheel built from this checkout installed in it (deps from the index)."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    wheels = list((work / "dist").glob("*.whl"))
    assert [w.name.split("-")[0] for w in wheels] == ["cargo_symtool"]
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    # Without PYTHONPATH: a checkout on it (its cargo_symtool.egg-info) reads as "already installed".
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheels[0])], check=True, capture_output=True,
                   timeout=600, env=clean)
    return venv


def test_wheel_metadata_names_the_distribution_and_both_scripts(installed, tmp_path):
    wheel = next((installed.parent / "dist").glob("*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(next(n for n in zf.namelist() if n.endswith("METADATA"))).decode()
        scripts = zf.read(next(n for n in zf.namelist() if n.endswith("entry_points.txt"))).decode()
    assert "\nName: cargo-symtool\n" in meta
    assert "symtool = symtool.main:main" in scripts
    assert "cargo-symtool = symtool.main:cargo_main" in scripts


def test_symtool_and_cargo_symtool_run_from_the_installed_wheel(installed, tmp_path):
    need_tool("cargo")
    env = dict(os.environ, PATH=f"{installed / 'bin'}{os.pathsep}{os.environ['PATH']}")
    env.pop("PYTHONPATH", None)
    direct = subprocess.run(["symtool", "--version"], env=env, capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    assert direct.returncode == 0 and direct.stdout.strip() == "symtool 0.1.0", direct.stderr
    # cargo finds `cargo-symtool` on PATH and runs it as `cargo-symtool symtool ...`.
    via_cargo = subprocess.run(["cargo", "symtool", "--version"], env=env, capture_output=True, text=True,
                               timeout=60, cwd=tmp_path)
    assert via_cargo.returncode == 0 and via_cargo.stdout.strip() == "symtool 0.1.0", via_cargo.stderr
    helped = subprocess.run(["cargo", "symtool", "check", "--help"], env=env, capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert helped.returncode == 0 and "Usage: cargo symtool check" in helped.stdout, helped.stderr
    # The installed package is the wheel's, not this checkout's.
    where = subprocess.run([str(installed / "bin" / "python"), "-c", "import symtool; print(symtool.__file__)"],
                           env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert str(installed) in where.stdout
