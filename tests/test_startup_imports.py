"""Start-up: a run imports what its command uses (issue 25, item 5).

Asserted on the set of modules a fresh ``symtool`` process has imported when it exits,
never on time: ``--help`` lists every command (their modules load, the libraries behind
them do not), and ``symtool id`` on an ELF loads the identity readers and nothing of the
network, store-publishing, minidump or PDB-symbolizing code, nor the CLI framework.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ELF = ROOT / "tests" / "fixtures" / "elf-macho" / "crash-me.dwarf5"

# Libraries no identity or help run needs: HTTP clients, cloud SDKs, PE parsers, TOML writers.
NEVER_AT_START = ("requests", "urllib3", "boto3", "botocore", "azure", "pefile", "tomlkit", "http.client", "ssl")
# symtool's own heavy parts that only other commands use.
NOT_FOR_ID = ("symtool.store.publish", "symtool.store.http", "symtool.store.fetch", "symtool.dumps",
              "symtool.stackwalk", "symtool.formats.pdb_symbols", "symtool.formats.minidump",
              "symtool.formats.dwarf_symbols", "symtool.srcindex.index", "symtool.cargo",
              "symtool.commands.stack", "symtool.commands.publish", "symtool.commands.check",
              "symtool.commands.dumps", "symtool.commands.fetch", "symtool.commands.store")

PROBE = (
    "import json, runpy, sys\n"
    "sys.argv = ['symtool'] + json.loads(sys.argv[1])\n"
    "try:\n"
    "    runpy.run_module('symtool', run_name='__main__')\n"
    "except SystemExit as done:\n"
    "    code = done.code\n"
    "else:\n"
    "    code = 0\n"
    "sys.stderr.write('\\nMODULES=' + json.dumps(sorted(sys.modules)) + '\\n')\n"
    "sys.exit(code)\n"
)


def imported_by(*args: str, tmp_path: Path, environ: dict[str, str] | None = None) \
        -> tuple[set[str], subprocess.CompletedProcess]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / ".cache"),
               NO_COLOR="1", **(environ or {}))
    env.pop("_SYMTOOL_COMPLETE", None)
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(list(args))], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    modules = set(json.loads(proc.stderr.rsplit("MODULES=", 1)[1].splitlines()[0]))
    return modules, proc


def _loaded(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def test_help_loads_the_command_modules_not_their_libraries(tmp_path):
    modules, proc = imported_by("--help", tmp_path=tmp_path)
    assert proc.returncode == 0 and "publish" in proc.stdout and "stack" in proc.stdout
    # Every command is listed, so every command module is loaded ...
    assert {"symtool.commands.ident", "symtool.commands.stack", "symtool.commands.publish"} <= modules
    # ... but none of what the commands do.
    assert not _loaded(modules, NEVER_AT_START)
    assert not _loaded(modules, ("symtool.store.publish", "symtool.dumps", "symtool.formats.pdb_symbols",
                                 "symtool.formats.minidump", "symtool.srcindex.index"))


def test_id_of_an_elf_loads_the_identity_readers_only(tmp_path):
    modules, proc = imported_by("id", str(ELF), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "symtool.formats.elf" in modules and "symtool.commands.ident" in modules
    assert not _loaded(modules, NEVER_AT_START)
    assert not _loaded(modules, NOT_FOR_ID)
    # Help is rendered by rich; a command that prints its answer does not load it, and `id`
    # with files (and --json) is parsed without the CLI framework at all.
    assert not _loaded(modules, ("rich", "markdown_it", "typer", "click"))


def test_id_of_a_pdb_without_source_index_loads_no_indexer(fixtures_dir, tmp_path):
    modules, proc = imported_by("id", "--json", str(fixtures_dir / "pe-pdb" / "crash.pdb"), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["kind"] == "pdb"
    assert "symtool.formats.pdb" in modules
    assert not _loaded(modules, NEVER_AT_START + ("typer", "symtool.srcindex.index", "symtool.srcindex.rules"))


def test_id_of_a_pdb_loads_neither_dataclasses_nor_the_symbolizer(fixtures_dir, tmp_path):
    """The PDB identity path (the 1 GiB PDB benchmark's) is read through namedtuples and plain
    classes: no dataclasses (nor inspect through it), no uuid, no PDB symbolizer, no source-index
    text module (the stream names are the PDB reader's)."""
    modules, proc = imported_by("id", str(fixtures_dir / "pe-pdb" / "crash.pdb"), tmp_path=tmp_path)
    assert proc.returncode == 0 and ": pdb " in proc.stdout, proc.stderr
    assert not _loaded(modules, NOT_ON_FAST_PATHS + ("dataclasses", "uuid", "platform", "ast", "dis", "tokenize",
                                                     "symtool.formats.pdb_symbols", "symtool.srcindex",
                                                     "symtool.formats.elf", "symtool.formats.pe"))


def test_a_named_command_still_gets_its_own_help_and_errors(tmp_path):
    """Only the named command is registered, which must not change what the user sees."""
    _modules, proc = imported_by("id", "--help", tmp_path=tmp_path)
    assert proc.returncode == 0 and "Usage" in proc.stdout and "id" in proc.stdout
    modules, proc = imported_by("no-such-command", tmp_path=tmp_path)
    assert proc.returncode == 2 and "no-such-command" in proc.stderr
    assert "symtool.commands.publish" in modules  # an unknown name gets every command, for suggestions


# Modules the typer-free paths (`id`, `symbolize` with the forms symtool.main parses itself) must
# not pay for: the CLI framework and stdlib modules that cost milliseconds to import.
NOT_ON_FAST_PATHS = ("typer", "click", "rich", "markdown_it", "typing", "tempfile", "threading", "tomllib",
                     "subprocess", "symtool.cli", "symtool.commands.workspace_opts")


def test_id_of_an_elf_loads_no_pdb_reader_nor_heavy_stdlib(tmp_path):
    modules, proc = imported_by("id", str(ELF), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # (json is the probe's own: it reports the module list as JSON.)
    assert not _loaded(modules, NOT_ON_FAST_PATHS + ("uuid", "symtool.formats.pdb", "symtool.formats.macho",
                                                     "symtool.formats.pe_unwind"))


def test_symbolize_of_an_elf_loads_neither_typer_nor_the_dump_machinery(tmp_path):
    """Cold (the symbol cache is filled), then warm: answered from the cache file without the
    DWARF reader's modules."""
    cache_on = {"SYMTOOL_SYMBOL_CACHE": "on"}
    cold, proc = imported_by("symbolize", "--obj", str(ELF), "0x201300", tmp_path=tmp_path, environ=cache_on)
    assert proc.returncode == 0 and proc.stdout.startswith("minicore::poke\n"), proc.stderr
    assert "symtool.formats.dwarf_symbols" in cold
    warm, proc_warm = imported_by("symbolize", "--obj", str(ELF), "0x201300", tmp_path=tmp_path, environ=cache_on)
    assert proc_warm.stdout == proc.stdout
    for modules in (cold, warm):
        # (the cold run writes the cache file through a temp file)
        assert not _loaded(modules, NEVER_AT_START + tuple(m for m in NOT_ON_FAST_PATHS if m != "tempfile"))
        assert not _loaded(modules, ("symtool.dumps", "symtool.stackwalk", "symtool.formats.pdb",
                                     "symtool.formats.pdb_symbols", "symtool.formats.minidump",
                                     "symtool.store.fetch", "symtool.store.publish", "symtool.srcindex"))
    # (Nor the demangler: the cache keeps the names symbolize prints.)
    assert not _loaded(warm, ("tempfile", "symtool.formats.dwarf_symbols", "symtool.formats.dwarf_line",
                              "symtool.demangle"))
    # dataclasses' import of inspect is deferred (symtool.main._DeferredInspect): not loaded unless used
    # (a dataclass without a docstring uses it: the DWARF reader's have theirs, ~10 ms of a cold run).
    for modules in (cold, warm):
        assert not _loaded(modules, ("ast", "dis", "tokenize"))


def test_symbolize_forms_the_fast_parser_leaves_alone_still_get_typer(tmp_path):
    modules, proc = imported_by("symbolize", "--obj", str(ELF), "--bogus", "0x201300", tmp_path=tmp_path)
    assert proc.returncode == 2 and "no such option: --bogus" in proc.stderr
    assert "typer" in modules
    assert type(sys.modules["inspect"]).__name__ == "module"  # (this process's own is the real one)
    assert "ast" in modules  # typer used inspect: the real module was imported behind the stand-in


def test_the_dump_modules_symbolize_and_stack_use_load_no_triage_machinery():
    """symtool.dumps' package imports none of its modules: symbolize on a PE (and stack) use
    locate, stack and symbolize, not triage, buckets or the report."""
    probe = ("import json, sys; import symtool.dumps.locate, symtool.dumps.stack, symtool.dumps.symbolize; "
             "print(json.dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    modules = set(json.loads(proc.stdout))
    assert "symtool.dumps.stack" in modules
    assert not _loaded(modules, ("symtool.dumps.triage", "symtool.dumps.buckets", "symtool.dumps.files",
                                 "symtool.dumps.report", "symtool.dumps.exceptions"))


def test_symbolize_of_a_pe_reads_no_unwind_data(fixtures_dir, tmp_path):
    """A PE's headers and debug directory name its PDB; its unwind data (.pdata, which grows with
    the program) is neither parsed nor its reader imported, nor the triage machinery."""
    pe_dir = fixtures_dir / "pe-pdb"
    modules, proc = imported_by("symbolize", "--obj", str(pe_dir / "crash.exe"), "--build-dir", str(pe_dir),
                                "--offline", "--relative", "0x1000", tmp_path=tmp_path,
                                environ={"SYMTOOL_SYMBOL_CACHE": "off"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() and not proc.stdout.startswith("??"), proc.stdout
    assert "symtool.formats.pdb_symbols" in modules
    assert not _loaded(modules, ("symtool.formats.pe_unwind", "symtool.formats.pe_unwind_arm64",
                                 "symtool.stackwalk", "symtool.dumps.triage", "typer"))
    # The PDB is found through the stores' files (symtool.dumps.locate.DebugFiles), not the stack
    # resolver: neither the minidump reader, the source-index lookup nor the dump symbolizer cache.
    # No dataclass on the path lacks a docstring, so the deferred inspect (and ast, dis, tokenize
    # behind it) is never loaded.
    assert not _loaded(modules, ("symtool.dumps.stack", "symtool.dumps.symbolize", "symtool.formats.minidump",
                                 "symtool.srcindex", "ast", "dis", "tokenize"))
    # The PE headers and debug directory are read by symtool.formats.pe itself: no pefile (whose
    # import, with hashlib, uuid and platform behind it, was ~20 ms of CPU).
    assert "symtool.formats.pe" in modules
    assert not _loaded(modules, ("pefile", "ordlookup", "uuid", "hashlib"))


def test_publish_loads_no_cli_framework(fixtures_dir, tmp_path):
    """`symtool publish PATH --store S` (a CI step, often of many small files) is parsed without
    typer (symtool.commands.publish.fast_main), and its progress bar's rich only on a terminal."""
    modules, proc = imported_by("publish", str(fixtures_dir / "pe-pdb" / "crash.pdb"), "--store",
                                str(tmp_path / "st"), tmp_path=tmp_path)
    assert proc.returncode == 0 and "added 1, already present 0" in proc.stdout, proc.stderr
    assert "symtool.store.publish" in modules
    assert not _loaded(modules, NEVER_AT_START + ("typer", "click", "rich", "markdown_it", "symtool.cli",
                                                  "symtool.formats.cab"))
