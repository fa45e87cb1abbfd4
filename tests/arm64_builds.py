"""Real aarch64 Linux crashes, once per machine: built here, crashed under qemu-aarch64, read by
gdb-multiarch (the oracle).  Import the fixture into a test module
(``from arm64_builds import arm64_crashes``).

* C: tests/toolchains/linux-arm64/crashes.c, one crash per mode (a leaf, deep recursion, a 64 KiB
  frame, ten saved integer and eight saved FP registers, inlined functions, calls through function
  pointers, a bad PC, abort() raising the signal inside the C library, a second thread crashing
  while the first waits in pthread_join), built by Debian's ``aarch64-linux-gnu-gcc`` and by ``clang
  --target=aarch64-linux-gnu -fuse-ld=lld`` at the settings of :data:`C_BUILDS`: with and without
  frame pointers, ``.eh_frame``, ``.debug_frame`` only, and no CFI at all (frame records only).
  Non-PIE: gdb does not relocate a PIE from a qemu core (qemu writes no NT_FILE).
* Rust: the no_core samples (crash-deep, crash-recurse, crash-ill, crash-me) built by cargo for
  ``aarch64-unknown-linux-gnu`` (samples/.cargo/config.toml), static, with their ``.dwp``.

Each program runs under ``qemu-aarch64 -L /usr/aarch64-linux-gnu`` with ``ulimit -c unlimited``:
qemu writes the guest's core, ``qemu_<prog>_<time>_<pid>.core``, in the working directory (a
directory named ``core`` there stops the kernel from also dumping qemu itself).  gdb-multiarch
then prints its backtrace of the core and, for the ``saves`` programs, each frame's registers.

Everything is kept under ``~/.cache/symtool-tests/linux-arm64/<key>`` (``$XDG_CACHE_HOME``),
``key`` a hash of the sources, the build settings and the tools' versions, written once under a
lock and renamed into place whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from build_cache import cached_build
from conftest import ROOT, SAMPLES, cargo_env, need_tool

SOURCE = ROOT / "tests" / "toolchains" / "linux-arm64" / "crashes.c"
SYSROOT = Path("/usr/aarch64-linux-gnu")
RUST_TRIPLE = "aarch64-unknown-linux-gnu"
MODES = ("leaf", "recurse", "large", "saves", "inline", "fnptr", "badpc", "abort", "thread")
RUST_CRASHES = ("crash-deep", "crash-recurse", "crash-ill", "crash-me")
# build name -> (compiler, flags, sections to strip after linking, modes crashed)
C_BUILDS = {
    "gcc-O1": ("gcc", ["-O1", "-g"], [], MODES),
    "gcc-O2-nofp": ("gcc", ["-O2", "-g", "-fomit-frame-pointer"], [], MODES),
    "gcc-debug-frame": ("gcc", ["-O1", "-g", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables"], [],
                        ("recurse", "saves", "inline", "fnptr")),
    # Return addresses signed with pointer authentication (qemu's default CPU has it): gdb 13 cannot
    # strip them from a qemu core (no NT_ARM_PAC_MASK), so the oracle is gdb on the gcc-O1 build.
    "gcc-pac": ("gcc", ["-O1", "-g", "-mbranch-protection=pac-ret+leaf"], [], ("recurse", "saves", "fnptr")),
    "clang-O2": ("clang", ["-O2", "-g"], [], MODES),
    "clang-fp-only": ("clang", ["-O1", "-g", "-fno-omit-frame-pointer", "-fno-asynchronous-unwind-tables",
                                "-fno-unwind-tables"], [".eh_frame", ".eh_frame_hdr", ".debug_frame"],
                      ("leaf", "recurse", "large", "fnptr", "badpc", "thread")),
}
SAVED_REGISTERS = tuple(f"x{i}" for i in range(19, 29)) + ("x29", "sp", "pc")
PAC_ORACLE = {"gcc-pac": "gcc-O1"}  # builds whose frames are checked against another build's gdb backtrace


@dataclass
class GdbFrame:
    index: int
    address: int | None  # None for frame 0 and inline frames (gdb prints no address)
    function: str  # "??" where gdb has no symbol
    file: str | None
    line: int | None


@dataclass
class Arm64Crash:
    name: str  # "<build>/<mode>" or "rust/<crash>"
    build: str
    binary: Path
    core: Path
    frames: list[GdbFrame]  # gdb's backtrace of the crashing thread, up to and with main (gdb stops there)
    threads: dict[int, list[GdbFrame]]  # thread id -> gdb's backtrace, every thread (the crashing one first)
    registers: dict[int, dict[str, int]]  # frame -> gdb's values of SAVED_REGISTERS (saves programs)
    signal: str

    @property
    def debug_files(self) -> list[Path]:
        dwp = self.binary.with_name(self.binary.name + ".dwp")
        return [dwp] if dwp.is_file() else []


GDB_FRAME = re.compile(r"^#(\d+)\s+(?:0x([0-9a-f]+) in )?(\S+) \(.*\)(?: at (\S+):(\d+))?(?: from \S+)?$")
GDB_REGISTER = re.compile(r"^(x\d+|sp|pc)\s+0x([0-9a-f]+)")


GDB_THREAD = re.compile(r"^Thread (\d+) \(.*LWP (\d+)\)\)?:$")


def parse_gdb(text: str) -> tuple[dict[int, list[GdbFrame]], dict[int, dict[str, int]], str]:
    """gdb's backtraces by thread id in gdb's thread order (``thread apply all bt`` after the ``==bt``
    marker: it prints the last thread first; gdb's thread 1 is the first of the core, the signalled
    one), the first thread's registers per frame (after ``==frame N``) and the signal it names."""
    threads: dict[int, list[GdbFrame]] = {}
    numbers: dict[int, int] = {}  # thread id -> gdb's thread number
    frames: list[GdbFrame] = []
    registers: dict[int, dict[str, int]] = {}
    signal = re.search(r"Program terminated with signal (\w+)", text)
    section, frame = "", -1
    for line in text.splitlines():
        thread = GDB_THREAD.match(line.strip())
        if line.startswith("==bt"):
            section = "bt"
        elif section == "bt" and thread:
            frames = threads.setdefault(int(thread.group(2)), [])
            numbers[int(thread.group(2))] = int(thread.group(1))
        elif line.startswith("==frame "):
            section, frame = "regs", int(line.split()[1])
            registers[frame] = {}
        elif section == "bt":
            m = GDB_FRAME.match(line.strip())
            if m:
                assert int(m.group(1)) == len(frames), text
                frames.append(GdbFrame(len(frames), int(m.group(2), 16) if m.group(2) else None, m.group(3),
                                       m.group(4), int(m.group(5)) if m.group(5) else None))
        elif section == "regs":
            m = GDB_REGISTER.match(line)
            if m:
                registers[frame][m.group(1)] = int(m.group(2), 16)
    if frames and not threads:
        threads[0] = frames  # a backtrace without thread headers
    threads = dict(sorted(threads.items(), key=lambda item: numbers.get(item[0], 0)))
    return threads, {k: v for k, v in registers.items() if v}, signal.group(1) if signal else ""


def _tools() -> list[str]:
    """Every tool the programs are built, crashed and read with (each asked for by name, so that
    tests/test_readme.py sees them in .ci/run)."""
    return [need_tool("aarch64-linux-gnu-gcc"), need_tool("clang"), need_tool("ld.lld"), need_tool("llvm-objcopy"),
            need_tool("qemu-aarch64"), need_tool("gdb-multiarch"), need_tool("cargo"), need_tool("rustc")]


def _versions() -> str:
    out = []
    for tool in _tools():
        proc = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60)
        out.append(proc.stdout.splitlines()[0] if proc.stdout else tool)
    return "\n".join(out)


def _key() -> str:
    h = hashlib.sha256()
    h.update(f"{json.dumps(C_BUILDS, sort_keys=True)}\n{_versions()}\n".encode())
    h.update(SOURCE.read_bytes())
    h.update(Path(__file__).read_bytes())  # how they are built, crashed and read
    for path in sorted(SAMPLES.rglob("*")):
        if path.is_file() and "target" not in path.parts:
            h.update(str(path.relative_to(SAMPLES)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:20]


def _compile(build: str, out: Path) -> Path:
    compiler, flags, strip, _modes = C_BUILDS[build]
    binary = out / build / "crashes"
    binary.parent.mkdir(parents=True)
    if compiler == "gcc":
        argv = [need_tool("aarch64-linux-gnu-gcc")]
    else:
        argv = [need_tool("clang"), "--target=aarch64-linux-gnu", "-fuse-ld=lld"]
    subprocess.run(argv + flags + ["-no-pie", "-o", str(binary), str(SOURCE)], check=True, timeout=300,
                   capture_output=True)
    if strip:
        subprocess.run([need_tool("llvm-objcopy")] + [f"--remove-section={s}" for s in strip] + [str(binary)],
                       check=True, timeout=60)
    return binary


def _cargo(out: Path) -> Path:
    ws = out / "rust-ws"
    shutil.copytree(SAMPLES, ws, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    proc = subprocess.run(["cargo", "build", "--profile", "full-debug", "--target", RUST_TRIPLE, "-p", "crash-stack",
                           "-p", "crash-me"], cwd=ws, env=cargo_env(CARGO_TARGET_DIR=str(ws / "target")),
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"cargo build {RUST_TRIPLE} failed:\n{proc.stderr[-4000:]}")
    return ws / "target" / RUST_TRIPLE / "full-debug"


def _crash(binary: Path, args: list[str], core: Path) -> None:
    """Run ``binary`` under qemu-aarch64 to its signal; its core is moved to ``core``."""
    run = core.parent / f"run-{core.stem}"
    (run / "core").mkdir(parents=True)  # a directory where the kernel would write qemu's own core
    qemu = need_tool("qemu-aarch64")
    # A 1 MiB stack (-s; qemu's default is 8 MiB) keeps each core near 1 MiB: the whole stack is in it.
    proc = subprocess.run(["sh", "-c", 'ulimit -c unlimited && exec "$@"', "sh", qemu, "-L", str(SYSROOT),
                           "-s", str(1 << 20), str(binary), *args], cwd=run, capture_output=True, timeout=120)
    cores = list(run.glob("qemu_*.core"))
    assert proc.returncode != 0 and len(cores) == 1, (binary, args, proc.returncode, proc.stderr[-2000:])
    cores[0].rename(core)
    shutil.rmtree(run)


def _gdb(binary: Path, core: Path, registers: bool) -> str:
    argv = [need_tool("gdb-multiarch"), "-nx", "-batch", "-ex", "set pagination off", "-ex", f"set sysroot {SYSROOT}",
            "-ex", f"file {binary}", "-ex", f"core-file {core}", "-ex", "echo ==bt\\n", "-ex", "thread apply all bt"]
    if registers:
        for k in range(4):
            argv += ["-ex", f"echo ==frame {k}\\n", "-ex", f"frame {k}",
                     "-ex", "info registers " + " ".join(SAVED_REGISTERS)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    return proc.stdout


def _produce(out: Path) -> list[dict]:
    """Build, crash and read every program into ``out``; the index of what was made."""
    index = []
    programs: list[tuple[str, str, Path, list[str]]] = []
    for build, (_c, _f, _s, modes) in C_BUILDS.items():
        binary = _compile(build, out)
        programs += [(f"{build}/{mode}", build, binary, [mode]) for mode in modes]
    rust = _cargo(out)
    programs += [(f"rust/{name}", "rust", rust / name, []) for name in RUST_CRASHES]
    for name, build, binary, args in programs:
        core = out / "cores" / (name.replace("/", "-") + ".core")
        core.parent.mkdir(exist_ok=True)
        _crash(binary, args, core)
        text = _gdb(binary, core, registers=name.endswith("/saves"))
        (core.with_suffix(".gdb")).write_text(text)
        index.append({"name": name, "build": build, "binary": str(binary.relative_to(out)),
                      "core": str(core.relative_to(out))})
    (out / "index.json").write_text(json.dumps(index, indent=1))
    return index


@pytest.fixture(scope="session")
def arm64_crashes() -> dict[str, Arm64Crash]:
    """name -> :class:`Arm64Crash` for every program (built and crashed once per machine)."""
    _tools()
    if not (SYSROOT / "lib" / "libc.so.6").is_file():
        message = f"no aarch64 C library at {SYSROOT} (Debian's libc6-dev-arm64-cross)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    done = cached_build("linux-arm64", _key(), _produce, "index.json")
    crashes = {}
    for entry in json.loads((done / "index.json").read_text()):
        core = done / entry["core"]
        threads, registers, signal = parse_gdb(core.with_suffix(".gdb").read_text())
        frames = next(iter(threads.values()), [])  # qemu writes the signalled thread's notes first
        crashes[entry["name"]] = Arm64Crash(entry["name"], entry["build"], done / entry["binary"], core, frames,
                                            threads, registers, signal)
    return crashes


__all__ = ["arm64_crashes", "Arm64Crash", "GdbFrame", "C_BUILDS", "MODES", "RUST_CRASHES", "SYSROOT", "parse_gdb",
           "SAVED_REGISTERS", "PAC_ORACLE"]
