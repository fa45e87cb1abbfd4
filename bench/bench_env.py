"""Cold start of `symtool env`, beside `python -c pass` and `cargo metadata --no-deps`, in one run.

`symtool env` runs in every new shell, so what counts is the wall time of a
fresh process.  Each case is a new process, run N times; min and median are
reported.  "cache warm" reuses what the previous run stored about rustc and the
PDBs; "cache cold" deletes that file before every run (so rustc -vV and
rustc --print sysroot run, and the PDBs are scanned).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TITLE = "symtool env: cold start"
ROOT = Path(__file__).resolve().parent.parent


def once(argv: list[str], env: dict, cwd: Path, before=None) -> float:
    if before:
        before()
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{argv}: exit {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return took


def row(case: str, tool: str, times: list[float]) -> dict:
    return {"case": case, "tool": tool, "runs": len(times),
            "min_ms": round(min(times) * 1000, 1), "median_ms": round(statistics.median(times) * 1000, 1)}


def console_script() -> str | None:
    """The `symtool` script installed next to this interpreter (not a pyenv shim)."""
    here = Path(sys.executable).parent / ("symtool.exe" if os.name == "nt" else "symtool")
    return str(here) if here.exists() else shutil.which("symtool")


def run(ctx) -> list[dict]:
    runs = 5 if ctx.quick else 20
    ws = ctx.workdir / "ws"
    shutil.copytree(ROOT / "samples", ws, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    env = dict(os.environ)
    for key in ("SYMTOOL_STORE", "SYMTOOL_CACHE", "CARGO_TARGET_DIR", "RUSTFLAGS", "CARGO_BUILD_TARGET"):
        env.pop(key, None)
    env.update(RUSTC_BOOTSTRAP="1", XDG_CACHE_HOME=str(ctx.workdir / "xdg"))
    cargo = shutil.which("cargo")
    if cargo:
        subprocess.run([cargo, "build", "--release", "--target", "x86_64-pc-windows-msvc", "-q"], cwd=ws, env=env,
                       check=True, capture_output=True)
    cache_file = ctx.workdir / "xdg" / "symtool" / "env-cache.json"

    def drop_cache() -> None:
        cache_file.unlink(missing_ok=True)

    py = sys.executable
    # (case, tool, argv, before): run round-robin so load from other processes hits every case alike.
    cases: list[tuple] = [("baseline", "python -c pass", [py, "-c", "pass"], None),
                          ("baseline", "python -c 'import typer'", [py, "-c", "import typer"], None)]
    script = console_script()
    if script:
        argv = [script, "env", "-q"]
        with open(script, "rb") as f:
            head = f.read(200)
        if head.startswith(b"#!") and b"python" in head.split(b"\n", 1)[0]:
            argv = [py, script, "env", "-q"]  # skip launchers (pyenv shims) in front of the script
        cases.append(("cache warm", "symtool env", argv, None))
        cases.append(("cache cold", "symtool env", argv, drop_cache))
        shim = shutil.which("symtool", path=env.get("PATH"))
        if shim and Path(shim).resolve() != Path(script).resolve():
            cases.append(("cache warm", f"symtool env via {shim}", [shim, "env", "-q"], None))
        if b"symtool.main" not in open(script, "rb").read():
            ctx.notes.append(f"{script} was installed before the fast entry point: reinstall (pip install -e .).")
    cases.append(("cache warm", "python -m symtool env", [py, "-m", "symtool", "env", "-q"], None))
    if cargo:
        cases.append(("baseline", "cargo metadata --no-deps",
                      [cargo, "metadata", "--no-deps", "--format-version", "1", "-q"], None))
    times: list[list[float]] = [[] for _ in cases]
    for argv in {tuple(c[2]) for c in cases}:
        once(list(argv), env, ws)  # warm-up: page cache, .pyc files, the env cache
    for _ in range(runs):
        for i, (_case, _tool, argv, before) in enumerate(cases):
            times[i].append(once(argv, env, ws, before))
            if before is not None:
                once(argv, env, ws)  # leave the cache warm for the next warm case
    rows = [row(c[0], c[1], t) for c, t in zip(cases, times)]
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        ctx.notes.append(f"Load average (1 min) at the end of the run: {load:.2f} on {os.cpu_count()} cores; "
                         "compare rows with each other, not across runs.")
    ctx.notes.append(
        f"Each row: {runs} fresh processes in the built sample workspace; goal for `symtool env`: <= 150 ms. "
        "`python -c pass` is the floor any Python tool pays; `cargo metadata --no-deps` is what symtool avoids "
        "running per shell (members come from the root manifest's globs; rustc's answers are cached).")
    return rows
