"""`symtool symbolize` against llvm-symbolizer: the same text for the same addresses.

Real programs built here: a Rust std program with inlining (rustc, v0 mangling, unpacked split
DWARF: one .dwo per codegen unit), the same program with its own crate's symbols in Rust's
legacy mangling (std's stay v0), and a C program with ``-gsplit-dwarf`` read from its unpacked
.dwo (DWARF 4 and 5) and from a package made by llvm-dwp.  Addresses: random .text addresses in
random order and the same sorted (the reader's caches see both patterns), every byte of the
legacy-named functions, every .text byte of the C program.  llvm-symbolizer's default output is
the oracle (LLVM 19's; LLVM 14's too for the Rust program), compared block by block (function,
file:line:column per inline frame), byte for byte: LLVM's `` (.llvm.N)`` suffixes, names over a
thousand characters long and legacy names demangled as Itanium C++ included.  The differences
docs/symbolize.md lists (C++ names, LLVM 14's split DWARF gaps) do not
occur in these programs: any difference fails the test.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import need_tool
from symtool.demangle import MAX_DEMANGLED

RUST_PROGRAM = r"""
use std::collections::{BTreeMap, HashMap};
#[derive(Debug, Clone)]
struct Point<T> { x: T, y: T }
impl<T: Copy + std::ops::Add<Output = T>> Point<T> {
    #[inline(always)]
    fn sum(&self) -> T { self.x + self.y }
}
#[inline]
fn score(words: &[String]) -> usize { words.iter().map(|w| w.len() * 3).filter(|n| n % 2 == 1).sum() }
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut m: HashMap<String, usize> = HashMap::new();
    for a in &args { *m.entry(a.clone()).or_default() += 1; }
    let b: BTreeMap<_, _> = m.iter().map(|(k, v)| (v, k)).collect();
    let p = Point { x: args.len(), y: 7 };
    let mut v: Vec<u64> = (0..args.len() as u64 * 100).map(|i| i * i % 17).collect();
    v.sort_unstable();
    println!("{:?} {} {} {:?}", b, p.sum(), score(&args), &v[..v.len().min(3)]);
}
"""

C_PROGRAM = r"""
#include <stdio.h>
#include <string.h>
static inline int sq(int x) { return x * x; }
__attribute__((always_inline)) static inline int twice(int x) { return sq(x) + sq(x + 1); }
static inline unsigned hash(const char *s) { unsigned h = 5381; while (*s) h = h * 33 + (unsigned char)*s++; return h; }
int compute(int argc, char **argv) {
    int total = 0;
    for (int i = 0; i < argc; i++) total += twice(i) + (int)hash(argv[i]) + (int)strlen(argv[i]);
    return total;
}
int main(int argc, char **argv) { printf("%d\n", compute(argc, argv)); return 0; }
"""


def symtool(*args, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "symtool", *map(str, args)], input=stdin, capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def build_rust_program(d: Path, mangling: str) -> Path:
    """RUST_PROGRAM built with rustc -O -g, split-debuginfo=unpacked, the given symbol mangling."""
    (d / "main.rs").write_text(RUST_PROGRAM)
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    subprocess.run([need_tool("rustc"), "-O", "-g", "-C", "split-debuginfo=unpacked", "-C",
                    f"symbol-mangling-version={mangling}", "-Z", "unstable-options", "main.rs", "-o", "prog"], cwd=d,
                   env=env, check=True, capture_output=True, timeout=300)
    assert list(d.glob("*.dwo"))
    return d / "prog"


@pytest.fixture(scope="session")
def rust_unpacked(tmp_path_factory) -> Path:
    """The Rust program with split-debuginfo=unpacked: skeletons in the binary, a .dwo per CGU."""
    return build_rust_program(tmp_path_factory.mktemp("rs"), "v0")


@pytest.fixture(scope="session")
def rust_legacy(tmp_path_factory) -> Path:
    """The Rust program with its crate's symbols in legacy mangling (``_ZN…17h<hash>E``, the
    generic std code instantiated in it too); std's own, prebuilt, stay v0."""
    return build_rust_program(tmp_path_factory.mktemp("rs-legacy"), "legacy")


@pytest.fixture(scope="session")
def c_builds(tmp_path_factory) -> dict[str, tuple[Path, Path | None]]:
    """The C program: unpacked .dwo for DWARF 4 and 5, and the DWARF 5 one packed by llvm-dwp."""
    out = {}
    for version in (4, 5):
        d = tmp_path_factory.mktemp(f"c{version}")
        (d / "prog.c").write_text(C_PROGRAM)
        subprocess.run([need_tool("clang"), "-O2", "-g", f"-gdwarf-{version}", "-gsplit-dwarf", "prog.c", "-o",
                        "prog"], cwd=d, check=True)
        assert (d / "prog.dwo").exists()
        out[f"dwo{version}"] = (d / "prog", None)
    packed = tmp_path_factory.mktemp("cdwp")
    src = out["dwo5"][0].parent
    shutil.copy(src / "prog", packed / "prog")
    subprocess.run([need_tool("llvm-dwp"), "-e", str(src / "prog"), "-o", str(packed / "prog.dwp")], cwd=src,
                   check=True)
    out["dwp5"] = (packed / "prog", packed / "prog.dwp")
    return out


def text_range(binary: Path) -> tuple[int, int]:
    out = subprocess.run([need_tool("llvm-readelf"), "-SW", str(binary)], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"\]\s+\.text\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", out)
    return int(m.group(1), 16), int(m.group(1), 16) + int(m.group(2), 16)


def blocks(text: str) -> list[list[str]]:
    return [b.split("\n") for b in text.rstrip("\n").split("\n\n")] if text.strip() else []


def same_block(expected: list[str], got: list[str]) -> bool:
    """One address's lines, byte for byte (kept as a function: tests/test_symcache.py uses it)."""
    return expected == got


def compare(binary: Path, addrs: list[int], *extra: str, dwp: Path | None = None,
            tool: str = "llvm-symbolizer-19", oracle_obj: Path | None = None) -> dict[str, int]:
    """symtool symbolize and llvm-symbolizer on the same addresses (stdin): every block the same
    text; the counts.  ``oracle_obj``: the file llvm-symbolizer reads instead of ``binary`` (a
    dSYM's DWARF file)."""
    stdin = "".join(f"{a:#x}\n" for a in addrs)
    dwp_args = [f"--dwp={dwp}"] if dwp else []
    oracle = subprocess.run([need_tool(tool), f"--obj={oracle_obj or binary}", *dwp_args], input=stdin,
                            capture_output=True, text=True, check=True, timeout=300).stdout
    proc = symtool("symbolize", "--obj", binary, *(["--dwp", dwp] if dwp else []), *extra, stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    exp, got = blocks(oracle), blocks(proc.stdout)
    assert len(exp) == len(got) == len(addrs)
    differ = [(hex(a), e, g) for a, e, g in zip(addrs, exp, got) if not same_block(e, g)]
    assert not differ, f"{len(differ)} of {len(addrs)} differ: {differ[:3]}"
    inlined = sum(len(g) // 2 - 1 for g in got)
    names = [line for g in got for line in g[0::2]]
    return {"addresses": len(addrs), "inlined": inlined, "llvm_suffixes": sum(" (.llvm." in n for n in names),
            "longest_name": max(map(len, names), default=0)}


def random_text(binary: Path, n: int, seed: int) -> list[int]:
    lo, hi = text_range(binary)
    rnd = random.Random(seed)
    return [rnd.randrange(lo, hi) for _ in range(n)]


@pytest.mark.parametrize("order", ["random", "sorted"])
def test_rust_program_unpacked_dwo_matches_llvm_symbolizer(rust_unpacked, order):
    """Every address byte for byte, LLVM 19's and 14's text alike: the names LTO renamed
    (`` (.llvm.N)``) and those longer than MAX_DEMANGLED (nested iterator adaptors' generic
    arguments) are among them."""
    addrs = random_text(rust_unpacked, 1500, 5)
    if order == "sorted":
        addrs.sort()
    counts = compare(rust_unpacked, addrs, tool="llvm-symbolizer-19" if order == "random" else "llvm-symbolizer")
    assert counts["inlined"] > 1000  # std's iterators inline deeply: the .dwo files were read
    assert counts["llvm_suffixes"] > 5 and counts["longest_name"] > MAX_DEMANGLED


def test_stack_and_dumps_names_are_unchanged_display_forms(rust_unpacked):
    """What ``stack`` and ``dumps`` show and bucket by (the readers' ``Frame.function``) stays the
    display form it was: LLVM's name without its `` (.llvm.N)`` suffix (it changes from build to
    build), cut to MAX_DEMANGLED characters with an ellipsis: the same bucket keys as before
    symbolize printed whole names.  Checked against llvm-symbolizer's own names."""
    from symtool.formats.symbols import llvm_function
    from symtool.formats.dwarf_symbols import DwarfSymbolizer

    addrs = random_text(rust_unpacked, 1500, 5)
    oracle = subprocess.run([need_tool("llvm-symbolizer-19"), f"--obj={rust_unpacked}"],
                            input="".join(f"{a:#x}\n" for a in addrs), capture_output=True, text=True,
                            check=True).stdout
    cut = suffixed = 0
    with DwarfSymbolizer(rust_unpacked) as reader:
        for address, expected in zip(addrs, blocks(oracle)):
            result = reader.symbolize(address - reader.load_bias)
            frames = result.frames if result is not None else []
            assert [llvm_function(f) for f in frames] == expected[0::2] or (not frames and expected[0] == "??")
            for f, name in zip(frames, expected[0::2]):
                shown = re.sub(r" \(\.llvm\.\d+\)$", "", name)
                suffixed += shown != name
                if len(shown) > MAX_DEMANGLED:
                    shown = shown[:MAX_DEMANGLED - 1] + "…"
                    cut += 1
                assert f.function == shown
    assert cut and suffixed


def test_json_carries_the_whole_names(rust_unpacked):
    """--json's functions are the text's, whole (long generic names, LLVM's suffix)."""
    addrs = random_text(rust_unpacked, 1500, 5)[:400]
    text = symtool("symbolize", "--obj", rust_unpacked, *map(hex, addrs)).stdout
    data = json.loads(symtool("symbolize", "--obj", rust_unpacked, "--json", *map(hex, addrs)).stdout)
    names = [f["function"] for entry in data["addresses"] for f in entry["frames"] or [{"function": "??"}]]
    assert names == [line for block in blocks(text) for line in block[0::2]]
    assert max(map(len, names)) > MAX_DEMANGLED and any(" (.llvm." in n for n in names)


def legacy_function_bytes(binary: Path) -> list[int]:
    """Every byte of the functions whose symbol is legacy-mangled (``_ZN``), from llvm-nm."""
    out = subprocess.run([need_tool("llvm-nm"), "-S", "--no-demangle", str(binary)], capture_output=True, text=True,
                         check=True).stdout
    addrs = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tT" and fields[3].startswith("_ZN"):
            start = int(fields[0], 16)
            addrs += range(start, start + int(fields[1], 16))
    return addrs


def test_rust_legacy_mangled_program_matches_llvm_symbolizer(rust_legacy):
    """Legacy names as LLVM prints them (Itanium C++: ``$LT$`` escapes and ``::h<hash>`` kept),
    at every byte of the legacy-named functions and at random addresses (std's v0 names)."""
    legacy = legacy_function_bytes(rust_legacy)
    assert len(legacy) > 5000
    counts = compare(rust_legacy, legacy + random_text(rust_legacy, 500, 7))
    assert counts["inlined"] > 1000
    proc = symtool("symbolize", "--obj", rust_legacy, hex(legacy[0]))
    assert re.search(r"::h[0-9a-f]{16}$", proc.stdout.split("\n")[0]), proc.stdout


@pytest.mark.parametrize("variant", ["dwo4", "dwo5", "dwp5"])
def test_c_program_split_dwarf_matches_llvm_symbolizer_on_every_byte(c_builds, variant):
    """LLVM 14's llvm-symbolizer leaves out some inlined calls of clang's split units (those with
    DW_AT_ranges: 14 of this program's 576 bytes; test_dwarf_symbols checks such chains against
    gdb): LLVM 19's, which reads them, is the oracle here."""
    tool = "llvm-symbolizer-19"
    binary, dwp = c_builds[variant]
    lo, hi = text_range(binary)
    addrs = list(range(lo, hi))
    random.Random(3).shuffle(addrs)
    counts = compare(binary, addrs, dwp=dwp, tool=tool)
    assert counts["inlined"] > 0


def test_json_and_relative_give_the_same_frames(c_builds):
    binary, _ = c_builds["dwo5"]
    lo, hi = text_range(binary)
    addrs = [lo, (lo + hi) // 2, hi - 1]
    text = symtool("symbolize", "--obj", binary, *map(hex, addrs))
    data = json.loads(symtool("symbolize", "--obj", binary, "--json", *map(hex, addrs)).stdout)
    assert [e["address"] for e in data["addresses"]] == [hex(a) for a in addrs]
    assert set(data["addresses"][0]) == {"address", "rva", "frames", "symbol", "symbol_offset", "module"}
    lines = []
    for entry in data["addresses"]:
        for f in entry["frames"] or [{"function": "??", "file": None, "line": 0, "column": 0}]:
            lines += [f["function"], f"{f['file'] or '??'}:{f['line'] or 0}:{f['column'] or 0}"]
        lines.append("")
    assert text.stdout == "\n".join(lines) + "\n"
    base = int(data["image_base"], 16)
    relative = symtool("symbolize", "--obj", binary, "--relative", *(hex(a - base) for a in addrs))
    assert relative.stdout == text.stdout


def test_dwo_outside_the_allowed_roots_is_not_read(c_builds, tmp_path):
    """A copy of the binary elsewhere: its skeleton names the .dwo in the original build
    directory (DW_AT_comp_dir), which is neither beside it nor a given build directory."""
    binary, _ = c_builds["dwo5"]
    copy = tmp_path / "prog"
    shutil.copy(binary, copy)
    lo, hi = text_range(binary)
    addrs = list(range(lo, hi, 3))
    stdin = "".join(f"{a:#x}\n" for a in addrs)
    alone = symtool("symbolize", "--obj", copy, stdin=stdin)
    assert alone.returncode == 0 and "outside the binary's directory" in alone.stderr
    assert all(len(b) == 2 for b in blocks(alone.stdout))  # lines from the skeleton, no inline frames
    allowed = symtool("symbolize", "--obj", copy, "--build-dir", binary.parent, stdin=stdin)
    assert allowed.stdout == symtool("symbolize", "--obj", binary, stdin=stdin).stdout
    assert any(len(b) > 2 for b in blocks(allowed.stdout))


def test_a_dwo_of_another_build_is_not_used(c_builds, tmp_path):
    """Same name, other DWO id (the source changed since): refused, as llvm-symbolizer does."""
    binary, _ = c_builds["dwo4"]
    work = tmp_path / "b"
    shutil.copytree(binary.parent, work)
    (work / "prog.c").write_text(C_PROGRAM.replace("sq(", "square("))  # the DWO id hashes the DIEs
    subprocess.run([need_tool("clang"), "-O2", "-g", "-gdwarf-4", "-gsplit-dwarf", "-c", "prog.c", "-o", "other.o"],
                   cwd=work, check=True)
    shutil.move(work / "other.dwo", work / "prog.dwo")
    nm = subprocess.run([need_tool("llvm-nm"), str(work / "prog")], capture_output=True, text=True,
                        check=True).stdout
    compute = int(re.search(r"^([0-9a-f]+) T compute$", nm, re.M).group(1), 16)
    proc = symtool("symbolize", "--obj", work / "prog", hex(compute))
    assert proc.returncode == 0
    assert "holds no unit with DWO ID" in proc.stderr, (proc.stdout, sorted(os.listdir(work)))
    assert proc.stdout.startswith("compute\n")  # the symbol table's name, the skeleton's lines


@pytest.mark.parametrize("case", ["missing", "junk", "address", "macho", "both", "dwp"])
def test_bad_input_is_one_error_line_exit_2(c_builds, tmp_path, case):
    binary, _ = c_builds["dwo5"]
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x7fELF" + b"\xff" * 200)
    macho = tmp_path / "m"
    macho.write_bytes(bytes.fromhex("cffaedfe") + b"\0" * 60)
    args = {"missing": ["--obj", tmp_path / "nope", "0x10"], "junk": ["--obj", junk, "0x10"],
            "address": ["--obj", binary, "0xzz"], "macho": ["--obj", macho, "0x10"],
            "both": ["--obj", binary, "--module", "a/b", "0x1"], "dwp": ["--obj", binary, "--dwp", junk, "0x1"]}[case]
    proc = symtool("symbolize", *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    if case in ("missing", "junk", "macho"):
        assert str(args[1]) in lines[0]


def test_help_has_examples():
    proc = symtool("symbolize", "--help")
    assert proc.returncode == 0 and "Examples:" in proc.stdout and "llvm-symbolizer" in proc.stdout


def test_pe_image_finds_its_pdb_by_codeview(tmp_path):
    """A PE image's PDB through the build directories (CodeView name + GUID/age), as `stack`
    finds it: the answers are the PDB's own (function names agree with llvm-symbolizer's); with
    no PDB to be found, one error line."""
    from conftest import FIXTURES_DIR

    pe = FIXTURES_DIR / "pe-pdb"
    image = tmp_path / "dump_syms_regtest64.exe"
    shutil.copy(pe / image.name, image)  # alone: its PDB is not beside it
    rvas = [hex(0x1000 + 3 * i) for i in range(40)]
    found = symtool("symbolize", "--obj", image, "--relative", "--build-dir", pe, *rvas, cwd=tmp_path)
    direct = symtool("symbolize", "--obj", pe / "dump_syms_regtest64.pdb", *rvas, cwd=tmp_path)
    assert found.returncode == direct.returncode == 0, found.stderr + direct.stderr
    assert found.stdout == direct.stdout
    oracle = subprocess.run([need_tool("llvm-symbolizer"), f"--obj={pe / image.name}", "--relative-address", *rvas],
                            capture_output=True, text=True, check=True).stdout
    ours = [b[0] for b in blocks(found.stdout)]
    theirs = [b[0] for b in blocks(oracle)]
    named = [(o, t) for o, t in zip(ours, theirs) if t]  # LLVM prints an empty name for padding
    assert named and all(o == t.split("(")[0] for o, t in named), named[:3]
    data = json.loads(symtool("symbolize", "--obj", image, "--json", "--build-dir", pe, "0x140001000",
                              cwd=tmp_path).stdout)
    assert data["debug_file"].endswith("dump_syms_regtest64.pdb") and data["image_base"] == "0x140000000"
    missing = symtool("symbolize", "--obj", image, "--relative", "--offline", "--build-dir", tmp_path, "0x1000",
                      cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.startswith("error:") and len(missing.stderr.splitlines()) == 1


def test_module_by_store_key_reads_the_stores_file(tmp_path):
    """--module NAME/INDEX: the PDB published to a store, found by its key (RVAs, no image base)."""
    from conftest import FIXTURES_DIR

    pdb = FIXTURES_DIR / "pe-pdb" / "dump_syms_regtest64.pdb"
    staged = tmp_path / "staged"
    staged.mkdir()
    shutil.copy(pdb, staged / pdb.name)
    store = tmp_path / "store"
    assert symtool("publish", staged, "--store", store, cwd=tmp_path).returncode == 0
    index = json.loads(symtool("id", "--json", pdb, cwd=tmp_path).stdout)[0]["index"]
    rvas = [hex(0x1000 + 5 * i) for i in range(20)]
    by_key = symtool("symbolize", "--module", f"{pdb.name}/{index}", "--store", store, "--offline", *rvas,
                     cwd=tmp_path)
    direct = symtool("symbolize", "--obj", pdb, *rvas, cwd=tmp_path)
    assert by_key.returncode == 0, by_key.stderr
    assert by_key.stdout == direct.stdout and "??" not in by_key.stdout.split("\n")[0]
    wrong = symtool("symbolize", "--module", f"{pdb.name}/{'0' * 33}", "--store", store, "--offline", "0x1000",
                    cwd=tmp_path)
    assert wrong.returncode == 2 and wrong.stderr.startswith("error:") and "not found" in wrong.stderr


def macho_text_range(binary: Path) -> tuple[int, int]:
    out = subprocess.run([need_tool("llvm-objdump"), "--section-headers", str(binary)], capture_output=True,
                         text=True, check=True).stdout
    m = re.search(r"^\s*\d+\s+__text\s+([0-9a-f]+)\s+([0-9a-f]+)", out, re.M)
    assert m, out
    return int(m.group(2), 16), int(m.group(2), 16) + int(m.group(1), 16)


@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
def test_macho_binary_with_its_dsym_matches_llvm_symbolizer(mac_builds, arch, tmp_path):
    """The samples' macOS builds (rust-lld, dsymutil): symtool is given the binary and finds the
    dSYM beside it (FILE.dSYM, whose DWARF file cargo names <crate>-<hash>); llvm-symbolizer is
    given that DWARF file (it looks only for FILE.dSYM/.../DWARF/FILE).  Every .text byte."""
    build = getattr(mac_builds, arch)
    binary = build.bin()
    dwarf_files = sorted(Path(f"{binary}.dSYM").glob("Contents/Resources/DWARF/*"))
    assert len(dwarf_files) == 1, dwarf_files
    lo, hi = macho_text_range(binary)
    addrs = list(range(lo, hi))
    compare(binary, addrs, oracle_obj=dwarf_files[0])
    # The same binary without its dSYM beside it: the dSYM found by UUID in a build directory.
    lone = tmp_path / "bin" / binary.name
    lone.parent.mkdir()
    shutil.copy2(binary, lone)
    proc = symtool("symbolize", "--obj", lone, "--build-dir", binary.parent, f"{addrs[0]:#x}")
    assert proc.returncode == 0, proc.stderr
    oracle = subprocess.run([need_tool("llvm-symbolizer"), f"--obj={dwarf_files[0]}", f"{addrs[0]:#x}"],
                            capture_output=True, text=True, check=True).stdout
    assert blocks(proc.stdout) == blocks(oracle)
    # Nowhere to find it: one error line, exit 2.
    proc = symtool("symbolize", "--obj", lone, "--build-dir", tmp_path / "bin", f"{addrs[0]:#x}")
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and "dSYM" in proc.stderr, proc.stderr
