"""A plain ``cargo build`` of samples/ (dev profile, the target from samples/.cargo/config.toml).

The dev profile turns on overflow checks, so the ``#![no_core]`` minicore must
provide the lang items a checked add calls (issue 11, item 12).
"""

from __future__ import annotations

import json
import shutil
import subprocess

from cli_runner import symtool_in_process
from conftest import SAMPLES, TRIPLE, cargo_env, need_tool, sample_layout


def test_plain_cargo_build_is_the_dev_profile_and_its_pdbs_match(tmp_path):
    need_tool("cargo")
    ws = tmp_path / "ws"
    shutil.copytree(SAMPLES, ws, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    target = tmp_path / "target"
    env = cargo_env(CARGO_TARGET_DIR=str(target))
    # No --profile, no --target: what someone types first.
    proc = subprocess.run(["cargo", "build"], cwd=ws, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "`dev` profile" in proc.stderr
    out = target / TRIPLE / "debug"  # build.target of samples/.cargo/config.toml; dev builds into debug/
    assert sorted(p.name for p in out.glob("*.exe")) == sample_layout().exe_names()

    verify = symtool_in_process("verify", "--json", out, timeout=120, env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    records = json.loads(verify.stdout)
    assert sorted((r["binary"].rsplit("/", 1)[-1], r["pdb"].rsplit("/", 1)[-1]) for r in records) == \
        sample_layout().pairs()
    assert all(r["status"] == "match" and r["image_id"] == r["pdb_id"] for r in records)
