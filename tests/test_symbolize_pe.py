"""`symtool symbolize --obj X.exe` against llvm-symbolizer 19 on real PE + PDB programs, line by line.

Programs built here: the samples' Rust PE builds (cargo, rust-lld, profiles release and dist: no
std, thin LTO for dist), Rust std programs (tests/toolchains/windows-msvc-std: rustc 1.63's
std built for x86_64-pc-windows-msvc, lld-link) and a C program with inlining built by clang in
cl mode (``/O2 /Z7``, lld-link).  Addresses: every .text byte of the samples and the C program,
every instruction start (llvm-objdump) of two std programs.  Each address's block (function,
file:line:column per inline frame, innermost first) must be llvm-symbolizer's, byte for byte,
except where docs/symbolize.md explains why not, each checked against llvm-pdbutil's dump
rather than taken on trust:

* **padding**: bytes no procedure covers and no public symbol precedes in the section
  (alignment between functions): llvm-symbolizer prints an empty function line, symtool ``??``;
* **folded code**: lld-link's identical code folding leaves several procedures (each with its
  own inline sites and line fragments) at one address.  llvm-symbolizer reads the first in the
  module's stream, symtool the last (as winedbg does: ``stack``'s frames and bucket keys stay
  what they were), and LLVM's line comes from whichever fragment its unstable sort puts first:
  inline frames and lines may differ, and the outer function where no public symbol names
  it, but only where llvm-pdbutil lists two or more procedures at the start of the one
  holding the address, and each outer name is one of theirs;
* **two line rows at one address**: rustc writes a function's first line row twice at its
  start (the ``fn`` line, then the first statement's); llvm-symbolizer takes the first,
  symtool the last (the row that covers the bytes, as DWARF's line tables are read).  Only the
  outer frame's line differs, and llvm-pdbutil lists two rows at the start of the row
  holding the address;
* **bytes before a fragment's first row**: a line fragment whose first row starts after the
  fragment does (code an inlined call left without a line of the caller's own):
  llvm-symbolizer gives those bytes the first row's line, symtool none (``??:0:0``), as
  nothing says which line they belong to.  Only the outer frame's line differs.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import need_tool

C_PROGRAM = r"""
struct node { int v; struct node *l, *r; };
static struct node pool[64];
static int used;
static inline int max(int a, int b) { return a > b ? a : b; }
static int height(struct node *n) { return n ? 1 + max(height(n->l), height(n->r)) : 0; }
static inline struct node *alloc(int v) { struct node *n = &pool[used++ & 63]; n->v = v; n->l = n->r = 0; return n; }
static struct node *insert(struct node *n, int v) {
    if (!n) return alloc(v);
    if (v < n->v) n->l = insert(n->l, v); else n->r = insert(n->r, v);
    return n;
}
static inline unsigned hash(const char *s) { unsigned h = 5381; while (*s) h = h * 33 + (unsigned char)*s++; return h; }
static inline int sq(int x) { return x * x; }
__forceinline static int twice(int x) { return sq(x) * 2 + (int)hash("abc"); }
__declspec(noinline) int compute(int argc, const char **argv) {
    struct node *root = 0;
    for (int i = 0; i < argc; i++) root = insert(root, (int)hash(argv[i]) + twice(i));
    return height(root) + max(argc, 3);
}
int mainCRTStartup(void) { const char *a[] = {"x", "yy", "zzz"}; return compute(3, a); }
"""

ORACLE = "llvm-symbolizer-19"
PADDING = ["", "??:0:0"]


def symtool(*args, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "symtool", *map(str, args)], input=stdin, capture_output=True,
                          text=True, timeout=300)


def blocks(text: str) -> list[list[str]]:
    return [b.split("\n") for b in text.rstrip("\n").split("\n\n")] if text.strip() else []


def text_section(exe: Path) -> tuple[int, int]:
    """[start, end) of .text as virtual addresses (ImageBase + RVA), from llvm-objdump."""
    out = subprocess.run([need_tool("llvm-objdump"), "-h", str(exe)], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"^\s*\d+\s+\.text\s+([0-9a-f]+)\s+([0-9a-f]+)", out, re.M)
    assert m, out
    return int(m.group(2), 16), int(m.group(2), 16) + int(m.group(1), 16)


def instruction_starts(exe: Path) -> list[int]:
    out = subprocess.run([need_tool("llvm-objdump"), "-d", "--no-show-raw-insn", str(exe)], capture_output=True,
                         text=True, check=True).stdout
    return [int(a, 16) for a in re.findall(r"^([0-9a-f]+):", out, re.M)]


class PdbProcedures:
    """The procedures and public symbols of section 1 (.text) as llvm-pdbutil dumps them."""

    def __init__(self, pdb: Path):
        dump = subprocess.run([need_tool("llvm-pdbutil-19"), "dump", "--symbols", "--publics", "--l", str(pdb)],
                              capture_output=True, text=True, check=True).stdout
        self.procs = [(int(off), int(off) + int(size), name) for name, off, size in re.findall(
            r"S_[GL]PROC32 \[size = \d+\] `([^\n]*)`\n\s+parent = \d+, end = \d+, addr = 0001:(\d+), "
            r"code size = (\d+)", dump)]
        self.publics = sorted(int(off) for off in re.findall(r"S_PUB32 [^\n]*\n\s+flags = [^\n]*addr = 0001:(\d+)",
                                                              dump))
        self.starts = Counter(start for start, _end, _name in self.procs)
        # Line fragments of section 1: (start, end, the row starts with how many rows each).
        self.fragments = []
        for start, end, rows in re.findall(r"0001:([0-9A-F]{8})-([0-9A-F]{8}), line/addr entries = \d+\n"
                                           r"((?:[ \t]+\d+ [0-9A-F]{8}[^\n]*\n)+)", dump):
            self.fragments.append((int(start, 16), int(end, 16),
                                   Counter(int(a, 16) for a in re.findall(r"\d+ ([0-9A-F]{8})", rows))))
        assert self.procs and self.publics and self.fragments

    def covering(self, offset: int) -> list[tuple[int, int, str]]:
        return [(s, e, name) for s, e, name in self.procs if s <= offset < e]

    def is_padding(self, offset: int) -> bool:
        return not self.covering(offset) and not any(p <= offset for p in self.publics)

    def folded_names(self, offset: int) -> set[str]:
        """The names of the procedures folded into the code holding ``offset`` (none: not folded)."""
        covering = self.covering(offset)
        return {name for _s, _e, name in covering} if any(self.starts[s] > 1 for s, _e, _n in covering) else set()

    def before_first_row(self, offset: int) -> bool:
        return any(start <= offset < min(rows) for start, _end, rows in self.fragments)

    def has_two_rows(self, offset: int) -> bool:
        """Whether the row holding ``offset`` starts where another row of its fragment does."""
        for start, end, rows in self.fragments:
            before = [a for a in rows if a <= offset]
            if start <= offset < end and before and rows[max(before)] > 1:
                return True
        return False


def compare(exe: Path, pdb: Path, addrs: list[int]) -> Counter:
    """Both tools on ``addrs`` (stdin, one process each); every difference must be one the module
    docstring explains.  The counts of exact, padding and folded-line blocks."""
    stdin = "".join(f"{a:#x}\n" for a in addrs)
    oracle = subprocess.run([need_tool(ORACLE), f"--obj={exe}"], input=stdin, capture_output=True, text=True,
                            check=True, timeout=300).stdout
    proc = symtool("symbolize", "--obj", exe, "--offline", stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    exp, got = blocks(oracle), blocks(proc.stdout)
    assert len(exp) == len(got) == len(addrs)
    text_start = text_section(exe)[0]
    procs = PdbProcedures(pdb)
    counts: Counter = Counter()
    unexplained = []
    for address, e, g in zip(addrs, exp, got):
        offset = address - text_start
        if e == g:
            counts["exact"] += 1
        elif e == PADDING and g == ["??", "??:0:0"] and procs.is_padding(offset):
            counts["padding"] += 1
        elif (folded := procs.folded_names(offset)) and (e[-2] == g[-2] or {e[-2], g[-2]} <= folded):
            counts["folded"] += 1  # another of the folded procedures: its inline sites and lines
        elif len(e) == len(g) and e[:-1] == g[:-1] and procs.has_two_rows(offset):
            counts["two rows"] += 1  # the outer frame's line only: the first row or the last
        elif len(e) == len(g) and e[:-1] == g[:-1] and g[-1] == "??:0:0" and procs.before_first_row(offset):
            counts["before first row"] += 1
        else:
            unexplained.append((hex(address), e, g))
    assert not unexplained, f"{len(unexplained)} of {len(addrs)} differ: {unexplained[:3]}"
    counts["inlined"] = sum(len(g) // 2 - 1 for g in got)
    return counts


@pytest.fixture(scope="module")
def std_programs() -> Path:
    from std_corpus import CorpusUnavailable, build_corpus

    try:
        return build_corpus()
    except CorpusUnavailable as err:
        pytest.skip(str(err))


@pytest.mark.parametrize("name", ["unwrap_none", "trait_object"])
def test_rust_std_program_every_instruction_matches_llvm_symbolizer(std_programs, name):
    """Every instruction start: the outer frame named by the public symbol at the procedure's
    start as LLVM demangles it (legacy names with their hash, `` (.llvm.N)``), inline frames and
    lines from the PDB, >= 99 % the same bytes and every other address explained."""
    exe = std_programs / f"{name}.exe"
    addrs = instruction_starts(exe)
    assert len(addrs) > 20000
    counts = compare(exe, std_programs / f"{name}.pdb", addrs)
    assert counts["exact"] >= 0.99 * len(addrs), counts
    assert counts["inlined"] > 10000, counts


@pytest.mark.parametrize("profile", ["release", "dist"])
def test_samples_pe_builds_every_byte_matches_llvm_symbolizer(sample_build, sample_layout_bins, profile):
    """The samples' Rust PE builds (no std: the PDB's procedures and lines only; dist: thin LTO)."""
    for name in sample_layout_bins:
        exe = sample_build.exe(name, profile)
        lo, hi = text_section(exe)
        counts = compare(exe, sample_build.pdb(name, profile), list(range(lo, hi)))
        assert counts["exact"] > 0.75 * (hi - lo) and counts["folded"] == 0, (name, counts)


@pytest.fixture(scope="module")
def sample_layout_bins() -> tuple[str, ...]:
    from conftest import sample_layout

    return sample_layout().bins


@pytest.fixture(scope="module")
def clang_cl_program(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("clang-cl")
    (d / "prog.c").write_text(C_PROGRAM)
    subprocess.run([need_tool("clang"), "--driver-mode=cl", "/O2", "/Z7", "/GS-", "/c", "prog.c", "/Foprog.obj"],
                   cwd=d, check=True, capture_output=True)
    subprocess.run([need_tool("lld-link"), "/debug", "/nodefaultlib", "/entry:mainCRTStartup", "/subsystem:console",
                    "prog.obj", "/out:prog.exe", "/pdb:prog.pdb"], cwd=d, check=True, capture_output=True)
    return d / "prog.exe", d / "prog.pdb"


def test_clang_cl_program_every_byte_matches_llvm_symbolizer(clang_cl_program):
    """C from clang in cl mode with inlining (static inline, __forceinline, recursion): every
    .text byte, inline chains included."""
    exe, pdb = clang_cl_program
    lo, hi = text_section(exe)
    counts = compare(exe, pdb, list(range(lo, hi)))
    assert counts["exact"] + counts["padding"] == hi - lo and counts["inlined"] > 50, counts
    assert counts["exact"] > 0.9 * (hi - lo)


def test_random_std_addresses_in_random_order(std_programs):
    """Random .text addresses (not only instruction starts) in random order: the same rules."""
    exe = std_programs / "refcell_borrow.exe"
    lo, hi = text_section(exe)
    rnd = random.Random(25)
    addrs = [rnd.randrange(lo, hi) for _ in range(3000)]
    counts = compare(exe, std_programs / "refcell_borrow.pdb", addrs)
    assert counts["exact"] >= 0.99 * len(addrs), counts
