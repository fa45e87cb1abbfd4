"""PdbSymbolizer reaches a procedure through the globals' S_PROCREF (issue 25, PDB item 4).

A lookup finds the public before the address, looks its name up in the globals stream's name
hash, and reads the procedure record the reference names, instead of skimming the symbols of
the module that owns the address.  The reference must never change an answer: it is used only
when it proves its procedure is the one the skim finds (same module, covering the address, the
only line fragment in its range starting at its start).  Checked here on real PDBs:

* the name hash against llvm-pdbutil's listing of the globals (every S_PROCREF / S_LPROCREF of
  a name, with its module and offset);
* every procedure a reference proves (the public's own, or one without a public reached by
  hopping on from it, record by record as the skim does) is the one the skim finds, on MSVC's
  x86 and x64 PDBs (fixtures), a clang -O2 PDB of three modules with inline sites, static
  functions and functions folded by lld-link /opt:icf (in one module and across two), and a
  Rust std PDB of the std crash corpus (tests/std_corpus.py builds it once per machine);
* whole answers and their extents are the same with and without references, addresses in
  random order;
* a globals stream with any bytes changed gives the intact file's answers.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES_DIR, need_tool
from std_corpus import CorpusUnavailable, build_corpus
from symtool.formats import pdb_symbols
from symtool.formats.pdb import GSI_HASH_HEADER, open_msf, read_dbi_header
from symtool.formats.pdb_symbols import PdbSymbolizer, _GlobalsHash

ICF_C = {
    "a.c": """
#define AI static inline __attribute__((always_inline))
AI int scale(int x, int k) { return x * k + (x >> 3); }
AI int mix(int x) { return scale(x, 7) ^ scale(x + 1, 3); }
static int helper(int x) { int s = 0; for (int i = 0; i < x; i++) s += mix(i); return s; }
int same_a(int x) { return x * 3 + 1; }
int same_b(int x) { return x * 3 + 1; }
int work_a(int n) { int t = 0; for (int i = 0; i < n; i++) t += mix(i) + helper(i & 7); return t; }
int (*volatile keep_helper)(int) = helper;
""",
    "b.c": """
#define AI static inline __attribute__((always_inline))
AI int twist(int x) { return (x << 2) - (x >> 1); }
int same_c(int x) { return x * 3 + 1; }
static int local_b(int x) { return twist(x) * twist(x + 2); }
int work_b(int n) { int t = 1; for (int i = 0; i < n; i++) t = t * 31 + local_b(i); return t; }
int (*volatile keep_local)(int) = local_b;
""",
    "main.c": """
int same_a(int); int same_b(int); int same_c(int); int work_a(int); int work_b(int);
int mainCRTStartup(void) { return same_a(1) + same_b(2) + same_c(3) + work_a(9) + work_b(5); }
""",
}


@pytest.fixture(scope="module")
def icf_pdb(tmp_path_factory) -> Path:
    """clang -O2 -gcodeview -ffunction-sections over three C files, lld-link /debug /opt:icf:
    inline sites, static functions (S_LPROCREF, no public) and identical functions folded to one
    address (two in one module, one more in another)."""
    d = tmp_path_factory.mktemp("pdb-icf")
    objs = []
    for name, text in ICF_C.items():
        (d / name).write_text(text)
        obj = name.replace(".c", ".obj")
        subprocess.run([need_tool("clang"), "--target=x86_64-pc-windows-msvc", "-O2", "-g", "-gcodeview",
                        "-ffunction-sections", "-c", name, "-o", obj], cwd=d, check=True, capture_output=True)
        objs.append(obj)
    subprocess.run([need_tool("lld-link"), "/debug", "/opt:icf", "/nodefaultlib", "/entry:mainCRTStartup",
                    "/subsystem:console", "/out:icf.exe", "/pdb:icf.pdb", *objs], cwd=d, check=True,
                   capture_output=True)
    return d / "icf.pdb"


@pytest.fixture(scope="module")
def rust_pdb() -> Path:
    """A release PDB of the std crash corpus (rustc's CodeView, real std; built once per machine
    and cached by tests/std_corpus.py, as test_std_crashes builds it)."""
    try:
        return build_corpus() / "index_oob.pdb"
    except CorpusUnavailable as err:
        pytest.skip(f"the std toolchain cannot be built here: {err}")


def _pdbs(request, which: str) -> Path:
    if which == "msvc-x86":
        return FIXTURES_DIR / "pe-pdb" / "crash.pdb"
    if which == "msvc-x64":
        return FIXTURES_DIR / "pe-pdb" / "dump_syms_regtest64.pdb"
    return request.getfixturevalue({"clang-icf": "icf_pdb", "rust-std": "rust_pdb"}[which])


def _pdbutil_procref_records(pdb: Path) -> list[tuple[int, bytes, int, int]]:
    """Every S_PROCREF / S_LPROCREF of the globals as llvm-pdbutil lists them: (offset of the
    record in the symbol record stream, name, module index, offset of the procedure record)
    (llvm-pdbutil prints the stored module: its index plus one)."""
    text = subprocess.run([need_tool("llvm-pdbutil-19"), "dump", "--globals", str(pdb)], capture_output=True,
                          check=True).stdout.decode("utf-8", "replace")
    return [(int(m.group(1)), m.group(2).encode(), int(m.group(3)) - 1, int(m.group(4))) for m in re.finditer(
        r"(\d+) \| S_L?PROCREF \[size = \d+\] `(.*)`\n\s+module = (\d+), sum name = \d+, offset = (\d+)", text)]


def _pdbutil_procrefs(pdb: Path) -> dict[bytes, set[tuple[int, int]]]:
    """name -> {(module index, offset of the procedure record)} of _pdbutil_procref_records."""
    out: dict[bytes, set[tuple[int, int]]] = {}
    for _at, name, module, offset in _pdbutil_procref_records(pdb):
        out.setdefault(name, set()).add((module, offset))
    return out


def _globals(sym: PdbSymbolizer) -> _GlobalsHash:
    return _GlobalsHash(sym.msf, sym.globals_stream, sym._records, sym.path)


@pytest.mark.parametrize("which", ["msvc-x86", "msvc-x64", "clang-icf"])
def test_the_name_hash_finds_what_llvm_pdbutil_lists(which, request):
    pdb = _pdbs(request, which)
    listed = _pdbutil_procrefs(pdb)
    assert len(listed) >= 5
    names = sorted(listed)
    names = random.Random(25).sample(names, min(len(names), 400))
    with PdbSymbolizer(pdb) as sym:
        gsi = _globals(sym)
        assert gsi.ok
        for name in names:
            assert set(gsi.procedure_refs(name)) == listed[name], name
        # A name no procedure has: its bucket holds others or nothing.
        assert gsi.procedure_refs(b"no such procedure \x01") == []


def _proved_and_skimmed(pdb: Path, step: int) -> tuple[int, int, int]:
    """(addresses checked, addresses a reference proved, of those the ones whose procedure has no
    public at its start: reached by hopping on from the public's), asserting that each proved
    procedure is the one the skim of the module finds."""
    checked = proved = hopped = 0
    with PdbSymbolizer(pdb) as by_ref, PdbSymbolizer(pdb) as by_skim:
        for vaddr, size in by_ref.sections[:1]:
            for rva in range(vaddr, vaddr + size, step):
                section, offset = by_ref.rva_to_section(rva)
                public = by_ref.public_at(section, offset)
                module = by_ref._module_for(section, offset)
                checked += 1
                if public is None or module is None:
                    continue
                proc = by_ref._proc_by_reference(module, section, offset, public[0])
                if proc is None:
                    continue
                proved += 1
                hopped += proc.start != offset - public[1]
                found = by_skim._find_proc(section, offset)  # no public given: the skim alone
                assert found is not None, hex(rva)
                assert found[0] == module, hex(rva)
                assert (found[1].segment, found[1].start, found[1].length, found[1].name) == \
                    (proc.segment, proc.start, proc.length, proc.name), hex(rva)
                assert [(s.inlinee, s.annotations, s.parent) for s in found[1].sites] == \
                    [(s.inlinee, s.annotations, s.parent) for s in proc.sites], hex(rva)
    return checked, proved, hopped


@pytest.mark.parametrize("which,step,least", [("msvc-x86", 2, 0.4), ("msvc-x64", 3, 0.6), ("clang-icf", 1, 0.3),
                                              ("rust-std", 11, 0.3)])
def test_a_proved_reference_is_the_procedure_the_skim_finds(which, step, least, request):
    pdb = _pdbs(request, which)
    checked, proved, hopped = _proved_and_skimmed(pdb, step)
    assert proved >= least * checked, (proved, checked)  # the shortcut is taken, not only safe
    if which in ("clang-icf", "rust-std"):  # static functions; Rust functions the linker made local
        assert hopped > 0


def test_folded_functions_fall_back_to_the_skim(icf_pdb):
    """same_a and same_b (one module) and same_c (another) share one address after /opt:icf: the
    line fragments do not single one out, so the module is skimmed; the answer is the skim's."""
    with PdbSymbolizer(icf_pdb) as sym:
        folded = [(name, off) for name, off in _publics(sym) if name in ("same_a", "same_b", "same_c")]
        assert len({off for _n, off in folded}) == 1 and len(folded) == 3, folded
        section, offset = 1, folded[0][1]
        module = sym._module_for(section, offset)
        for name, _off in folded:
            assert sym._proc_by_reference(module, section, offset, name) is None
        res = sym.symbolize(sym._section_rva(section, offset))
    with PdbSymbolizer(icf_pdb) as skim:
        skim._proc_by_reference = lambda *a: None
        assert [(f.function, f.file, f.line) for f in skim.symbolize(sym._section_rva(section, offset)).frames] == \
            [(f.function, f.file, f.line) for f in res.frames]


def _publics(sym: PdbSymbolizer) -> list[tuple[str, int]]:
    table = sym._load_publics().get(1, ([], []))
    return list(zip(table[1], table[0]))


def _answers(sym: PdbSymbolizer, rvas: list[int], forget_skims: bool = False) -> list:
    """symbolize_extent of each RVA; ``forget_skims``: each lookup as if no module had been
    skimmed before (a skimmed module's later lookups use its procedures, not references)."""
    out = []
    for rva in rvas:
        if forget_skims:
            for data in sym._modules_data.values():
                data.proc_keys = data.proc_spans = None
        res, lo, hi = sym.symbolize_extent(rva)
        out.append(None if res is None else
                   (res.symbol, res.symbol_offset, res.module, lo, hi, [(f.function, f.file, f.line) for f in res.frames]))
    return out


@pytest.mark.parametrize("which,step", [("msvc-x86", 3), ("msvc-x64", 5), ("clang-icf", 1), ("rust-std", 17)])
def test_answers_and_extents_are_the_same_without_references(which, step, request, monkeypatch):
    pdb = _pdbs(request, which)
    # Every lookup may take a reference (no module is skimmed for being looked up often, or for
    # an earlier lookup that the references could not answer).
    monkeypatch.setattr(pdb_symbols, "REFERENCE_LOOKUPS_BEFORE_SKIM", 1 << 30)
    with PdbSymbolizer(pdb) as sym:
        vaddr, size = sym.sections[0]
    rvas = list(range(vaddr - 16, vaddr + size + 16, step))
    random.Random(7).shuffle(rvas)
    with PdbSymbolizer(pdb) as by_ref, PdbSymbolizer(pdb) as by_skim:
        by_skim._proc_by_reference = lambda *a: None
        taken = []
        real = by_ref._proc_by_reference
        by_ref._proc_by_reference = lambda *a: taken.append(real(*a)) or taken[-1]
        assert _answers(by_ref, rvas, forget_skims=True) == _answers(by_skim, rvas)
    assert sum(p is not None for p in taken) >= len(rvas) // 10


def _globals_span(pdb: Path) -> tuple[int, list[int]]:
    """(globals stream number, file offsets of its bytes) of a PDB."""
    f, msf = open_msf(pdb)
    with f:
        stream = read_dbi_header(msf).globals_stream
        bs, size = msf.block_size, msf.stream_size(stream)
        blocks = msf.stream_blocks(stream)
    return stream, [blocks[k // bs] * bs + k % bs for k in range(size)]


MUTATED_RVAS = list(range(0x1000, 0x1000 + 0x2800, 0x35))


@pytest.fixture(scope="module")
def intact_answers():
    pdb = FIXTURES_DIR / "pe-pdb" / "crash.pdb"
    with PdbSymbolizer(pdb) as sym:
        return _answers(sym, MUTATED_RVAS)


_, GLOBALS_BYTES = _globals_span(FIXTURES_DIR / "pe-pdb" / "crash.pdb")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.one_of(st.integers(0, GSI_HASH_HEADER.size + 64),  # header, first records
                                          st.integers(0, len(GLOBALS_BYTES) - 1),
                                          st.integers(len(GLOBALS_BYTES) - 2100, len(GLOBALS_BYTES) - 1)),  # buckets
                                st.integers(0, 255)), min_size=1, max_size=24))
def test_a_damaged_globals_stream_never_changes_an_answer(edits, intact_answers, tmp_path_factory):
    data = bytearray((FIXTURES_DIR / "pe-pdb" / "crash.pdb").read_bytes())
    for at, byte in edits:
        data[GLOBALS_BYTES[at]] = byte
    path = tmp_path_factory.mktemp("globals") / "crash.pdb"
    path.write_bytes(bytes(data))
    with PdbSymbolizer(path) as sym:
        assert _answers(sym, MUTATED_RVAS) == intact_answers


def test_references_pointing_elsewhere_fall_back(tmp_path, intact_answers):
    """Every procedure reference's module and offset rewritten (to the next reference's): the
    records they lead to do not cover the addresses, and the answers stay the intact file's."""
    original = FIXTURES_DIR / "pe-pdb" / "crash.pdb"
    broken = tmp_path / "crash.pdb"
    shutil.copy(original, broken)
    records = _pdbutil_procref_records(original)
    assert len(records) > 20
    record_offsets = [at for at, _name, _module, _offset in records]
    refs = [(module, offset) for _at, _name, module, offset in records]
    f, msf = open_msf(broken)
    with f:
        stream = read_dbi_header(msf).sym_record_stream
        bs, blocks = msf.block_size, msf.stream_blocks(stream)
    rotated = refs[1:] + refs[:1]
    with open(broken, "r+b") as out:
        for at, (module, offset) in zip(record_offsets, rotated):
            for k, byte in enumerate(pdb_symbols.REFSYM2.pack(0, offset, module + 1)):
                pos = at + 4 + k
                out.seek(blocks[pos // bs] * bs + pos % bs)
                out.write(bytes([byte]))
    with PdbSymbolizer(broken) as sym:
        assert _answers(sym, MUTATED_RVAS) == intact_answers


def test_a_module_looked_up_often_is_skimmed(icf_pdb, monkeypatch):
    monkeypatch.setattr(pdb_symbols, "REFERENCE_LOOKUPS_BEFORE_SKIM", 2)
    with PdbSymbolizer(icf_pdb) as sym:
        work_a = dict(_publics(sym))["work_a"]
        module = sym._module_for(1, work_a)
        for k in range(3):
            sym.symbolize(sym._section_rva(1, work_a + k))
        data = sym._modules_data[module]
        assert data.reference_lookups == 2 and data.proc_keys is not None


def test_a_hostile_bucket_is_not_walked(tmp_path, monkeypatch):
    """A bucket over MAX_BUCKET_RECORDS is not read (the module is skimmed instead)."""
    monkeypatch.setattr(pdb_symbols, "MAX_BUCKET_RECORDS", 0)
    pdb = FIXTURES_DIR / "pe-pdb" / "crash.pdb"
    with PdbSymbolizer(pdb) as sym:
        name = next(iter(_pdbutil_procrefs(pdb)))
        assert _globals(sym).procedure_refs(name) is None
        assert sym.symbolize(0x2A3D).frames  # the module skimmed instead
