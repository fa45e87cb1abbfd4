"""Real Linux (ELF + .dwp) and macOS (Mach-O + .dSYM) builds of samples/, once per session.

Import the fixtures into a test module (``from native_builds import linux_builds``).
Every build is a real ``cargo build`` of the no_core sample crates:

* Linux, ``x86_64-unknown-linux-gnu``: profile ``full-debug`` (debug = 2, split
  packed: skeleton units in the binary, real units in the ``.dwp``) with DWARF 4
  (GNU split DWARF, ``.debug_cu_index`` v2) and with ``-C dwarf-version=5``
  (v5 index); ``release`` (line-tables-only: no skeletons, an empty ``.dwp``);
  ``full-debug`` linked with ``--build-id=none``.
* macOS, ``aarch64-apple-darwin`` and ``x86_64-apple-darwin``, profile
  ``full-debug``: rust-lld as ld64.lld, no SDK; rustc runs dsymutil.

Extra rustflags are passed with ``--config`` so they add to samples/.cargo/config.toml.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import SAMPLES, cargo_env, need_tool
from run_once import run_once

LINUX = "x86_64-unknown-linux-gnu"
MAC_ARM = "aarch64-apple-darwin"
MAC_X64 = "x86_64-apple-darwin"


@dataclass
class Build:
    target_dir: Path
    triple: str
    profile: str

    @property
    def out(self) -> Path:
        return self.target_dir / self.triple / self.profile

    def bin(self, name: str = "crash-me") -> Path:
        return self.out / name

    def dwp(self, name: str = "crash-me") -> Path:
        return self.out / f"{name}.dwp"

    def dsym(self, name: str = "crash-me") -> Path:
        return self.out / f"{name}.dSYM"


def _copy_samples(root: Path) -> Path:
    ws = root / "ws"
    shutil.copytree(SAMPLES, ws, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    return ws


def _workspace(tmp_path_factory, tag: str) -> Path:
    """A private copy of samples/ (prefer the shared builds above: a build of its own costs each worker)."""
    return _copy_samples(tmp_path_factory.mktemp(tag))


def cargo_build(ws: Path, target_dir: Path, triple: str, profile: str, *rustflags: str) -> Build:
    args = ["cargo", "build", "--profile", profile, "--target", triple]
    if rustflags:
        flags = ", ".join(f'"{f}"' for f in rustflags)
        args += ["--config", f"target.{triple}.rustflags=[{flags}]"]
    proc = subprocess.run(args, cwd=ws, env=cargo_env(CARGO_TARGET_DIR=str(target_dir)),
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"cargo build {triple} {profile} {rustflags} failed:\n{proc.stderr[-4000:]}")
    return Build(target_dir, triple, profile)


@dataclass
class LinuxBuilds:
    dwarf4: Build
    dwarf5: Build
    line_tables: Build
    no_build_id: Build


@dataclass
class MacBuilds:
    arm64: Build
    x86_64: Build
    other_arm64: Build  # the same crates built differently: another UUID


# Built once per run and shared by every xdist worker (tests/run_once.py): read-only.
@pytest.fixture(scope="session")
def linux_builds(tmp_path_factory) -> LinuxBuilds:
    need_tool("cargo")
    variants = {
        "dwarf4": ("t4", "full-debug", ()),
        "dwarf5": ("t5", "full-debug", ("-C", "dwarf-version=5")),
        "line_tables": ("tl", "release", ()),
        "no_build_id": ("tn", "full-debug", ("-C", "link-arg=-Wl,--build-id=none")),
    }

    def build(root: Path) -> None:
        ws = _copy_samples(root)
        for target, profile, flags in variants.values():
            cargo_build(ws, ws / target, LINUX, profile, *flags)

    ws = run_once(tmp_path_factory, "linux-builds", build) / "ws"
    return LinuxBuilds(**{name: Build(ws / target, LINUX, profile)
                          for name, (target, profile, _flags) in variants.items()})


@pytest.fixture(scope="session")
def mac_builds(tmp_path_factory) -> MacBuilds:
    need_tool("cargo")
    need_tool("dsymutil")  # rustc runs it for split-debuginfo = "packed" on macOS
    variants = {
        "arm64": ("t", MAC_ARM, ()),
        "x86_64": ("t", MAC_X64, ()),
        "other_arm64": ("o", MAC_ARM, ("-C", "opt-level=1")),
    }

    def build(root: Path) -> None:
        ws = _copy_samples(root)
        for target, triple, flags in variants.values():
            cargo_build(ws, ws / target, triple, "full-debug", *flags)

    ws = run_once(tmp_path_factory, "mac-builds", build) / "ws"
    return MacBuilds(**{name: Build(ws / target, triple, "full-debug")
                        for name, (target, triple, _flags) in variants.items()})
