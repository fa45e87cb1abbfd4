"""The symbol cache (symtool.store.symcache): the same answers with and without it, cold and
warm, from another process, after any damage to its file, and with two processes filling it.

Real programs built here: the Rust std program of test_symbolize_cli (inline frames from its
unpacked .dwo files; llvm-symbolizer is the oracle there and here), a small C program built
with clang -O2 -g (inline chains, for the in-process fuzzing), and the MSVC-built PE + PDB
fixture.  The suite runs with the cache off (conftest); these tests turn it on with a cache
directory of their own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES_DIR, need_tool
from test_symbolize_cli import (C_PROGRAM, blocks, random_text, rust_unpacked,  # noqa: F401 (a fixture)
                                same_block, text_range)


def cache_env(cache: Path, on: bool = True, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYMTOOL_")}
    env["SYMTOOL_CACHE"] = str(cache)
    env["SYMTOOL_SYMBOL_CACHE"] = "on" if on else "off"
    env.update(extra)
    return env


def symtool(*args, env: dict[str, str], stdin: str | None = None, cwd: Path | None = None):
    return subprocess.run([sys.executable, "-m", "symtool", *map(str, args)], input=stdin, capture_output=True,
                          text=True, timeout=300, env=env, cwd=cwd)


def symcache_files(cache: Path) -> list[Path]:
    return sorted((cache / "000SymCache").glob("*.symc"))


@pytest.fixture(scope="module")
def c_program(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("symcache-c")
    (d / "prog.c").write_text(C_PROGRAM)
    subprocess.run([need_tool("clang"), "-O2", "-g", "-Wl,--build-id", "prog.c", "-o", "prog"], cwd=d, check=True)
    return d / "prog"


def test_rust_cold_warm_and_off_agree_with_llvm_symbolizer(rust_unpacked, tmp_path):  # noqa: F811
    """Cold (cache filled), warm (another process answers from it), and off: one text, and
    llvm-symbolizer's.  A copy of the binary without its .dwo files (refused: outside the
    allowed directories) still gets the inline frames warm: the answers came from the cache."""
    addrs = random_text(rust_unpacked, 400, 11)
    stdin = "".join(f"{a:#x}\n" for a in addrs)
    cache = tmp_path / "cache"
    off = symtool("symbolize", "--obj", rust_unpacked, env=cache_env(cache, on=False), stdin=stdin)
    assert off.returncode == 0, off.stderr
    assert not symcache_files(cache)
    cold = symtool("symbolize", "--obj", rust_unpacked, env=cache_env(cache), stdin=stdin)
    files = symcache_files(cache)
    assert len(files) == 1 and files[0].name.startswith("elf-")
    warm = symtool("symbolize", "--obj", rust_unpacked, env=cache_env(cache), stdin=stdin)
    assert cold.stdout == warm.stdout == off.stdout
    oracle = subprocess.run([need_tool("llvm-symbolizer"), f"--obj={rust_unpacked}"], input=stdin,
                            capture_output=True, text=True, check=True).stdout
    exp, got = blocks(oracle), blocks(warm.stdout)
    assert len(exp) == len(got) == len(addrs)
    assert all(same_block(e, g) for e, g in zip(exp, got))
    inlined = sum(len(g) // 2 - 1 for g in got)
    assert inlined > 100

    alone = tmp_path / "alone" / rust_unpacked.name
    alone.parent.mkdir()
    shutil.copy(rust_unpacked, alone)
    without = symtool("symbolize", "--obj", alone, env=cache_env(tmp_path / "other"), stdin=stdin)
    assert sum(len(g) // 2 - 1 for g in blocks(without.stdout)) < inlined  # no .dwo: fewer frames
    assert not symcache_files(tmp_path / "other")  # an answer missing split units is not cached
    from_cache = symtool("symbolize", "--obj", alone, env=cache_env(cache), stdin=stdin)
    assert from_cache.stdout == warm.stdout


def _cell_starts(reader, lo: int, hi: int) -> list[int]:
    """One address per range the reader reports over [lo, hi) (addresses, not RVAs)."""
    out, a = [], lo
    while a < hi:
        out.append(a)
        _res, _start, end = reader.symbolize_extent(a - reader.load_bias)
        a = max(end + reader.load_bias, a + 1)
    return out


def _fill_then_answer_warm(open_one, path: Path, starts: list[int], every: list[int], truth: list) -> list:
    """A cold CachedSymbolizer asks ``starts`` (one RVA per range); a warm one then answers
    ``every`` RVA as ``truth`` says, all from the file: the reader is opened once, cold.  The
    cold answers."""
    from symtool.store.symcache import CachedSymbolizer

    opens = []

    def open_reader():
        opens.append(1)
        return open_one()

    with CachedSymbolizer(open_reader, path, "test:ranges", 1 << 30) as cold:
        cold_answers = _answers(cold, starts)
    assert len(opens) == 1
    with CachedSymbolizer(open_reader, path, "test:ranges", 1 << 30) as warm:
        assert _answers(warm, every) == truth
        assert warm.hits == len(every)
    assert len(opens) == 1  # the warm run never opened the debug file
    return cold_answers


def test_ranges_answer_every_byte_of_text_without_the_reader(c_program, tmp_path):
    """A cold run asks one address per range; a warm run then asks every byte of .text: the
    reader is never opened, and every answer is a fresh reader's for that byte, and
    llvm-symbolizer's (warm, from another process)."""
    from symtool.formats.dwarf_symbols import DwarfSymbolizer

    lo, hi = text_range(c_program)
    with DwarfSymbolizer(c_program) as sym:
        every = [a - sym.load_bias for a in range(lo, hi)]
        truth = _answers(sym, every)
        addresses = _cell_starts(sym, lo, hi)
        starts = [a - sym.load_bias for a in addresses]
    assert len(starts) < len(every) // 3  # ranges, not bytes
    cold_answers = _fill_then_answer_warm(lambda: DwarfSymbolizer(c_program), tmp_path / "prog.symc", starts,
                                          every, truth)
    assert cold_answers == [truth[every.index(r)] for r in starts]

    cache = tmp_path / "cache"
    stdin = "".join(f"{a:#x}\n" for a in range(lo, hi))
    symtool("symbolize", "--obj", c_program, *map(hex, addresses), env=cache_env(cache))
    warm_cli = symtool("symbolize", "--obj", c_program, env=cache_env(cache), stdin=stdin)
    assert warm_cli.returncode == 0, warm_cli.stderr
    oracle = subprocess.run([need_tool("llvm-symbolizer"), f"--obj={c_program}"], input=stdin,
                            capture_output=True, text=True, check=True).stdout
    exp, got = blocks(oracle), blocks(warm_cli.stdout)
    assert len(exp) == len(got) == hi - lo
    assert all(same_block(e, g) for e, g in zip(exp, got))


def test_rust_ranges_answer_new_addresses_warm_with_inline_frames(rust_unpacked, tmp_path):  # noqa: F811
    """The Rust program (inline chains from its .dwo files): a cold run asks one address per
    range in a few windows of .text; a copy of the binary without its .dwo files (a reader
    opened there would find no inline frames) then answers every byte of those windows from
    the cache, as llvm-symbolizer does on the original."""
    import random

    from symtool.formats.dwarf_symbols import DwarfSymbolizer

    lo, hi = text_range(rust_unpacked)
    rnd = random.Random(3)
    windows = [(a, min(a + 384, hi)) for a in sorted(rnd.randrange(lo, hi) for _ in range(6))]
    with DwarfSymbolizer(rust_unpacked) as sym:
        starts = [a for w in windows for a in _cell_starts(sym, *w)]
    every = [a for w in windows for a in range(*w)]
    cache = tmp_path / "cache"
    cold = symtool("symbolize", "--obj", rust_unpacked, env=cache_env(cache),
                   stdin="".join(f"{a:#x}\n" for a in starts))
    assert cold.returncode == 0, cold.stderr
    alone = tmp_path / "alone" / rust_unpacked.name
    alone.parent.mkdir()
    shutil.copy(rust_unpacked, alone)
    stdin = "".join(f"{a:#x}\n" for a in every)
    warm = symtool("symbolize", "--obj", alone, env=cache_env(cache), stdin=stdin)
    assert warm.returncode == 0, warm.stderr
    oracle = subprocess.run([need_tool("llvm-symbolizer"), f"--obj={rust_unpacked}"], input=stdin,
                            capture_output=True, text=True, check=True).stdout
    exp, got = blocks(oracle), blocks(warm.stdout)
    assert len(exp) == len(got) == len(every)
    differ = [(hex(a), e, g) for a, e, g in zip(every, exp, got) if not same_block(e, g)]
    assert not differ, f"{len(differ)} of {len(every)} differ: {differ[:3]}"
    assert sum(len(g) // 2 - 1 for g in got) > 100  # inline frames, from the cache alone


INLINING_C_FOR_PDB = r"""
static inline int sq(int x) { return x * x; }
__attribute__((always_inline)) static inline int twice(int x) { return sq(x) + sq(x + 1); }
static inline unsigned hash(const char *s) { unsigned h = 5381; while (*s) h = h * 33 + (unsigned char)*s++; return h; }
static inline unsigned len(const char *s) { unsigned n = 0; while (s[n]) n++; return n; }
int compute(int argc, char **argv) {
    int total = 0;
    for (int i = 0; i < argc; i++) total += twice(i) + (int)hash(argv[i]) + (int)len(argv[i]);
    return total;
}
int mainCRTStartup(void) { char *a[] = {"x", "yy"}; return compute(2, a); }
"""


@pytest.fixture(scope="module")
def inlining_pdb(tmp_path_factory) -> Path:
    """A PDB with inline sites (S_INLINESITE binary annotations): clang -O2 -gcodeview, lld-link."""
    d = tmp_path_factory.mktemp("pdb-inline")
    (d / "w.c").write_text(INLINING_C_FOR_PDB)
    subprocess.run([need_tool("clang"), "--target=x86_64-pc-windows-msvc", "-g", "-gcodeview", "-O2", "-c", "w.c",
                    "-o", "w.obj"], cwd=d, check=True)
    subprocess.run([need_tool("lld-link"), "/debug", "/nodefaultlib", "/entry:mainCRTStartup", "/subsystem:console",
                    "w.obj", "/out:w.exe", "/pdb:w.pdb"], cwd=d, check=True, capture_output=True)
    return d / "w.pdb"


@pytest.mark.parametrize("which", ["msvc", "clang-inline"])
def test_pdb_ranges_answer_every_byte_of_text_without_the_reader(which, inlining_pdb, tmp_path):
    """The PDB reader's ranges: filled with one address per range, the cache answers every
    byte of the first section as a fresh reader does, without opening the PDB."""
    from symtool.formats.pdb_symbols import PdbSymbolizer

    pdb = FIXTURES_DIR / "pe-pdb" / "crash.pdb" if which == "msvc" else inlining_pdb
    with PdbSymbolizer(pdb) as reader:
        vaddr, size = reader.sections[0]
        every = list(range(vaddr, vaddr + size))
        truth = _answers(reader, every)
        starts, rva = [], vaddr
        while rva < vaddr + size:
            starts.append(rva)
            rva = reader.symbolize_extent(rva)[2]
    assert len(starts) < len(every) // 3
    if which == "clang-inline":
        assert any(t is not None and len(t[-1]) > 1 for t in truth)  # inline frames
    _fill_then_answer_warm(lambda: PdbSymbolizer(pdb), tmp_path / "pdb.symc", starts, every, truth)


def test_no_symbol_cache_option_reads_and_writes_nothing(c_program, tmp_path):
    lo, _hi = text_range(c_program)
    cache = tmp_path / "cache"
    res = symtool("symbolize", "--no-symbol-cache", "--obj", c_program, hex(lo), env=cache_env(cache))
    assert res.returncode == 0 and res.stdout.strip() and not symcache_files(cache)
    assert "--no-symbol-cache" in symtool("stack", "--help", env=cache_env(cache)).stdout


def test_json_output_is_the_same_warm(c_program, tmp_path):
    lo, hi = text_range(c_program)
    addrs = [hex(a) for a in range(lo, hi, 7)]
    cache = tmp_path / "cache"
    off = symtool("symbolize", "--obj", c_program, "--json", *addrs, env=cache_env(cache, on=False))
    cold = symtool("symbolize", "--obj", c_program, "--json", *addrs, env=cache_env(cache))
    warm = symtool("symbolize", "--obj", c_program, "--json", *addrs, env=cache_env(cache))
    assert json.loads(off.stdout) == json.loads(cold.stdout) == json.loads(warm.stdout)
    assert json.loads(warm.stdout)["addresses"][0]["frames"]


def test_pdb_answers_are_the_same_through_the_cache(tmp_path):
    """A PE image's PDB (MSVC-built fixture), found by CodeView: cache off, cold and warm
    give one text."""
    pe = FIXTURES_DIR / "pe-pdb"
    image = pe / "dump_syms_regtest64.exe"
    rvas = [hex(0x1000 + 5 * i) for i in range(200)]
    cache = tmp_path / "cache"
    runs = [symtool("symbolize", "--obj", image, "--relative", *rvas, env=cache_env(cache, on=on), cwd=tmp_path)
            for on in (False, True, True)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    assert runs[0].stdout == runs[1].stdout == runs[2].stdout
    assert [f.name[:4] for f in symcache_files(cache)] == ["pdb-"]
    named = [b[0] for b in blocks(runs[2].stdout) if b[0] != "??"]
    assert len(named) > 150  # the PDB's own answers (test_symbolize checks those against llvm-symbolizer)


def test_rust_pe_answers_are_the_same_through_the_cache(tmp_path):
    """A Rust std program's PE + PDB: the outer frames named by their public symbols as LLVM
    demangles them (kept in the cache as linkage names): off, cold and warm give one text."""
    from std_corpus import CorpusUnavailable, build_corpus

    try:
        image = build_corpus() / "unwrap_none.exe"
    except CorpusUnavailable as err:
        pytest.skip(str(err))
    rvas = [hex(0x1000 + 37 * i) for i in range(1500)]
    cache = tmp_path / "cache"
    runs = [symtool("symbolize", "--obj", image, "--relative", "--offline", *rvas, env=cache_env(cache, on=on),
                    cwd=tmp_path) for on in (False, True, True)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    assert runs[0].stdout == runs[1].stdout == runs[2].stdout
    assert [f.name[:4] for f in symcache_files(cache)] == ["pdb-"]
    outer = [b[-2] for b in blocks(runs[2].stdout)]
    assert sum(bool(re.search(r"::h[0-9a-f]{16}( \(\.llvm\.\d+\))?$", n)) for n in outer) > 500


def _answers(sym, rvas):
    return [_fields(sym.symbolize(rva)) for rva in rvas]


def _fields(res):
    return None if res is None else (res.section, res.offset, res.symbol, res.symbol_offset, res.module,
                                     res.short_name, [(f.function, f.file, f.line, f.column, f.mangled)
                                                       for f in res.frames])


@pytest.fixture(scope="module")
def filled(c_program, tmp_path_factory):
    """(cache directory, its one file's bytes, rvas, the reader's own answers); ``texts``: the
    reader's answers as `symbolize` prints them."""
    from symtool.commands.symbolize import TextBlocks
    from symtool.formats.dwarf_symbols import DwarfSymbolizer
    from symtool.store.symcache import CachedSymbolizer

    cache = tmp_path_factory.mktemp("filled")
    with DwarfSymbolizer(c_program) as sym:
        lo, hi = text_range(c_program)
        rvas = [a - sym.load_bias for a in range(lo, hi, 3)]
        truth = _answers(sym, rvas)
        texts = [TextBlocks().block(sym.symbolize(rva)) for rva in rvas]
    path = cache / "prog.symc"
    cached = CachedSymbolizer(lambda: DwarfSymbolizer(c_program), path, "elf:test", 1 << 30)
    assert _answers(cached, rvas) == truth
    cached.close()
    return Filled(path, path.read_bytes(), rvas, truth, texts)


class Filled:
    def __init__(self, path, data, rvas, truth, texts):
        self.path, self.data, self.rvas, self.truth, self.texts = path, data, rvas, truth, texts

    def __iter__(self):
        return iter((self.path, self.data, self.rvas, self.truth))

    def __repr__(self):  # hypothesis prints the fixture of a failing example
        return f"Filled({self.path}, {len(self.data)} bytes, {len(self.rvas)} addresses)"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(op=st.sampled_from(["truncate", "flip", "append", "zero"]), where=st.floats(0, 1), byte=st.integers(1, 255))
@example(op="zero", where=0.99, byte=1)  # zeroed strings at the end: CRC-32 of nothing is 0
def test_a_damaged_cache_file_is_rebuilt_with_the_same_answers(filled, c_program, tmp_path, op, where, byte):
    from symtool.commands.symbolize import TextBlocks
    from symtool.formats.dwarf_symbols import DwarfSymbolizer
    from symtool.formats.symcache import CacheFile
    from symtool.store.symcache import CachedSymbolizer

    path, data, rvas, truth = filled
    k = min(int(where * len(data)), len(data) - 1)
    if op == "truncate":
        bad = data[:k]
    elif op == "flip":
        bad = data[:k] + bytes([data[k] ^ byte]) + data[k + 1:]
    elif op == "append":
        bad = data + bytes([byte]) * (k % 64 + 1)
    else:
        bad = data[:k] + bytes(min(64, len(data) - k)) + data[k + 64:]
    damaged = tmp_path / "damaged.symc"
    damaged.write_bytes(bad)
    cached = CachedSymbolizer(lambda: DwarfSymbolizer(c_program), damaged, "elf:test", 1 << 30)
    assert _answers(cached, rvas) == truth
    cached.close()
    # The same file asked in one batch (what `symbolize` does): damaged records answered by the reader.
    batch = tmp_path / "damaged-batch.symc"
    batch.write_bytes(bad)
    with CachedSymbolizer(lambda: DwarfSymbolizer(c_program), batch, "elf:test", 1 << 30) as many:
        assert [_fields(res) for res in many.symbolize_many(rvas)] == truth
    # And worded straight from the records (a warm `symbolize`'s text): the reader's text.
    text = tmp_path / "damaged-text.symc"
    text.write_bytes(bad)
    with CachedSymbolizer(lambda: DwarfSymbolizer(c_program), text, "elf:test", 1 << 30) as many:
        assert ["".join(pieces) for pieces in many.render_many(rvas, TextBlocks())] == filled.texts
    rebuilt = CacheFile(damaged, "elf:test", 1 << 30)
    try:
        assert len(rebuilt.entries()) == rebuilt.count  # every record checks out
        assert all(rebuilt.lookup(rva)[0] for rva in rvas)  # and every address asked is covered
    finally:
        rebuilt.close()


def test_text_worded_from_records_is_the_readers_past_the_memo_bounds(filled, c_program, tmp_path, monkeypatch):
    """A warm `symbolize` words its text from the records (CacheFile.render_many), keeping each
    frame's and each entry's text: the same text as the reader's answers, again when the memos
    start over (bound 3), for the addresses of one range asked again and encoded; a renderer
    of another kind is not given the first one's text."""
    from symtool.commands.symbolize import EncodedBlocks, TextBlocks
    from symtool.formats import symcache as fmt
    from symtool.formats.symcache import MISS, CacheFile

    monkeypatch.setattr(fmt, "MAX_MEMO", 3)
    path, _data, rvas, _truth = filled
    f = CacheFile(path, "elf:test", 1 << 30)

    def texts(rvas, renderer):
        return [pieces if pieces is MISS else renderer.join(pieces) for pieces in f.render_many(rvas, renderer)]

    try:
        for _ in range(2):
            assert texts(rvas, TextBlocks()) == filled.texts
        renderer = TextBlocks()
        assert texts(rvas + rvas[::-1], renderer) == filled.texts + filled.texts[::-1]

        class Upper(TextBlocks):
            unknown = TextBlocks.unknown.upper()

            def frame(self, function, file, line, column):
                return super().frame(function, file, line, column).upper()

        assert texts(rvas, Upper()) == [t.upper() for t in filled.texts]
        assert texts(rvas, EncodedBlocks("utf-8", "strict")) == [t.encode() for t in filled.texts]
        assert texts([max(rvas) + (1 << 40), -1], renderer) == [MISS, MISS]
    finally:
        f.close()


def test_a_foreign_or_other_version_file_is_not_trusted(filled, c_program, tmp_path):
    from symtool.formats import symcache as fmt
    from symtool.formats.dwarf_symbols import DwarfSymbolizer
    from symtool.store.symcache import CachedSymbolizer

    path, data, rvas, truth = filled
    foreign = tmp_path / "foreign.symc"
    foreign.write_bytes(data)  # a whole, valid file of another identity
    cached = CachedSymbolizer(lambda: DwarfSymbolizer(c_program), foreign, "elf:another", 1 << 30)
    assert cached.rebuilt and "another debug file" in cached.rebuilt
    assert _answers(cached, rvas) == truth
    cached.close()
    other_version = bytearray(fmt.build("elf:test", {}))
    other_version[8:12] = (fmt.VERSION + 1).to_bytes(4, "little")
    with pytest.raises(fmt.CacheFileError):
        (tmp_path / "v.symc").write_bytes(bytes(other_version))
        fmt.CacheFile(tmp_path / "v.symc", "elf:test", 1 << 30)


def test_two_processes_fill_one_cache_at_once(c_program, tmp_path):
    """Two writers at once: the file left is complete (one of them, or both merged), and every
    answer afterwards is the reader's."""
    lo, hi = text_range(c_program)
    everything = [hex(a) for a in range(lo, hi)]
    halves = [everything[0::2], everything[1::2]]
    cache = tmp_path / "cache"
    env = cache_env(cache)
    procs = [subprocess.Popen([sys.executable, "-m", "symtool", "symbolize", "--obj", str(c_program), *h],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for h in halves]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    from symtool.formats.symcache import CacheFile

    (path,) = symcache_files(cache)
    assert not [p for p in path.parent.iterdir() if p.suffix != ".symc"]  # no temp file left
    f = CacheFile(path, path.stem.replace("elf-", "elf:", 1), 1 << 30)
    try:
        entries = f.entries()
        assert len(entries) == f.count
        # Each half touches every range of .text (most hold several bytes): the file holds the
        # reader's ranges, whichever writer won.
        from symtool.formats.dwarf_symbols import DwarfSymbolizer
        with DwarfSymbolizer(c_program) as sym:
            cells = {sym.symbolize_extent(a - sym.load_bias)[1:] for a in range(lo, hi)}
        assert set(entries) == cells
    finally:
        f.close()
    off = symtool("symbolize", "--obj", c_program, *everything, env=cache_env(cache, on=False))
    warm = symtool("symbolize", "--obj", c_program, *everything, env=env)
    assert warm.stdout == off.stdout


def _big_answer(rva: int, size: int):
    from symtool.formats.symbols import Frame, Symbolized

    return Symbolized(rva, 1, rva, [Frame("f" * size, "a.c", 1, 1)])


def test_cache_clean_trims_least_recently_used_first(tmp_path):
    from symtool.formats import symcache as fmt

    cache = tmp_path / "cache"
    d = cache / "000SymCache"
    d.mkdir(parents=True)
    names = [f"elf-{i:040x}.symc" for i in range(4)]
    for age, name in enumerate(names):
        p = d / name
        p.write_bytes(fmt.build("elf:" + name[4:-5], {(0x1000, 0x1001): _big_answer(0x1000, 5000)}))
        os.utime(p, (1_000_000 + age, 1_000_000 + age))  # names[0] least recently used
    size = (d / names[0]).stat().st_size
    res = symtool("cache", "clean", "--json", env=cache_env(cache, SYMTOOL_CACHE_MAX=str(2 * size + 10)))
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["removed_files"] == names[:2] and data["files"] == 2 and data["bytes"] <= data["max_bytes"]
    assert sorted(p.name for p in d.iterdir()) == names[2:]
    stale, fresh = d / ".symtool-tmp-dead", d / ".symtool-tmp-writing"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(stale, (1_000_000, 1_000_000))  # a writer that died long ago
    assert symtool("cache", "clean", env=cache_env(cache)).returncode == 0
    assert not stale.exists() and fresh.exists()  # another process may still be writing that one
    fresh.unlink()
    res = symtool("cache", "clean", "--all", env=cache_env(cache))
    assert res.returncode == 0 and not list(d.iterdir())
    bad = symtool("cache", "clean", "--json", env=cache_env(cache, SYMTOOL_CACHE_MAX="lots"))
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "SYMTOOL_CACHE_MAX" in bad.stderr
    assert json.loads(bad.stdout)["error"]["exit_code"] == 2
    assert "Examples" in symtool("cache", "clean", "--help", env=cache_env(cache)).stdout


def test_writing_past_the_bound_evicts_older_identities(c_program, tmp_path):
    from symtool.formats import symcache as fmt

    cache = tmp_path / "cache"
    d = cache / "000SymCache"
    d.mkdir(parents=True)
    old = d / f"elf-{0:040x}.symc"
    old.write_bytes(fmt.build("elf:" + old.stem[4:], {(0x1000, 0x1001): _big_answer(0x1000, 20000)}))
    os.utime(old, (1_000_000, 1_000_000))
    lo, _hi = text_range(c_program)
    res = symtool("symbolize", "--obj", c_program, hex(lo), env=cache_env(cache, SYMTOOL_CACHE_MAX="15000"))
    assert res.returncode == 0, res.stderr
    assert [p.name for p in symcache_files(cache)] != [old.name] and not old.exists()


@pytest.mark.parametrize("command", ["stack", "dumps"])
def test_stack_and_dumps_answer_the_same_through_the_cache(tmp_path, command):
    """A Windows minidump with its PDB in a build directory: cache off, cold and warm give the
    same JSON (inline frames included), and the PDB's cache file is written by the first."""
    build = tmp_path / "build"
    build.mkdir()
    for name in ("crash.exe", "crash.pdb"):
        shutil.copy(FIXTURES_DIR / "pe-pdb" / name, build / name)
    dump = FIXTURES_DIR / "dumps" / "symbolic-windows-mini.dmp"
    cache = tmp_path / "cache"
    runs = [symtool(command, "--json", "--offline", "-b", build, dump, env=cache_env(cache, on=on), cwd=tmp_path)
            for on in (False, True, True)]
    assert all(r.returncode in (0, 1) for r in runs), runs[0].stderr
    assert runs[0].stdout == runs[1].stdout == runs[2].stdout
    assert "crash.pdb" in runs[2].stdout and '"inline": true' in runs[2].stdout
    assert [f.name[:4] for f in symcache_files(cache)] == ["pdb-"]


def test_a_debug_file_that_fails_to_open_is_not_reopened_per_address(tmp_path):
    from symtool.errors import FormatError
    from symtool.store.symcache import CachedSymbolizer

    opened = []

    def broken():
        opened.append(1)
        raise FormatError("malformed PDB", "x.pdb")

    sym = CachedSymbolizer(broken, tmp_path / "x.symc", "pdb:X", 1 << 20, {"debug_id": None})
    for rva in (1, 2, 3):
        with pytest.raises(FormatError):
            sym.symbolize(rva)
    assert len(opened) == 1
    sym.close()
    assert not (tmp_path / "x.symc").exists()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(max_size=400), at=st.integers(0, 10_000), rva=st.integers(0, 0x3000))
def test_a_hostile_file_with_valid_checksums_is_refused_or_read_within_bounds(tmp_path, junk, at, rva):
    """A writer who knows the format (every CRC recomputed over bytes of its choosing): opening
    and looking up give CacheFileError or an answer, nothing else, and no unbounded work."""
    import struct as _struct
    import zlib

    from symtool.commands.symbolize import TextBlocks
    from symtool.formats import symcache as fmt
    from symtool.formats.symbols import Frame, Symbolized

    good = fmt.build("elf:h", {(0x1000 + k, 0x1001 + k): Symbolized(0x1000 + k, 1, k, [Frame("f", "a.c", k, 2)])
                               for k in range(0, 0x2000, 0x400)})
    head = fmt.HEADER.size
    body = bytearray(good[head:])
    k = at % (len(body) + 1)
    body[k:k + len(junk)] = junk
    fields = list(fmt.HEADER.unpack_from(good, 0))
    count = fields[3]
    index = bytes(body[:count * fmt.ENTRY.size])
    # Sizes made to match what is there; each index entry's record CRC recomputed.
    records_at = count * fmt.ENTRY.size
    fields[4] = max(0, min(fields[4], len(body) - records_at))
    fields[5] = max(0, len(body) - records_at - fields[4])
    fixed = bytearray(index)
    for e in range(count):
        start, end, off, length, _crc = fmt.ENTRY.unpack_from(fixed, e * fmt.ENTRY.size)
        rec = bytes(body[records_at + off:records_at + off + length]) if off + length <= fields[4] else b""
        fmt.ENTRY.pack_into(fixed, e * fmt.ENTRY.size, start, end, off, length, zlib.crc32(rec))
    body[:len(fixed)] = fixed
    fields[6] = zlib.crc32(bytes(fixed))
    fields[7] = 0
    header = bytearray(fmt.HEADER.pack(*fields))
    _struct.pack_into("<I", header, head - 4, zlib.crc32(bytes(header[:-4])))
    path = tmp_path / "h.symc"
    path.write_bytes(bytes(header) + bytes(body))
    try:
        f = fmt.CacheFile(path, "elf:h", 1 << 20)
    except fmt.CacheFileError:
        return
    try:
        try:
            found, answer = f.lookup(rva)
        except fmt.CacheFileError:
            return
        assert answer is None or isinstance(answer, Symbolized)
        pieces = f.render_many([rva], TextBlocks())[0]
        assert pieces is fmt.MISS or isinstance("".join(pieces), str)
        f.entries()
    finally:
        f.close()


def test_macho_dsym_answers_are_the_same_through_the_cache(mac_builds, tmp_path):
    """The samples' arm64 macOS build with its dSYM (test_symbolize_cli checks these answers
    against llvm-symbolizer on every byte): cache off, cold and warm give one text, keyed by UUID."""
    from test_symbolize_cli import macho_text_range

    binary = mac_builds.arm64.bin()
    lo, hi = macho_text_range(binary)
    addrs = [hex(a) for a in range(lo, hi, 7)]
    stdin = "\n".join(addrs) + "\n"
    cache = tmp_path / "cache"
    runs = [symtool("symbolize", "--obj", binary, env=cache_env(cache, on=on), stdin=stdin) for on in (False, True, True)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    assert runs[0].stdout == runs[1].stdout == runs[2].stdout and len(blocks(runs[2].stdout)) == len(addrs)
    assert [f.name[:6] for f in symcache_files(cache)] == ["macho-"]


_ranges = st.lists(st.tuples(st.integers(0, 200), st.integers(1, 40)).map(lambda t: (t[0], t[0] + t[1])),
                   max_size=12)


@settings(max_examples=200, deadline=None)
@given(old=_ranges, new=_ranges)
def test_merged_ranges_are_disjoint_and_keep_every_new_answer(old, new):
    """merge_ranges: what the file format holds (disjoint ranges), every address of a new range
    answered by a new entry that held it, old entries kept only where no new one reaches."""
    from symtool.store.symcache import merge_ranges

    reach, disjoint = -1, []
    for s, e in sorted(old):  # a file's entries are disjoint
        if s >= reach:
            disjoint.append((s, e))
            reach = e
    old_entries = {r: ("old", r) for r in disjoint}
    new_entries = {r: ("new", r) for r in new}
    merged = merge_ranges(old_entries, new_entries)
    spans = sorted(merged)
    assert all(s < e for s, e in spans)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    for (s, e), answer in merged.items():
        src_s, src_e = answer[1]
        assert src_s <= s and e <= src_e  # a piece of the range the answer was given for
        if answer[0] == "old":
            assert not any(ns < e and s < ne for ns, ne in new)
    for ns, ne in new:
        for a in range(ns, ne):
            holder = [(s, e) for s, e in spans if s <= a < e]
            assert len(holder) == 1 and merged[holder[0]][0] == "new"
