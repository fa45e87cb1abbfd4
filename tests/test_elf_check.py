"""`symtool check` on Linux targets: build-ids that cannot key debug files, and strip = "debuginfo"
with split-debuginfo = "packed" (a .dwp nothing refers to) -- proven with real cargo builds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli_runner import symtool_in_process
from conftest import SAMPLES, cargo_env, need_tool
from native_builds import LINUX, cargo_build
from symtool.formats.elf import read_elf


def check(ws: Path, *args: str) -> tuple[int, dict]:
    proc = symtool_in_process("check", str(ws), "--json", "--target", LINUX, *args, env=cargo_env(), timeout=120)
    return proc.returncode, json.loads(proc.stdout)


def findings(report: dict, key: str, profile: str = "release") -> list[dict]:
    return [f for p in report["profiles"] if p["name"] == profile for f in p["findings"] if f["key"] == key]


@pytest.fixture
def ws(tmp_path) -> Path:
    need_tool("cargo")
    dest = tmp_path / "ws"
    shutil.copytree(SAMPLES, dest, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    return dest


def add_linux_rustflags(ws: Path, *flags: str) -> None:
    cfg = ws / ".cargo" / "config.toml"
    text = cfg.read_text()
    head = "[target.x86_64-unknown-linux-gnu]\nrustflags = ["
    assert head in text
    cfg.write_text(text.replace(head, head + "".join(f'"{f}", ' for f in flags), 1))


def test_sample_linux_build_has_no_build_id_findings(ws):
    code, report = check(ws)
    assert code == 0 and not findings(report, "build-id"), report


def test_build_id_none_in_rustflags_and_in_the_built_binary(ws):
    add_linux_rustflags(ws, "-C", "link-arg=-Wl,--build-id=none")
    code, report = check(ws)
    assert code == 1
    f, = findings(report, "build-id")
    assert f["value"] == "none" and "config.toml" in f["source"] and "--build-id=sha1" in f["fix"]
    build = cargo_build(ws, ws / "target", LINUX, "release")
    assert read_elf(build.bin()).build_id is None  # what check predicted
    _code, report = check(ws)
    on_disk = [f for f in findings(report, "build-id") if f["value"] is None]
    assert {Path(f["source"]).name for f in on_disk} >= {"crash-me", "hello"}
    assert all("has no build-id" in f["message"] for f in on_disk)


def test_short_fixed_build_id(ws):
    add_linux_rustflags(ws, "-C", "link-arg=-Wl,--build-id=0x0123456789abcdef")
    code, report = check(ws)
    f, = findings(report, "build-id")
    assert code == 1 and "8-byte" in f["message"]
    build = cargo_build(ws, ws / "target", LINUX, "release")
    assert len(read_elf(build.bin()).build_id.raw) == 8
    _code, report = check(ws)
    assert any("8-byte build-id" in f["message"] for f in findings(report, "build-id"))


def test_strip_debuginfo_with_packed_split_makes_a_useless_dwp(ws):
    manifest = ws / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace('[profile.full-debug]\ninherits = "release"\ndebug = 2',
                                                     '[profile.full-debug]\ninherits = "release"\ndebug = 2\n'
                                                     'strip = "debuginfo"'))
    code, report = check(ws, "--profile", "full-debug")
    assert code == 1
    f = [f for f in findings(report, "strip", "full-debug") if ".dwp" in f["message"]]
    assert len(f) == 1 and "skeleton units" in f[0]["message"]
    # The real build: the .dwp holds units, the binary refers to none of them.
    build = cargo_build(ws, ws / "target", LINUX, "full-debug")
    assert read_elf(build.dwp()).dwo_ids and read_elf(build.bin()).dwo_ids == []
