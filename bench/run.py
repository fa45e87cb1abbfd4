#!/usr/bin/env python3
"""Benchmark runner: ``python bench/run.py [NAME...]``.

Each ``bench/bench_<name>.py`` defines ``run(ctx) -> list[dict]``; every dict is
one row with at least ``case`` and ``tool`` and any measured columns (seconds,
bytes read, peak RSS...).  Results are written to ``docs/benchmarks.md`` under a
section per benchmark, stamped with the machine and the date, replacing that
benchmark's previous section and keeping the others.

Benchmarks are run by people, not by the test suite: timed assertions do not
belong in unit tests.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import os
import platform
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DOC = ROOT / "docs" / "benchmarks.md"


@dataclass
class Context:
    workdir: Path  # scratch space (large files go here; honours $SYMTOOL_BENCH_DIR)
    quick: bool  # smaller sizes for a smoke run
    notes: list[str] = field(default_factory=list)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f", {int(line.split()[1]) // (1024 * 1024)} GiB RAM"
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}"


def timed(fn, *args, repeat: int = 1, **kwargs) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls, and the last result."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return best, result


def render(name: str, rows: list[dict], notes: list[str]) -> str:
    cols: list[str] = []
    for row in rows:
        for key in row:
            if key not in cols:
                cols.append(key)
    out = [f"## {name}", "", f"Machine: {machine()}. Date: {_dt.date.today().isoformat()}.", ""]
    if rows:
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "---|" * len(cols))
        for row in rows:
            cells = []
            for c in cols:
                v = row.get(c, "")
                cells.append(f"{v:.3f}" if isinstance(v, float) else str(v))
            out.append("| " + " | ".join(cells) + " |")
    for note in notes:
        out.append("")
        out.append(note)
    return "\n".join(out) + "\n"


def write_section(name: str, text: str) -> None:
    header = "# Benchmarks\n\nWritten by `python bench/run.py`; each section is replaced when its benchmark runs again.\n\n"
    doc = DOC.read_text() if DOC.exists() else header
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(doc):
        doc = pattern.sub(lambda _m: text + "\n", doc)
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(doc)


def discover() -> dict[str, Path]:
    return {p.stem[len("bench_"):]: p for p in sorted(BENCH_DIR.glob("bench_*.py"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not for the docs")
    parser.add_argument("--no-write", action="store_true", help="print the tables, do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    found = discover()
    names = args.names or list(found)
    for name in names:
        if name not in found:
            print(f"unknown benchmark {name!r}; have: {', '.join(found)}", file=sys.stderr)
            return 2
    sys.path.insert(0, str(ROOT))
    base = Path(os.environ.get("SYMTOOL_BENCH_DIR") or tempfile.gettempdir())
    for name in names:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", found[name])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        with tempfile.TemporaryDirectory(prefix=f"symtool-bench-{name}-", dir=base) as tmp:
            ctx = Context(Path(tmp), args.quick)
            rows = module.run(ctx)
        title = getattr(module, "TITLE", name)
        text = render(title, rows, ctx.notes)
        print(text)
        if not args.no_write and not args.quick:
            write_section(title, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
