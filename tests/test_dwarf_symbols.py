"""DwarfSymbolizer (symtool/formats/dwarf_symbols.py) against llvm-symbolizer --inlines on real builds.

Every answer is llvm-symbolizer's (LLVM's DWARF reader, nobody here wrote it), read in one
process per binary from its JSON output: for every inline level the function, file and line.
Binaries: the samples (each byte of .text) and a std program (its every function start and
start+1, line-table row addresses from llvm-dwarfdump, and random .text addresses), built with
split DWARF 4 (GNU skeletons, .debug_cu_index v2) and 5 (DW_UT_skeleton, v5), without split
DWARF, with line tables only, and with zlib-compressed debug sections.

Where the two may differ, deliberately (see the module docstring of dwarf_symbols):

* Rust legacy names (``_ZN...17h<hash>E``): LLVM 14 demangles them as Itanium C++, keeping
  ``$LT$``-style escapes and the ``::h<hash>`` suffix; symtool prints them as the PDB
  symbolizer does (rustc-demangle's alternate form).  The oracle's names are normalised by
  the Rust legacy-mangling rules before comparing.
* ``.llvm.<digits>`` suffixes: LLVM prints `` (.llvm.N)``, the reader's display names (what
  ``stack`` and ``dumps`` show) drop it.
* names longer than symtool.demangle.MAX_DEMANGLED are cut with an ellipsis in the display
  names.  ``symtool symbolize`` prints LLVM's form of all three from the frames' linkage names
  (tests/test_symbolize_cli.py compares that text byte for byte).
* DWARF 4 split units whose inlined calls have DW_AT_ranges: llvm-symbolizer 14 (Debian's
  default; LLVM 19's agrees with symtool everywhere and is the second oracle) cannot decode
  those ranges from a .dwp ("invalid range list offset") and leaves those calls out of its
  chain; at those addresses the chain is checked against gdb's blocks instead (the function
  names of the blocks holding the address).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import FIXTURES_DIR, cargo_env, need_tool
from native_builds import LINUX, linux_builds  # noqa: F401  (session fixture)
from symtool.errors import FormatError
from symtool.formats.dwarf_symbols import DwarfSymbolizer
from symtool.formats.elf import read_elf

FX = FIXTURES_DIR / "elf-macho"

# -- the oracle ------------------------------------------------------------------------------

_ESCAPES = {"LT": "<", "GT": ">", "LP": "(", "RP": ")", "RF": "&", "BP": "*", "SP": "@", "C": ","}


def rust_legacy(name: str) -> str:
    """An Itanium-demangled Rust legacy name as rustc-demangle's alternate form prints it."""
    name = re.sub(r" \(\.llvm\.\d+\)$", "", name)
    if not re.search(r"::h[0-9a-f]{16}$", name):
        return name
    segments = []
    for seg in name[:-len("::h0123456789abcdef")].split("::"):
        if seg.startswith("_$"):
            seg = seg[1:]
        seg = re.sub(r"\$(LT|GT|LP|RP|RF|BP|SP|C|u[0-9a-f]+)\$",
                     lambda m: _ESCAPES.get(m.group(1)) or chr(int(m.group(1)[1:], 16)), seg)
        segments.append(seg.replace("..", "::"))
    return "::".join(segments)


def llvm_symbolize(binary: Path, dwp: Path | None, addrs: list[int], tool: str = "llvm-symbolizer") \
        -> list[list[dict]]:
    args = [need_tool(tool), f"--obj={binary}", "--inlines", "--output-style=JSON"]
    if dwp is not None:
        args.append(f"--dwp={dwp}")
    out = subprocess.run(args, input="\n".join(hex(a) for a in addrs), capture_output=True, text=True,
                         check=True, timeout=600).stdout
    results = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(results) == len(addrs)
    return [r["Symbol"] for r in results]


def expected_frames(symbols: list[dict]) -> list[tuple[str, str | None, int]]:
    frames = [(rust_legacy(f["FunctionName"]) or "??", f["FileName"] or None, f["Line"]) for f in symbols]
    return [] if frames == [("??", None, 0)] else frames


def got_frames(result) -> list[tuple[str, str | None, int]]:
    return [(f.function, f.file, f.line or 0) for f in result.frames] if result is not None else []


def same(expected, got) -> bool:
    if len(expected) != len(got):
        return False
    for (en, ef, el), (gn, gf, gl) in zip(expected, got):
        if (ef, el) != (gf, gl):
            return False
        if en != gn and not (gn.endswith("…") and en.startswith(gn[:-1])):
            return False
    return True


def gdb_chains(binary: Path, addrs: list[int], tmp_path: Path) -> dict[int, list[str]]:
    """Function names of the blocks holding each address, innermost first, as gdb reads them."""
    script = tmp_path / "chains.py"
    listing = tmp_path / "addrs.txt"
    listing.write_text("\n".join(hex(a) for a in addrs))
    script.write_text(
        "import gdb\n"
        f"for line in open({str(listing)!r}):\n"
        "    pc = int(line, 16)\n"
        "    b = gdb.block_for_pc(pc)\n"
        "    names = []\n"
        "    while b is not None:\n"
        "        if b.function is not None:\n"
        "            names.append(b.function.name)\n"
        "        b = b.superblock\n"
        "    print('CHAIN', hex(pc), '|'.join(names))\n")
    out = subprocess.run([need_tool("gdb"), "-batch", "-nx", "-ex", f"source {script}", str(binary)],
                         capture_output=True, text=True, timeout=600).stdout
    chains = {}
    for line in out.splitlines():
        if line.startswith("CHAIN "):
            _, pc, names = line.split(" ", 2)
            chains[int(pc, 16)] = names.split("|") if names else []
    return chains


def last_segment(name: str) -> str:
    """The function's own name, without generics: `<A as B>::f::<T>` and gdb's `x::{impl#3}::f<T>` -> f."""
    depth = 0
    out = []
    for ch in name:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out).rstrip(":").split("::")[-1]


def llvm14_lost_inlines(exp, got) -> bool:
    """llvm-symbolizer's chain is ours without some inner inlined calls (those with DW_AT_ranges
    in a DWARF 4 .dwp): the same outer frames, the same line-table row for the address."""
    if not 1 <= len(exp) < len(got):
        return False
    k = len(got) - len(exp)
    return exp[0][1:] == got[0][1:] and exp[0][0] == got[k][0] and same(exp[1:], got[k + 1:])


def compare(binary: Path, dwp: Path | None, addrs: list[int], tmp_path: Path, *, gdb_fallback: bool = False,
            tool: str = "llvm-symbolizer") -> dict[str, int]:
    """Symbolize ``addrs`` (ELF vaddrs) with symtool and llvm-symbolizer; the counts of agreement."""
    sym = DwarfSymbolizer(binary, dwp)
    try:
        oracle = llvm_symbolize(binary, dwp, addrs, tool)
        counts = {"addresses": len(addrs), "agree": 0, "frames": 0, "inlined": 0, "gdb": 0}
        disputed = {}
        mismatches = []
        for addr, symbols in zip(addrs, oracle):
            result = sym.symbolize(addr - sym.load_bias)
            exp, got = expected_frames(symbols), got_frames(result)
            if same(exp, got):
                counts["agree"] += 1
                counts["frames"] += len(got)
                counts["inlined"] += max(len(got) - 1, 0)
                if symbols and symbols[-1].get("StartAddress") and result is not None \
                        and int(symbols[-1]["StartAddress"], 16):
                    assert result.symbol_offset == addr - int(symbols[-1]["StartAddress"], 16), hex(addr)
            elif gdb_fallback and llvm14_lost_inlines(exp, got):
                disputed[addr] = got
            else:
                mismatches.append((hex(addr), exp, got))
        assert not mismatches, f"{len(mismatches)} of {len(addrs)} differ from llvm-symbolizer: {mismatches[:3]}"
        if disputed:
            chains = gdb_chains(binary, sorted(disputed), tmp_path)
            for addr, got in disputed.items():
                names = [last_segment(f[0]) for f in got]
                assert names == [last_segment(n) for n in chains.get(addr, [])], (hex(addr), got, chains.get(addr))
            counts["gdb"] = len(disputed)
        return counts
    finally:
        sym.close()


def text_range(binary: Path) -> tuple[int, int]:
    out = subprocess.run([need_tool("llvm-readelf"), "-SW", str(binary)], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"\]\s+\.text\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", out)
    return int(m.group(1), 16), int(m.group(1), 16) + int(m.group(2), 16)


def function_starts(binary: Path) -> list[int]:
    out = subprocess.run([need_tool("llvm-nm"), "--defined-only", str(binary)], capture_output=True, text=True,
                         check=True).stdout
    return [int(m.group(1), 16) for m in re.finditer(r"^([0-9a-f]+) [tTwW] ", out, re.M)]


def line_rows(binary: Path, dwp: Path | None) -> list[int]:
    out = subprocess.run([need_tool("llvm-dwarfdump"), "--debug-line", str(binary)], capture_output=True,
                         text=True, check=True).stdout
    return [int(m.group(1), 16) for m in re.finditer(r"^0x([0-9a-f]{16})\s+\d+\s+\d+", out, re.M)]


def spread(binary: Path, dwp: Path | None, n_random: int = 2000, n_rows: int = 2000) -> list[int]:
    lo, hi = text_range(binary)
    rnd = random.Random(13)
    addrs = {a for s in function_starts(binary) if lo <= s < hi for a in (s, s + 1)}
    rows = [r for r in line_rows(binary, dwp) if lo <= r < hi]
    addrs.update(rows[::max(1, len(rows) // n_rows)])
    addrs.update(rnd.randrange(lo, hi) for _ in range(n_random))
    return sorted(addrs)


def every_byte(binary: Path) -> list[int]:
    lo, hi = text_range(binary)
    return list(range(lo, hi))


# -- builds ------------------------------------------------------------------------------------

STD_PROGRAM = r"""
use std::collections::HashMap;
#[derive(Debug)]
struct Foo<T> { v: Vec<T> }
impl<T: Clone + std::fmt::Debug> Foo<T> {
    #[inline(always)]
    fn twice(&self) -> Vec<T> { let mut v = self.v.clone(); v.extend(self.v.iter().cloned()); v }
}
trait Speak { fn speak(&self) -> String; }
impl Speak for Foo<u32> { fn speak(&self) -> String { format!("{:?}", self.twice()) } }
fn main() {
    let mut m = HashMap::new();
    for (i, a) in std::env::args().enumerate() { m.insert(a, i); }
    let f = Foo { v: vec![1u32, 2, 3] };
    let c = |x: u32| x * 2;
    println!("{} {:?} {}", f.speak(), m, c(3));
}
"""

STD_MANIFEST = """
[package]
name = "stdprog"
version = "0.1.0"
edition = "2021"

[profile.release]
debug = 2
split-debuginfo = "packed"

[profile.dev]
split-debuginfo = "packed"

[profile.nosplit]
inherits = "release"
split-debuginfo = "off"

[profile.lines]
inherits = "release"
debug = "line-tables-only"
"""


@pytest.fixture(scope="session")
def std_builds(tmp_path_factory) -> dict[str, tuple[Path, Path | None]]:
    """A std program: name -> (binary, .dwp or None)."""
    need_tool("cargo")
    ws = tmp_path_factory.mktemp("stdprog")
    (ws / "src").mkdir()
    (ws / "Cargo.toml").write_text(STD_MANIFEST)
    (ws / "src" / "main.rs").write_text(STD_PROGRAM)
    out = {}
    for name, profile, flags in (("split4", "release", []), ("split5", "release", ["-C", "dwarf-version=5"]),
                                 ("nosplit4", "nosplit", []), ("nosplit5", "nosplit", ["-C", "dwarf-version=5"]),
                                 ("lines", "lines", []), ("dev4", "dev", [])):
        target = ws / f"t-{name}"
        args = ["cargo", "build", "--profile", profile, "--target", LINUX]
        if flags:
            args += ["--config", "target.{}.rustflags=[{}]".format(LINUX, ", ".join(f'"{f}"' for f in flags))]
        proc = subprocess.run(args, cwd=ws, env=cargo_env(CARGO_TARGET_DIR=str(target)), capture_output=True,
                              text=True, timeout=600)
        if proc.returncode != 0:
            pytest.fail(f"std program ({name}) failed to build:\n{proc.stderr[-3000:]}")
        binary = target / LINUX / ("debug" if profile == "dev" else profile) / "stdprog"
        dwp = binary.with_name("stdprog.dwp")
        out[name] = (binary, dwp if dwp.exists() else None)
    return out


@pytest.fixture(scope="session")
def sample_nosplit(tmp_path_factory) -> Path:
    """The samples' full-debug profile with split-debuginfo = "off": full DWARF in the binaries."""
    need_tool("cargo")
    from conftest import SAMPLES
    ws = tmp_path_factory.mktemp("nosplit") / "ws"
    shutil.copytree(SAMPLES, ws, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    proc = subprocess.run(["cargo", "build", "--profile", "full-debug", "--target", LINUX, "--config",
                           'profile.full-debug.split-debuginfo="off"'], cwd=ws,
                          env=cargo_env(CARGO_TARGET_DIR=str(ws / "t")), capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"sample build failed:\n{proc.stderr[-3000:]}")
    return ws / "t" / LINUX / "full-debug"


SAMPLE_BINS = ("crash-me", "crash-deep", "crash-recurse", "crash-ill", "hello")


# -- agreement with llvm-symbolizer -----------------------------------------------------------

@pytest.mark.parametrize("variant", ["dwarf4", "dwarf5", "line_tables"])
def test_samples_every_text_byte_agrees_with_llvm(linux_builds, variant, tmp_path):  # noqa: F811
    build = getattr(linux_builds, variant)
    inlined = 0
    for name in SAMPLE_BINS:
        binary, dwp = build.bin(name), build.dwp(name)
        counts = compare(binary, dwp if dwp.exists() else None, every_byte(binary), tmp_path)
        assert counts["agree"] == counts["addresses"]
        inlined += counts["inlined"]
    if variant != "line_tables":
        assert inlined > 0  # crash-deep's middle() is inlined into level2()


def test_samples_without_split_dwarf_agree_with_llvm(sample_nosplit, tmp_path):
    for name in SAMPLE_BINS:
        binary = sample_nosplit / name
        assert not binary.with_name(name + ".dwp").exists()
        counts = compare(binary, None, every_byte(binary), tmp_path)
        assert counts["agree"] == counts["addresses"]


@pytest.mark.parametrize("name", ["crash-me.dwarf4", "crash-me.dwarf5"])
def test_fixture_binaries_agree_with_llvm(name, tmp_path):
    binary = FX / name
    counts = compare(binary, FX / f"{name}.dwp", every_byte(binary), tmp_path)
    assert counts["agree"] == counts["addresses"]


@pytest.mark.parametrize("variant", ["split4", "split5", "nosplit4", "nosplit5", "lines", "dev4"])
@pytest.mark.parametrize("tool", ["llvm-symbolizer", "llvm-symbolizer-19"])
def test_std_program_agrees_with_llvm(std_builds, variant, tool, tmp_path):
    """Debian's default llvm-symbolizer (14) and LLVM 19's; only 14 needs gdb (DWARF 4 .dwp ranges)."""
    binary, dwp = std_builds[variant]
    if variant.startswith("nosplit"):
        assert dwp is None
    elif variant != "lines":
        assert read_elf(dwp).cu_index_version == (5 if variant == "split5" else 2)
    counts = compare(binary, dwp, spread(binary, dwp), tmp_path, tool=tool,
                     gdb_fallback=tool == "llvm-symbolizer" and variant in ("split4", "dev4"))
    print(variant, tool, counts)
    assert counts["agree"] + counts["gdb"] == counts["addresses"]
    assert counts["agree"] > 0.95 * counts["addresses"]
    if variant != "lines":
        assert counts["inlined"] > 1000  # std's iterators and allocators inline deeply


def test_compressed_debug_sections_give_the_same_answers(std_builds, tmp_path):
    binary, _ = std_builds["nosplit5"]
    packed = tmp_path / "stdprog.z"
    subprocess.run([need_tool("llvm-objcopy"), "--compress-debug-sections=zlib", str(binary), str(packed)],
                   check=True)
    sections = subprocess.run([need_tool("llvm-readelf"), "-SW", str(packed)], capture_output=True, text=True,
                              check=True).stdout
    assert re.search(r"\.debug_info\s.*\sC\w*\s", sections) or re.search(r"\.debug_info\s.*\s\w*C\s", sections)
    addrs = spread(binary, None, n_random=500, n_rows=500)
    counts = compare(packed, None, addrs, tmp_path)
    assert counts["agree"] == counts["addresses"]


def test_a_separate_debug_file_symbolizes_like_the_binary(std_builds, tmp_path):
    """What `objcopy --only-keep-debug` writes (the debuginfod / .gnu_debuglink file) is passed
    as the binary: same program headers, build-id and DWARF, no code bytes."""
    binary, _ = std_builds["nosplit4"]
    debug = tmp_path / "stdprog.debug"
    subprocess.run([need_tool("llvm-objcopy"), "--only-keep-debug", str(binary), str(debug)], check=True)
    addrs = spread(binary, None, n_random=500, n_rows=500)
    counts = compare(debug, None, addrs, tmp_path)
    assert counts["agree"] == counts["addresses"]
    with DwarfSymbolizer(binary) as a, DwarfSymbolizer(debug) as b:
        assert (a.build_id, a.load_bias) == (b.build_id, b.load_bias)
        assert all(a.symbolize(x - a.load_bias) == b.symbolize(x - b.load_bias) for x in addrs[::10])


def test_v0_names_demangle_as_llvm_cxxfilt_prints_them(std_builds):
    """Every v0-mangled symbol of the std program (generics, closures, dyn, fn pointers, consts)."""
    binary, _ = std_builds["nosplit5"]
    names = subprocess.run([need_tool("llvm-nm"), "--no-demangle", str(binary)], capture_output=True, text=True,
                           check=True).stdout.split()
    mangled = sorted({n for n in names if n.startswith("_R")})
    assert len(mangled) > 200
    out = subprocess.run([need_tool("llvm-cxxfilt")], input="\n".join(mangled), capture_output=True, text=True,
                         check=True).stdout.splitlines()
    out = [re.sub(r" \(\.llvm\.\d+\)$", "", e) for e in out]  # symtool drops LLVM's hash suffix
    from symtool.demangle import MAX_DEMANGLED, demangle
    differ = [(m, e, demangle(m)) for m, e in zip(mangled, out)
              if demangle(m) != e and not (len(e) >= MAX_DEMANGLED and demangle(m)[:-1] == e[:MAX_DEMANGLED - 1])]
    assert not differ, differ[:5]


C_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
struct node { int v; struct node *l, *r; };
static inline int max(int a, int b) { return a > b ? a : b; }
static inline int height(struct node *n) { return n ? 1 + max(height(n->l), height(n->r)) : 0; }
static struct node *insert(struct node *n, int v) {
    if (!n) { n = calloc(1, sizeof *n); n->v = v; return n; }
    if (v < n->v) n->l = insert(n->l, v); else n->r = insert(n->r, v);
    return n;
}
static inline unsigned hash(const char *s) { unsigned h = 5381; while (*s) h = h * 33 + (unsigned char)*s++; return h; }
__attribute__((always_inline)) static inline int twice(int x) { return x * 2 + (int)hash("abc"); }
int compute(int argc, char **argv) {
    struct node *root = NULL;
    for (int i = 0; i < argc; i++) root = insert(root, (int)hash(argv[i]) + twice(i));
    return height(root) + max(argc, 3);
}
int main(int argc, char **argv) { printf("%d\n", compute(argc, argv)); return 0; }
"""

CXX_PROGRAM = r"""
#include <vector>
#include <map>
#include <string>
#include <cstdio>
namespace ns { namespace inner {
template <typename T> struct Box { std::vector<T> v; inline T sum() const { T s{}; for (auto &x : v) s += x; return s; } };
struct K { int k; static int make(int x) { return x * 7; } int get() const; };
int K::get() const { return k + make(k); }
}}
extern "C" int cfunc(int x) { return x + 1; }
int main(int argc, char **) {
    ns::inner::Box<int> b{{1, 2, argc}};
    std::map<std::string, int> m; m["a"] = b.sum();
    ns::inner::K k{argc};
    std::printf("%d %d %d\n", m["a"], k.get(), cfunc(argc));
}
"""


@pytest.mark.parametrize("flags", [["-gdwarf-4"], ["-gdwarf-5"], ["-gdwarf-4", "-gsplit-dwarf"],
                                   ["-gdwarf-5", "-gsplit-dwarf"]])
def test_clang_c_program_agrees_with_llvm(flags, tmp_path):
    """C from clang (no Rust conventions): every .text byte, with and without split DWARF."""
    src = tmp_path / "prog.c"
    src.write_text(C_PROGRAM)
    binary = tmp_path / "prog"
    subprocess.run([need_tool("clang"), "-O2", "-g", *flags, str(src), "-o", str(binary)], cwd=tmp_path, check=True)
    dwp = None
    if "-gsplit-dwarf" in flags:
        dwp = tmp_path / "prog.dwp"
        subprocess.run([need_tool("llvm-dwp"), "-e", str(binary), "-o", str(dwp)], cwd=tmp_path, check=True)
        for dwo in tmp_path.glob("*.dwo"):
            dwo.unlink()  # only the package remains
    for tool in ("llvm-symbolizer", "llvm-symbolizer-19"):
        counts = compare(binary, dwp, every_byte(binary), tmp_path, tool=tool)
        assert counts["agree"] == counts["addresses"] and counts["inlined"] > 0


def test_clang_cxx_program_frames_agree_with_llvm(tmp_path, monkeypatch):
    """C++ names stay mangled (symtool.demangle reads Rust); through llvm-cxxfilt they are what
    llvm-symbolizer prints, so the linkage names, specification chains and lines are LLVM's."""
    src = tmp_path / "prog.cc"
    src.write_text(CXX_PROGRAM)
    binary = tmp_path / "prog"
    subprocess.run([need_tool("clang++"), "-O2", "-g", "-gsplit-dwarf", str(src), "-o", str(binary)], cwd=tmp_path,
                   check=True)
    dwp = tmp_path / "prog.dwp"
    subprocess.run([need_tool("llvm-dwp"), "-e", str(binary), "-o", str(dwp)], cwd=tmp_path, check=True)
    import symtool.demangle
    names: dict[str, str] = {}

    def itanium(name: str) -> str:
        if name.startswith("_Z") and name not in names:
            names[name] = subprocess.run([need_tool("llvm-cxxfilt")], input=name, capture_output=True, text=True,
                                         check=True).stdout.strip()
        return names.get(name, name)

    # (A frame demangles its linkage name when its readable name is first read: symtool.demangle's.)
    monkeypatch.setattr(symtool.demangle, "demangle", lambda n, d=symtool.demangle.demangle: itanium(d(n)))
    counts = compare(binary, dwp, every_byte(binary), tmp_path)
    assert counts["agree"] == counts["addresses"] and counts["inlined"] > 0
    assert any("ns::inner::K::get() const" == n for n in names.values())


# -- identity and the module base ---------------------------------------------------------------

def readelf_load_base(binary: Path) -> int:
    out = subprocess.run([need_tool("llvm-readelf"), "-lW", str(binary)], capture_output=True, text=True,
                         check=True).stdout
    loads = re.findall(r"^\s*LOAD\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)", out, re.M)
    offset, vaddr = next((int(o, 16), int(v, 16)) for o, v in loads if int(o, 16) == 0)
    return (vaddr - offset) & ~0xFFF


def test_build_id_and_load_bias(linux_builds, std_builds):  # noqa: F811
    cases = [(linux_builds.dwarf5.bin("crash-deep"), linux_builds.dwarf5.dwp("crash-deep")),
             (linux_builds.no_build_id.bin(), linux_builds.no_build_id.dwp()), std_builds["split4"]]
    for binary, dwp in cases:
        with DwarfSymbolizer(binary, dwp) as sym:
            info = read_elf(binary)
            out = subprocess.run([need_tool("llvm-readelf"), "--notes", str(binary)], capture_output=True,
                                 text=True, check=True).stdout
            m = re.search(r"Build ID: ([0-9a-f]+)", out)
            assert sym.build_id == (m.group(1) if m else None) == info.index
            assert sym.load_bias == readelf_load_base(binary)
    assert DwarfSymbolizer(linux_builds.no_build_id.bin()).build_id is None


def test_result_shape_matches_the_pdb_symbolizer(linux_builds):  # noqa: F811
    from symtool.formats import pdb_symbols, symbols
    assert pdb_symbols.Symbolized is symbols.Symbolized and pdb_symbols.Frame is symbols.Frame
    build = linux_builds.dwarf5
    binary = build.bin("crash-deep")
    nm = subprocess.run([need_tool("llvm-nm"), str(binary)], capture_output=True, text=True, check=True).stdout
    level2 = int(re.search(r"^([0-9a-f]+) t \S*level2", nm, re.M).group(1), 16)
    [symbols_llvm] = llvm_symbolize(binary, build.dwp("crash-deep"), [level2 + 1])
    with DwarfSymbolizer(binary, build.dwp("crash-deep")) as sym:
        result = sym.symbolize(level2 + 1 - sym.load_bias)
        assert isinstance(result, symbols.Symbolized)
        assert result.rva == level2 + 1 - sym.load_bias
        assert result.symbol.endswith("level2") and result.symbol.startswith("_R")  # the linkage name
        assert result.symbol_offset == 1
        assert [f.function for f in result.frames] == [rust_legacy(s["FunctionName"]) for s in symbols_llvm]
        assert result.function == result.frames[0].function and result.line == result.frames[0].line
        assert sym.symbolize(0x7FFF_0000) is None  # far outside the module


def test_without_the_dwp_a_split_binary_still_has_lines(linux_builds, tmp_path):  # noqa: F811
    binary = tmp_path / "crash-deep"  # alone: llvm-symbolizer would find crash-deep.dwp beside it
    shutil.copy(linux_builds.dwarf4.bin("crash-deep"), binary)
    counts = compare(binary, None, every_byte(binary), tmp_path)
    assert counts["agree"] == counts["addresses"]


# -- bad input ------------------------------------------------------------------------------------

def test_bad_input_raises_format_error_naming_the_file(linux_builds, tmp_path):  # noqa: F811
    build = linux_builds.dwarf5
    binary, dwp = build.bin("crash-deep"), build.dwp("crash-deep")
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x7fELF" + b"\xff" * 60)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cut = tmp_path / "crash-deep.cut"
    cut.write_bytes(binary.read_bytes()[:binary.stat().st_size // 2])
    for args in ((junk,), (empty,), (binary, junk), (cut, dwp), (binary, fifo), (tmp_path,)):
        with pytest.raises(FormatError) as err:
            sym = DwarfSymbolizer(*args)
            for addr in every_byte(binary):
                sym.symbolize(addr - sym.load_bias)
        assert err.value.path in {str(a) for a in args}
