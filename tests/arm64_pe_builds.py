"""Real Windows ARM64 test programs (PE + PDB), built once and cached by their inputs.

``crash.exe`` links three objects: ``crash.c`` (clang -O2: recursion, a 40 KB frame with
__chkstk, many saved registers, FP registers, inlined calls, calls through pointers, a bad
PC, a varargs function that homes its parameters, alloca), ``chained.c`` (-O1 with frame
pointers and -mbranch-protection=pac-ret) and ``codes.s`` (hand-written prologues holding
every unwind code, and a function fragment whose .xdata holds end_c).  The C files go
through clang 14 to bitcode and LLVM 19's llc, whose ARM64 SEH emission knows pac_sign_lr;
lld-link writes the PDB.  The cache lives under ~/.cache/symtool-tests/arm64-pe/<hash of
the sources, flags and tool versions> (tests/build_cache.py).
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from build_cache import cached_build
from conftest import need_tool

SOURCES = Path(__file__).resolve().parent / "arm64_pe"
TARGET = "aarch64-pc-windows-msvc"
C_FLAGS = {
    "crash.c": ["-O2"],
    "chained.c": ["-O1", "-fno-omit-frame-pointer", "-mbranch-protection=pac-ret"],
}
COMMON = ["--target=" + TARGET, "-g", "-gcodeview", "-ffreestanding", "-fno-builtin", "-funwind-tables",
          "-fno-stack-protector", "-emit-llvm", "-c"]
LINK = ["/nologo", "/debug", "/nodefaultlib", "/entry:start", "/subsystem:console", "/machine:arm64",
        "/base:0x140000000"]
TOOLS = ("clang", "llc-19", "llvm-mc-19", "lld-link")  # their versions key the cache


@dataclass
class Arm64PeBuild:
    exe: Path
    pdb: Path


def _key(tools: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(p.name for p in SOURCES.iterdir()):
        h.update(name.encode() + b"\0" + (SOURCES / name).read_bytes())
    h.update(repr((C_FLAGS, COMMON, LINK)).encode())
    for tool in TOOLS:
        version = subprocess.run([tools[tool], "--version"], capture_output=True, text=True).stdout
        h.update(version.encode())
    return h.hexdigest()[:16]


def _run(args: list[str], cwd: Path) -> None:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")


def build_arm64_pe() -> Arm64PeBuild:
    tools = {"clang": need_tool("clang"), "llc-19": need_tool("llc-19"), "llvm-mc-19": need_tool("llvm-mc-19"),
             "lld-link": need_tool("lld-link")}

    def produce(work: Path) -> None:
        objects = []
        for source, flags in C_FLAGS.items():
            bc = work / (source[:-2] + ".bc")
            _run([tools["clang"], *COMMON, *flags, str(SOURCES / source), "-o", str(bc)], work)
            obj = work / (source[:-2] + ".obj")
            _run([tools["llc-19"], "-filetype=obj", str(bc), "-o", str(obj)], work)
            objects.append(obj.name)
        _run([tools["llvm-mc-19"], f"-triple={TARGET}", "-filetype=obj", str(SOURCES / "codes.s"), "-o",
              str(work / "codes.obj")], work)
        objects.append("codes.obj")
        _run([tools["lld-link"], *LINK, "/out:crash.exe", "/pdb:crash.pdb", *objects], work)

    out = cached_build("arm64-pe", _key(tools), produce, "crash.pdb")
    return Arm64PeBuild(out / "crash.exe", out / "crash.pdb")


@pytest.fixture(scope="session")
def arm64_pe() -> Arm64PeBuild:
    return build_arm64_pe()
