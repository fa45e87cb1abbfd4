"""Source URLs of frames: the PDB's srcsrv stream (any indexer's: %var% expansion as
srcsrv.dll does it) and its sourcelink stream as the fallback, read back from real
indexed PDBs and compared with the raw streams llvm-pdbutil exports; then `symtool
stack` on a real dump whose PDB was indexed; hostile texts never crash the reader."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import FIXTURES_DIR, need_tool
from symtool.cli import app
from symtool.formats.msf_write import write_named_streams
from symtool.formats.pdb import iter_source_files, open_msf
from symtool.srcindex.lookup import SourceIndex, SourceIndexCache, read_source_index
from symtool.srcindex.streams import (MAX_EXPANSION, read_sourcelink, read_srcsrv, representable, srcsrv_text)

PE_PDB = FIXTURES_DIR / "pe-pdb"
CRASH_INDEX = "3249D99D0C4049318610F4E4FB0B69361"
# Prefix case differs from the PDB's on purpose; the URLs carry literal '%' (srcsrv writes '%%').
MAPS = {"C:\\projects\\breakpad-tools\\": "https://example.com/bp/%41b/",
        "F:/DD/": "https://example.com/dd/",
        "c:\\program files (x86)\\": "https://example.com/pf/"}
FUZZ = settings(max_examples=int(os.environ.get("SYMTOOL_FUZZ_EXAMPLES", "300")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def export(pdb: Path, name: str, tmp: Path) -> str:
    out = tmp / f"export-{name}"
    proc = subprocess.run([need_tool("llvm-pdbutil"), "export", f"--stream={name}", f"--out={out}", str(pdb)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out.read_bytes().decode("utf-8")


def raw_entries(text: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Oracle, straight from the text: the variables section and each source line's fields."""
    variables, entries, section = {}, {}, None
    for line in re.split(r"\r?\n", text):  # symtool writes CRLF, this pdbstr run wrote LF
        if line.startswith("SRCSRV:"):
            section = line.split()[1]
        elif section == "variables" and "=" in line:
            k, v = line.split("=", 1)
            variables[k] = v
        elif section == "source" and line:
            fields = line.split("*")
            entries[fields[0].replace("%%", "%")] = fields
    return variables, entries


def indexed_copy(src: Path, tmp: Path, maps: dict[str, str] = MAPS) -> Path:
    pdb = tmp / src.name
    shutil.copyfile(src, pdb)
    args = ["srcindex", str(pdb)] + [a for p, u in maps.items() for a in ("--map", f"{p}={u}")]
    old = os.getcwd()
    os.chdir(tmp)  # outside any workspace or git checkout: only the maps apply
    try:
        res = CliRunner().invoke(app, args, env={"CARGO_HOME": str(tmp / "nocargo")})
    finally:
        os.chdir(old)
    assert res.exit_code in (0, 1), res.output  # 1: some files are mapped nowhere
    return pdb


def pdb_files(pdb: Path) -> list[str]:
    f, msf = open_msf(pdb)
    with f:
        return [sf.path for sf in iter_source_files(msf)]


# -- real indexed PDBs ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["crash.pdb", "dump_syms_regtest64.pdb"])
def test_symtool_indexed_pdb_urls_are_llvm_pdbutils(name, tmp_path):
    pdb = indexed_copy(PE_PDB / name, tmp_path)
    variables, entries = raw_entries(export(pdb, "srcsrv", tmp_path))
    assert variables["SRCSRVTRG"] == "%var2%"
    documents = json.loads(export(pdb, "sourcelink", tmp_path))["documents"]
    index = read_source_index(pdb)
    files = pdb_files(pdb)
    mapped = 0
    for path in files:
        want = entries[path][1].replace("%%", "%") if path in entries else None
        assert index.url_for(path) == want, path
        if want is None:
            continue
        mapped += 1
        assert "%41b" not in want or "%%41b" in entries[path][1]
        assert documents[path] == want  # the Source Link stream says the same
        assert index.url_for(path.upper()) == want  # Windows paths: any case
        folded = path.lower().replace("\\", "/")
        base = next(u for p, u in MAPS.items() if folded.startswith(p.lower().replace("\\", "/")))
        assert want.startswith(base)
    assert mapped >= 10 and len(entries) == mapped
    assert index.url_for("c:\\nowhere\\x.rs") is None and index.url_for(None) is None
    # Source Link alone (the fallback when srcsrv lists nothing) gives the same URLs.
    alone = SourceIndex(sourcelink=index.sourcelink)
    assert {p: alone.url_for(p) for p in entries} == {p: index.url_for(p) for p in entries}


def test_pdbstr_srcsrv_variables_expanded_as_srcsrv_does(tmp_path):
    pdb = PE_PDB / "crash_with_srcsrv.pdb"
    text = export(pdb, "srcsrv", tmp_path)
    variables, entries = raw_entries(text)
    assert variables["SRCSRVTRG"] == "%targ%\\%var2%\\%fnbksl%(%var3%)"  # Perforce, by Microsoft's pdbstr

    def oracle(fields: list[str]) -> str:  # srcsrv.dll: %varN% are the fields, %fnbksl%(x) turns / into \
        trg = re.sub(r"%var(\d+)%", lambda m: fields[int(m[1]) - 1], variables["SRCSRVTRG"])
        return re.sub(r"%fnbksl%\(([^)]*)\)", lambda m: m[1].replace("/", "\\"), trg)

    index = read_source_index(pdb)
    assert index.srcsrv is not None and index.srcsrv.version == "1" and index.sourcelink is None
    assert len(entries) == 4
    files = pdb_files(pdb)
    listed = 0
    for path in files:
        fields = entries.get(path)
        want = oracle(fields) if fields else None
        assert index.url_for(path) == want, path
        if want:
            listed += 1
            # %targ% (the debugger's source cache) is the debugger's to fill in; the rest is expanded.
            assert want.startswith("%targ%\\P4_SERVER\\depot\\") and "/" not in want
            assert index.url_for(path.upper()) == want
    assert listed == len(entries)  # every entry names a file the PDB records


def test_unindexed_pdb_and_cache_reads_each_pdb_once(tmp_path, monkeypatch):
    from symtool.srcindex import lookup

    calls = []
    real = lookup.read_source_index
    monkeypatch.setattr(lookup, "read_source_index", lambda p, n=None: calls.append(p) or real(p, n))
    cache = SourceIndexCache()
    plain = PE_PDB / "crash.pdb"
    for _ in range(3):
        assert cache.url_for(plain, "c:\\projects\\breakpad-tools\\windows\\crash\\main.cpp") is None
    assert not cache.get(plain).indexed and calls == [os.fspath(plain)]
    bad = tmp_path / "bad.pdb"
    bad.write_bytes(b"garbage")
    assert cache.url_for(bad, "x") is None and cache.get(bad).problems


# -- the text languages --------------------------------------------------------------------------

def test_srcsrv_language():
    text = "\r\n".join([
        "SRCSRV: ini ------", "VERSION=2", "SRCSRV: variables ------",
        "HOST=https://h", "Repo=%HOST%/r", "TRG=%repo%/%var3%/%fnfile%(%var2%)", "SRCSRVTRG=%fnvar%(%var4%)",
        "SRCSRV: source files ------",
        "C:\\Src\\A.rs*dir/sub/a.rs*abc*TRG", "c:\\src\\b.rs*b.rs*100%%25*TRG",
        "/rustc/x/lib.rs*lib.rs*c*TRG", "c:\\src\\c.rs*c.rs*c*NOPE",
        "SRCSRV: end ------", "c:\\after.rs*x*y*TRG"])
    idx = read_srcsrv(text)
    assert idx.target("C:\\Src\\A.rs") == "https://h/r/abc/a.rs"
    assert idx.target("c:\\SRC\\a.RS") == "https://h/r/abc/a.rs"  # Windows path: any case
    assert idx.target("c:\\src\\b.rs") == "https://h/r/100%25/b.rs"
    assert idx.target("/rustc/x/lib.rs") == "https://h/r/c/lib.rs"
    assert idx.target("/RUSTC/x/lib.rs") is None  # not a Windows path: exactly as recorded
    assert idx.target("c:\\src\\c.rs") is None  # %fnvar%(NOPE): no such variable, no target
    assert idx.target("c:\\after.rs") is None
    # Round trip of symtool's own writer, '%' and all.
    entries = [("c:\\a 100%\\x.rs", "https://e/a%20100%25/x.rs"), ("\\\\srv\\share\\k\\x.rs", "\\\\srv\\store\\x")]
    assert read_srcsrv(srcsrv_text(entries)).items() == entries


def test_srcsrv_hostile_variables_are_bounded():
    def trg(variables: list[str], target: str = "%a%") -> str | None:
        text = "\n".join(["SRCSRV: variables -", *variables, f"SRCSRVTRG={target}", "SRCSRV: source files -",
                          "c:\\x.rs*v2", "SRCSRV: end -"])
        return read_srcsrv(text).target("c:\\x.rs")

    assert trg(["a=%a%"]) is None  # a cycle
    assert trg(["a=%b%", "b=%a%x"]) is None
    chain = [f"v{i}=%v{i + 1}%%v{i + 1}%" for i in range(40)] + ["v40=x"]  # 2**40 characters
    assert trg(chain, "%v0%") is None
    empty = [f"v{i}=%v{i + 1}%%v{i + 1}%%v{i + 1}%" for i in range(15)] + ["v15="]  # 3**15 empty expansions
    assert trg(empty, "%v0%") is None
    assert trg(["a=" + "y" * (MAX_EXPANSION + 1)]) is None
    assert trg(["a=%fnbksl%(%fnfile%(a/b/c)"]) == "%fnbksl%(c"  # unbalanced: left as written
    assert trg(["a=%var99%%var2%"]) == "%var99%v2"
    assert trg([], "%fnvar%(%fnvar%(%fnvar%(a)))") is None  # empty: no target


def test_sourcelink_language():
    sl = read_sourcelink(json.dumps({"documents": {
        "C:\\src\\*": "https://h/src/*", "c:/src/vendor/*": "https://v/*?raw=1", "D:\\one.rs": "https://o/one.rs",
        "bad*mid*": "https://x/*", "E:\\*": "https://no-star/", 1: "x", "F:\\x": 3}}))
    assert sl.url("C:\\src\\a\\b.rs") == "https://h/src/a/b.rs"
    assert sl.url("c:/SRC/a/b.rs") == "https://h/src/a/b.rs"  # either separator, any case
    assert sl.url("c:\\src\\Vendor\\z\\Q.rs") == "https://v/z/Q.rs?raw=1"  # the longest prefix wins
    assert sl.url("d:/ONE.rs") == "https://o/one.rs"
    assert sl.url("E:\\x.rs") is None and sl.url("Z:\\x.rs") is None
    for bad in ("", "nope", "[]", '{"documents": 3}', "[" * 100000, '{"documents": {"a*": "*"}' + "}" * 3):
        assert read_sourcelink(bad).url("a") is None


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("%*=\r\nab()fnvarbkslfiletrgSRCSRV: 12\\/")), max_size=400))
def test_any_srcsrv_text_reads(text):
    idx = read_srcsrv(text)
    for path, target in idx.items():
        assert target is None or len(target) <= MAX_EXPANSION
        assert idx.target(path.upper()) is None or _windows(path)


def _windows(path: str) -> bool:
    return "\\" in path or bool(re.match(r"^[A-Za-z]:", path))


@FUZZ
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(alphabet="*\\/aB:", max_size=8),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(alphabet="*\\/aB:", max_size=8),
                                                                         c, max_size=4)),
       st.text(alphabet="*\\/aB:", max_size=8))
def test_any_sourcelink_json_reads(doc, path):
    for text in (json.dumps(doc), json.dumps({"documents": doc})):
        url = read_sourcelink(text).url(path)
        assert url is None or isinstance(url, str)


@settings(FUZZ, max_examples=max(20, FUZZ.max_examples // 3))
@given(st.lists(st.tuples(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30)), max_size=8))
def test_symtools_srcsrv_round_trips(entries):
    entries = [(p, t) for p, t in dict(entries).items() if representable(p, t) and p.replace("%%", "%") == p]
    idx = read_srcsrv(srcsrv_text(entries))
    for path, target in entries:
        assert idx.target(path) == target


@settings(FUZZ, max_examples=max(20, FUZZ.max_examples // 10))
@given(st.binary(max_size=3000), st.binary(max_size=3000))
def test_hostile_streams_in_a_real_pdb(tmp_path_factory, srcsrv, sourcelink):
    pdb = tmp_path_factory.mktemp("hs") / "x.pdb"
    shutil.copyfile(FIXTURES_DIR / "symstore-exe" / "inputs" / "dummyprog.pdb", pdb)
    write_named_streams(pdb, {"srcsrv": srcsrv, "sourcelink": sourcelink})
    index = SourceIndexCache().get(pdb)
    assert not index.problems
    for path in pdb_files(pdb)[:5] + ["c:\\x.rs"]:
        index.url_for(path)


# -- symtool stack ---------------------------------------------------------------------------------

def test_stack_shows_each_frames_source_url(tmp_path):
    store = tmp_path / "store"
    entry = store / "crash.pdb" / CRASH_INDEX
    entry.mkdir(parents=True)
    pdb = indexed_copy(PE_PDB / "crash.pdb", tmp_path)
    shutil.copyfile(pdb, entry / "crash.pdb")
    entries = raw_entries(export(pdb, "srcsrv", tmp_path))[1]
    dump = FIXTURES_DIR / "dumps" / "symbolic-windows-mini.dmp"
    env = {"SYMTOOL_STORE": "", "_NT_SYMBOL_PATH": ""}
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        res = CliRunner().invoke(app, ["stack", "--json", "--store", str(store), str(dump)], env=env)
        text = CliRunner().invoke(app, ["stack", "--source-urls", "--store", str(store), str(dump)], env=env)
        plain = CliRunner().invoke(app, ["stack", "--store", str(store), str(dump)], env=env)
        rows = CliRunner().invoke(app, ["dumps", "--json", "--store", str(store), str(dump)], env=env)
        report = CliRunner().invoke(app, ["dumps", "--store", str(store), str(dump)], env=env)
    finally:
        os.chdir(old)
    assert res.exit_code == 0, res.output
    frames = json.loads(res.stdout)["threads"][0]["frames"]
    own = [f for f in frames if f["module"] == "crash.exe" and f["file"]]
    assert len(own) >= 3
    for f in frames:
        want = entries[f["file"]][1].replace("%%", "%") if f["file"] in entries else None
        assert f["source_url"] == want, f
    assert any(f["source_url"] for f in own)
    assert list(frames[0])[-3:] == ["source_url", "frame_pointer", "raw_function"]  # keys added later come last
    # Text: cdb's `k` by default; with --source-urls a line under each frame that has one.
    assert "source:" not in plain.stdout
    lines = text.stdout.splitlines()
    for f in own:
        if f["source_url"]:
            assert f"    source: {f['source_url']}" in lines
    assert [ln for ln in lines if not ln.startswith("    source: ")] == plain.stdout.splitlines()
    assert rows.exit_code in (0, 1), rows.output
    (row,) = json.loads(rows.stdout)
    assert [f["source_url"] for f in row["stack"]] == [f["source_url"] for f in frames]
    # The dumps text report: each bucket's frames, a "source:" line under those with a URL.
    shown = [f for f in frames[:12] if f["source_url"]]
    assert shown
    report_lines = [ln.strip() for ln in report.stdout.splitlines()]
    for f in shown:
        assert f"source: {f['source_url']}" in report_lines, report.stdout
