"""`symtool symbolize` on a large Rust program's DWARF, side by side with llvm-symbolizer,
addr2line (binutils) and eu-addr2line (elfutils).

The program: std + regex + serde_json + toml + clap, built offline from Debian's crate
sources (librust-*-dev, /usr/share/cargo/registry as a directory source), release with
full debug info in the binary (no split DWARF).  It is built once and cached under
~/.cache/symtool-bench/<hash of its sources and the toolchain>; the build runs under
``flock /tmp/heavy.lock`` so it does not race other heavy jobs on a shared machine.

Cases: 1, 100 and 10,000 addresses of .text, in random order and sorted; every tool is a
new process (cold: nothing cached between runs; symtool with SYMTOOL_SYMBOL_CACHE=off; the
"symtool warm cache" column answers from the symbol cache a first, untimed run filled), runs are interleaved (tool A, B, C, D, A,
B, ...) so machine load hits each alike, and the median of the runs is reported, as wall
time and as CPU time (user + sys of the child), which load from other processes inflates
less.  Optional: ``stack`` on a Linux minidump of the same program with 10 / 100 / 1,000
frames is not measured (the program does not crash).

Usage: python bench/bench_symbolize_dwarf.py [--runs N] [--quick]
   or: python bench/run.py symbolize_dwarf
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TITLE = "symbolize: DWARF of a large Rust program, against llvm-symbolizer, addr2line, eu-addr2line"

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("SYMTOOL_BENCH_CACHE", Path.home() / ".cache" / "symtool-bench"))

MANIFEST = """\
[package]
name = "bigprog"
version = "0.1.0"
edition = "2021"

[dependencies]
regex = { version = "1", default-features = false, features = ["std", "unicode", "perf-cache", "perf-dfa", "perf-inline"] }
serde_json = "1"
toml = "0.5"
clap = { version = "4", default-features = false, features = ["std", "help", "usage", "error-context"] }

[profile.release]
debug = 2
split-debuginfo = "off"
"""

CARGO_CONFIG = """\
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "/usr/share/cargo/registry"

[net]
offline = true
"""

PROGRAM = r"""
use clap::{Arg, Command};
use regex::Regex;
use std::collections::BTreeMap;

fn main() {
    let matches = Command::new("bigprog")
        .arg(Arg::new("pattern").default_value(r"(\w+)=(\d+)"))
        .arg(Arg::new("text").default_value("a=1 b=22 c=333"))
        .get_matches();
    let pattern: &String = matches.get_one("pattern").unwrap();
    let text: &String = matches.get_one("text").unwrap();
    let re = Regex::new(pattern).expect("pattern");
    let mut found = BTreeMap::new();
    for cap in re.captures_iter(text) {
        found.insert(cap[1].to_string(), cap[2].parse::<u64>().unwrap_or(0));
    }
    let json = serde_json::to_string_pretty(&found).unwrap();
    let back: BTreeMap<String, u64> = serde_json::from_str(&json).unwrap();
    let toml_text = toml::to_string(&back).unwrap();
    let value: toml::Value = toml::from_str(&toml_text).unwrap();
    println!("{json}\n{toml_text}\n{value:?}");
}
"""


def _toolchain() -> str:
    return subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout


def build_program() -> Path:
    """The program's binary, built once per (sources, toolchain) and cached."""
    key = hashlib.sha256("\0".join([MANIFEST, CARGO_CONFIG, PROGRAM, _toolchain()]).encode()).hexdigest()[:16]
    ws = CACHE / f"bigprog-{key}"
    binary = ws / "target" / "release" / "bigprog"
    if binary.exists():
        return binary
    (ws / "src").mkdir(parents=True, exist_ok=True)
    (ws / ".cargo").mkdir(exist_ok=True)
    (ws / "Cargo.toml").write_text(MANIFEST)
    (ws / ".cargo" / "config.toml").write_text(CARGO_CONFIG)
    (ws / "src" / "main.rs").write_text(PROGRAM)
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("CARGO_PROFILE_") or k in ("RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET"))}
    env["CARGO_TARGET_DIR"] = str(ws / "target")
    proc = subprocess.run(["flock", "/tmp/heavy.lock", "cargo", "build", "--release", "--offline"], cwd=ws, env=env,
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0 or not binary.exists():
        raise SystemExit(f"the benchmark program failed to build:\n{proc.stderr[-4000:]}")
    return binary


def text_range(binary: Path) -> tuple[int, int]:
    out = subprocess.run(["llvm-readelf", "-SW", str(binary)], capture_output=True, text=True, check=True).stdout
    m = re.search(r"\]\s+\.text\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", out)
    return int(m.group(1), 16), int(m.group(1), 16) + int(m.group(2), 16)


def addresses(binary: Path, n: int, order: str, seed: int = 7) -> list[int]:
    lo, hi = text_range(binary)
    rnd = random.Random(seed + n)
    addrs = [rnd.randrange(lo, hi) for _ in range(n)]
    return sorted(addrs) if order == "sorted" else addrs


# --before DIR: another checkout of symtool run as "symtool before", interleaved with the rest
# (a change measured against its base in the same rounds).
BEFORE: Path | None = None


def commands(binary: Path) -> dict[str, list[str]]:
    tools = {
        "symtool": [sys.executable, "-m", "symtool", "symbolize", "--obj", str(binary)],
        # The same command answering from a symbol cache a first run filled (reported on its own row).
        "symtool warm cache": [sys.executable, "-m", "symtool", "symbolize", "--obj", str(binary)],
        "llvm-symbolizer": ["llvm-symbolizer", "--inlines", f"--obj={binary}"],
        "addr2line": ["addr2line", "-f", "-i", "-C", "-e", str(binary)],
        "eu-addr2line": ["eu-addr2line", "-f", "-i", "-C", "-e", str(binary)],
        # The floor any Python tool pays: the interpreter's own start (stdin unread).
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    if BEFORE is not None:
        tools["symtool before"] = tools["symtool"]
    return {name: argv for name, argv in tools.items() if shutil.which(argv[0])}


def tool_env(tool: str, cache: Path) -> dict[str, str]:
    """Cold symtool runs without the symbol cache; the warm ones with ``cache`` as theirs.  As
    installed, with compiled bytecode (pip compiles it; the first run writes it, in the cache)."""
    root = BEFORE if tool == "symtool before" and BEFORE is not None else ROOT
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONPYCACHEPREFIX=str(CACHE / "pycache" / root.name))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if tool == "symtool warm cache":
        env.update(SYMTOOL_SYMBOL_CACHE="on", SYMTOOL_CACHE=str(cache))
    else:
        env["SYMTOOL_SYMBOL_CACHE"] = "off"
    return env


def run_once(argv: list[str], stdin: str, env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one run, addresses on stdin."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    env = env or dict(os.environ, PYTHONPATH=str(ROOT))
    # From a directory without a symtool/ of its own: `python -m` would take that one over PYTHONPATH.
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=3600,
                          cwd=tempfile.gettempdir())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def load_average() -> str:
    try:
        return " / ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


# A tool whose one run takes longer than this is not run again (nor at larger sizes): its row
# says so.  eu-addr2line -i takes minutes at 1,000 addresses of this program.
CAP_SECONDS = 30.0


def measure(binary: Path, sizes: list[int], runs: int, progress=None, only: list[str] | None = None) -> list[dict]:
    every = commands(binary)
    tools = {name: argv for name, argv in every.items() if not only or name in only}
    rows = []
    too_slow: dict[str, str] = {}
    for n in sizes:
        for order in ("random", "sorted"):
            stdin = "\n".join(hex(a) for a in addresses(binary, n, order)) + "\n"
            samples: dict[str, list[tuple[float, float]]] = {t: [] for t in tools}
            with tempfile.TemporaryDirectory(prefix="symtool-bench-cache-") as cache:
                # The run that fills the cache: cold, plus writing the cache file (one sample).
                fill = run_once(every["symtool warm cache"], stdin, tool_env("symtool warm cache", Path(cache)))
                for _ in range(runs):
                    for tool, argv in tools.items():  # interleaved: each round runs every tool once
                        if tool in too_slow:
                            continue
                        wall, cpu = run_once(argv, stdin, tool_env(tool, Path(cache)))
                        samples[tool].append((wall, cpu))
                        if wall > CAP_SECONDS:
                            too_slow[tool] = f"{n} {order}: {wall:.0f} s"
            samples["symtool filling the cache (1 run)"] = [fill]
            peer = samples.get("llvm-symbolizer") or []
            peer_cpu = statistics.median(c for _, c in peer) if peer else None
            for tool, got in samples.items():
                if not got:
                    row = {"case": f"{n} {order}", "tool": tool, "wall_s": None, "cpu_s": None, "cpu_vs_llvm": None,
                           "note": f"not run: over {CAP_SECONDS:.0f} s at {too_slow[tool]}"}
                else:
                    cpu = statistics.median(c for _, c in got)
                    row = {"case": f"{n} {order}", "tool": tool, "runs": len(got),
                           "wall_s": round(statistics.median(w for w, _ in got), 3), "cpu_s": round(cpu, 3),
                           "cpu_vs_llvm": round(cpu / peer_cpu, 2) if peer_cpu else None, "note": ""}
                rows.append(row)
                if progress is not None:
                    progress(row)
    return rows


def run(ctx) -> list[dict]:
    binary = build_program()
    ctx.notes.append(f"program: {binary.name}, {binary.stat().st_size >> 20} MiB; load average before: "
                     f"{load_average()} (2 cores shared with other jobs)")
    sizes = [1, 100] if ctx.quick else [1, 100, 1000, 10_000]
    rows = measure(binary, sizes, 3 if ctx.quick else 5)
    ctx.notes.append(f"load average after: {load_average()}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sizes", default="1,100,1000,10000")
    ap.add_argument("--build-only", action="store_true", help="build (or find) the program and print its path")
    ap.add_argument("--before", type=Path, help="another symtool checkout, run as 'symtool before' in the same "
                                                "rounds (e.g. a git worktree of the base of a change)")
    ap.add_argument("--tools", help="comma-separated tools to run (default: all), e.g. "
                                    "'symtool warm cache,llvm-symbolizer'")
    args = ap.parse_args()
    global BEFORE
    BEFORE = args.before.resolve() if args.before else None
    binary = build_program()
    if args.build_only:
        print(binary)
        return
    print(f"{binary} ({binary.stat().st_size >> 20} MiB), load average {load_average()}", flush=True)

    def show(row: dict) -> None:
        print(f"{row['case']:>14} {row['tool']:>16} wall {row['wall_s']} s  cpu {row['cpu_s']} s"
              f"  cpu/llvm {row['cpu_vs_llvm']} {row['note']}", flush=True)

    measure(binary, [int(s) for s in args.sizes.split(",")], args.runs, show,
            args.tools.split(",") if args.tools else None)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
