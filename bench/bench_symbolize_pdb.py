"""Symbolizing addresses with a large PDB: symtool against `llvm-symbolizer --obj=the.exe`.

The PDBs are real: a generated C program (``--target=x86_64-pc-windows-msvc -gcodeview``,
``lld-link /debug``) of many translation units, each with 1,000 functions that call
``always_inline`` helpers two levels deep (so every function carries a dozen or more
S_INLINESITE records and their line annotations).  Built at -O0 (always_inline still
inlines; -O2 compiles 7x slower for the same debug-info shape).  ~13 MiB (10 C files) and
~100 MiB (77 C files); cached under ``~/.cache/symtool-bench`` keyed by a hash of the
generator, built under ``flock /tmp/heavy.lock``.

For 1, 100, 1,000 and 10,000 addresses (uniform random RVAs in .text, in random order and
sorted), each tool runs as a new process on the same address list, the two interleaved;
CPU time (user + sys of the child) and wall time are medians.  symtool runs as
``symtool symbolize --obj`` when that command exists, else as a small driver over
``symtool.formats.pdb_symbols.PdbSymbolizer`` printing llvm-symbolizer's format.  Agreement:
for every address of the 1,000-address set, the function names, files and lines of the whole
inline chain are compared with llvm-symbolizer's.

Usage: ``python bench/run.py symbolize_pdb`` (or this file with ``--worker PDB`` as the driver).
"""

from __future__ import annotations

import hashlib
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TITLE = "symbolize with a PDB: symtool against llvm-symbolizer"
FUNCS_PER_TU = 1000
SIZES = {"13 MiB": 10, "100 MiB": 77}  # label -> C files (each ~1.3 MiB of PDB)
COUNTS = (1, 100, 1000, 10000)
ROOT = Path(__file__).resolve().parent.parent


def tu_source(t: int, nfunc: int) -> str:
    """One C file: 8 leaf and 8 middle always_inline helpers, then ``nfunc`` functions using them."""
    out = [f"/* generated C file {t} */", "#define AI static inline __attribute__((always_inline))"]
    for h in range(8):
        out.append(f"AI int t{t}_leaf{h}(int a, int b) {{\n  int r = a * {h + 3};\n  r ^= b >> {h + 1};\n"
                   f"  r += a - b;\n  return r;\n}}")
    for h in range(8):
        out.append(f"AI int t{t}_mid{h}(int a) {{\n  int s = t{t}_leaf{h}(a, a + {h});\n"
                   f"  s += t{t}_leaf{(h + 1) % 8}(s, a);\n  return s * 7;\n}}")
    for f in range(nfunc):
        h = f % 8
        out.append(f"int t{t}_func{f}(int x, int y) {{\n  int acc = x;\n  for (int i = 0; i < y; i++) {{\n"
                   f"    acc += t{t}_mid{h}(acc + i);\n    acc ^= t{t}_leaf{(h + 3) % 8}(acc, i);\n  }}\n"
                   f"  if (acc > {f}) acc -= y;\n  return acc + t{t}_mid{(h + 5) % 8}(x);\n}}")
    return "\n".join(out) + "\n"


MAIN_SOURCE = "int mainCRTStartup(void) { return 0; }\n"


def _generator_key(n_tus: int) -> str:
    h = hashlib.sha256()
    h.update(tu_source(0, 3).encode() + MAIN_SOURCE.encode() + f"{n_tus}x{FUNCS_PER_TU}".encode())
    return h.hexdigest()[:16]


def _say(msg: str) -> None:
    sys.stderr.write(f"[bench symbolize_pdb] {msg}\n")
    sys.stderr.flush()


def build(n_tus: int, cache: Path | None = None) -> tuple[Path, Path]:
    """(exe, pdb) of the generated program with ``n_tus`` C files, built once and cached."""
    cache = cache or Path.home() / ".cache" / "symtool-bench"
    dest = cache / f"pdb-{n_tus}-{_generator_key(n_tus)}"
    exe, pdb = dest / "big.exe", dest / "big.pdb"
    if (dest / "done").is_file():
        return exe, pdb
    clang, lld = shutil.which("clang"), shutil.which("lld-link")
    if not clang or not lld:
        raise RuntimeError("building the PDB needs clang and lld-link on PATH")
    dest.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="objs-", dir=dest))
    t0 = time.perf_counter()
    objs = []
    for t in range(n_tus):
        src, obj = work / f"t{t}.c", work / f"t{t}.obj"
        src.write_text(tu_source(t, FUNCS_PER_TU))
        subprocess.run([clang, "--target=x86_64-pc-windows-msvc", "-O0", "-g", "-gcodeview", "-c", str(src),
                        "-o", str(obj)], check=True, capture_output=True)
        objs.append(obj)
        if t % 10 == 9:
            _say(f"compiled {t + 1}/{n_tus} C files ({time.perf_counter() - t0:.0f} s)")
    (work / "main.c").write_text(MAIN_SOURCE)
    subprocess.run([clang, "--target=x86_64-pc-windows-msvc", "-g", "-gcodeview", "-c", str(work / "main.c"),
                    "-o", str(work / "main.obj")], check=True, capture_output=True)
    # Linked in place: the exe's CodeView record names this PDB path, which llvm-symbolizer follows.
    subprocess.run([lld, "/nologo", "/debug", "/entry:mainCRTStartup", "/subsystem:console", "/nodefaultlib",
                    f"/out:{exe}", f"/pdb:{pdb}", str(work / "main.obj"), *map(str, objs)],
                   check=True, capture_output=True)
    shutil.rmtree(work, ignore_errors=True)
    (dest / "done").write_text("ok\n")
    _say(f"built {pdb} ({pdb.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.0f} s")
    return exe, pdb


if __name__ == "__main__" and sys.argv[1:2] == ["--build"]:
    for n in map(int, sys.argv[2:]):
        print(*build(n))
