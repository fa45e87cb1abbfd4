"""Hostile inputs: manifests, configs, FIFOs among the files given (issue 12, docs/security.md).

A Cargo.toml or .cargo/config.toml is written by whoever wrote the crate;
the files and directories handed to publish, dumps and id may hold FIFOs.
The promise: one error line and exit 2 (never a traceback), never a hang.
"""

from __future__ import annotations

import os
import shutil

import pytest

from hostile_helpers import CRASH_PDB, clean_env, symtool

DEEP = 5000
MANIFEST = '[package]\nname = "a"\nversion = "0.1.0"\nedition = "2021"\n'


@pytest.fixture
def env(tmp_path):
    return clean_env(tmp_path)


def crate(tmp_path, manifest: str = MANIFEST, config: str | None = None):
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "main.rs").write_text("fn main() {}\n")
    (ws / "Cargo.toml").write_text(manifest)
    if config is not None:
        (ws / ".cargo").mkdir()
        (ws / ".cargo" / "config.toml").write_text(config)
    return ws


HOSTILE_TOML = {
    "nested-arrays": "x = " + "[" * DEEP + "]" * DEEP + "\n",
    "nested-tables": "x = " + "{a = " * DEEP + "1" + "}" * DEEP + "\n",
    "huge-integer": "x = " + "9" * DEEP + "\n",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_TOML))
@pytest.mark.parametrize("where", ["manifest", "config"])
@pytest.mark.parametrize("command", [["env"], ["check"], ["publish", "--dry-run", "--store", "s"]])
def test_hostile_toml_is_one_error_line(tmp_path, env, kind, where, command):
    text = HOSTILE_TOML[kind]
    if where == "manifest":
        ws = crate(tmp_path, manifest=MANIFEST + "[package.metadata]\n" + text)
    else:
        ws = crate(tmp_path, config=text)
    proc = symtool(*command, env=env, cwd=ws)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "TOML" in lines[0], proc.stderr


def test_cfg_nested_5000_deep_is_one_error_line(tmp_path, env):
    key = "cfg(" + "not(" * DEEP + "unix" + ")" * DEEP + ")"
    ws = crate(tmp_path, config=f"[target.'{key}']\nrustflags = [\"-Cdebuginfo=2\"]\n")
    proc = symtool("check", env=env, cwd=ws)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "nests all/any/not more than" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_fifo_among_publish_inputs_does_not_hang(tmp_path, env):
    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(CRASH_PDB, d / "crash.pdb")
    os.mkfifo(d / "stuck.pdb")
    proc = symtool("publish", d, "--store", tmp_path / "s", env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "added 1" in proc.stdout
    named = symtool("publish", d / "stuck.pdb", "--store", tmp_path / "s", env=env, timeout=60)
    assert named.returncode == 2 and "FIFO" in named.stderr


def test_fifo_among_dumps_does_not_hang(tmp_path, env):
    d = tmp_path / "dumps"
    d.mkdir()
    os.mkfifo(d / "stuck.dmp")
    proc = symtool("dumps", d, "--offline", env=env, timeout=60)
    assert proc.returncode in (0, 1, 2)
    named = symtool("dumps", d / "stuck.dmp", "--offline", env=env, timeout=60)
    assert named.returncode in (1, 2) and "FIFO" in named.stdout + named.stderr  # an unreadable dump


def test_id_of_a_fifo_does_not_hang(tmp_path, env):
    fifo = tmp_path / "stuck.pdb"
    os.mkfifo(fifo)
    proc = symtool("id", fifo, env=env, timeout=60)
    assert proc.returncode == 2 and "FIFO" in proc.stderr
