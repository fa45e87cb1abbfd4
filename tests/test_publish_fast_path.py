"""`symtool publish` parsed without typer (symtool.main's fast path) says and stores exactly what
the typer command says and stores.

Every argument form runs twice in-process, each time in a fresh working directory with a fresh
store (``st``, relative): as a user runs it, and with ``_SYMTOOL_NO_FAST_PATH`` set, which sends
it through the typer command.  stdout, stderr (the working directory's path replaced), the exit
code and the files of the store must be the same, and each form says which parser should take
it (a fast-path form that quietly fell back to typer would prove nothing).  The last test checks
the option table (symtool.commands.publish.OPTIONS) against the parameters typer built from it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cli_runner import symtool_in_process
from test_symbolize_fast_path import typer_option_table

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
PE = FIXTURES / "pe-pdb" / "crash.exe"  # and its PDB, crash.pdb
PDB = FIXTURES / "pe-pdb" / "crash.pdb"
OTHER_PDB = FIXTURES / "pe-pdb" / "dump_syms_regtest64.pdb"

FAST, TYPER = "fast", "typer"


def cases(inputs: Path, tmp: Path) -> list[tuple[str, list[str], str]]:
    """(name, argv, the parser that should take it)."""
    d, missing = str(inputs), str(tmp / "missing.pdb")
    return [
        ("a directory", ["publish", d, "--store", "st", "--product", "p", "--version", "1.0", "--comment", "c"], FAST),
        ("short options", ["publish", d, "-s", "st", "-t", "p", "-c", "a comment"], FAST),
        ("--store=S, --json", ["publish", "--json", d, "--store=st", "--product=p"], FAST),
        ("files named", ["publish", str(PE), str(PDB), "--store", "st"], FAST),
        ("after --", ["publish", "--store", "st", "--", str(PDB)], FAST),
        ("--dry-run --json", ["publish", d, "--store", "st", "--dry-run", "--json"], FAST),
        ("--compress", ["publish", str(PDB), "--store", "st", "--compress"], FAST),
        ("--pointer", ["publish", str(PDB), "--store", "st", "--pointer", "-q"], FAST),
        ("--skip-published, --force", ["publish", d, "--store", "st", "--skip-published", "--force"], FAST),
        ("--sources-root twice", ["publish", d, "--store", "st", "--dry-run", "--sources-root", str(tmp),
                                  "--sources-root", d], FAST),
        ("--key-case lower", ["publish", d, "--store", "st", "--key-case", "lower"], FAST),
        ("--store twice: the last", ["publish", d, "--store", "other", "--store", "st"], FAST),
        ("--compress and --pointer", ["publish", d, "--store", "st", "--compress", "--pointer"], FAST),
        ("--compress and --pointer, --json", ["publish", d, "--store", "st", "--compress", "--pointer", "--json"],
         FAST),
        ("bad --key-case", ["publish", d, "--store", "st", "--key-case", "upper"], FAST),
        ("PATHs and -p", ["publish", d, "--store", "st", "-p", "crash"], FAST),
        ("a missing file", ["publish", str(PDB), missing, "--store", "st"], FAST),
        ("a missing file, --json", ["publish", missing, "--store", "st", "--json"], FAST),
        ("a URL store that is not one", ["publish", d, "--store", "gs://bucket/x"], FAST),
        ("-v, --color never", ["-v", "publish", d, "--color", "never", "--store", "st"], FAST),
        # Forms the fast parser leaves to typer: its messages, whatever they are.
        ("--help", ["publish", "--help"], TYPER),
        ("unknown option", ["publish", d, "--store", "st", "--bogus"], TYPER),
        ("option without its value", ["publish", d, "--store"], TYPER),
        ("value that looks like an option", ["publish", d, "--store", "--json"], TYPER),
        ("flag given a value", ["publish", d, "--store", "st", "--json=yes"], TYPER),
        ("clustered short option", ["publish", d, "-sst"], TYPER),
    ]


def _tree(store: Path) -> dict[str, bytes]:
    """The store's files and their bytes, but for what records the time (server and history lines)."""
    out = {}
    if store.is_dir():
        for p in sorted(store.rglob("*")):
            if p.is_file() and p.name not in ("server.txt", "history.txt", "symtool.lock"):
                out[p.relative_to(store).as_posix()] = p.read_bytes()
    return out


def _run(argv, env, work: Path, *, typer_only: bool, monkeypatch):
    """(exit code, stdout, stderr, the store's files), and whether the typer app was built."""
    import symtool.cli

    built = []
    make_app = symtool.cli.make_app
    monkeypatch.setattr(symtool.cli, "make_app", lambda *a: built.append(a) or make_app(*a))
    work.mkdir()
    run_env = dict(env, _SYMTOOL_NO_FAST_PATH="1") if typer_only else env
    proc = symtool_in_process(*argv, env=run_env, cwd=work)
    tree = _tree(work / "st")
    here = str(work.resolve())
    return (proc.returncode, proc.stdout.replace(here, "<work>"), proc.stderr.replace(here, "<work>"), tree), \
        bool(built)


def test_every_argument_form_says_and_stores_the_same_through_both_parsers(tmp_path, monkeypatch):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for f in (PE, PDB, OTHER_PDB):
        shutil.copy(f, inputs / f.name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYMTOOL_", "_SYMTOOL_", "_NT_"))}
    env.update(HOME=str(tmp_path / "home"), NO_COLOR="1")
    seen_codes = set()
    for i, (name, argv, parser) in enumerate(cases(inputs, tmp_path)):
        fast, fast_typer = _run(argv, env, tmp_path / f"fast-{i}", typer_only=False, monkeypatch=monkeypatch)
        slow, slow_typer = _run(argv, env, tmp_path / f"typer-{i}", typer_only=True, monkeypatch=monkeypatch)
        assert slow_typer, f"{name}: the switch did not send it through typer"
        assert fast_typer == (parser == TYPER), f"{name}: expected the {parser} parser"
        assert fast == slow, f"{name}: {argv}\nfast: {fast[:3]}\ntyper: {slow[:3]}"
        assert "Traceback" not in fast[2], f"{name}: {fast[2]}"
        seen_codes.add(fast[0])
        if name == "a directory":  # not only the same: the three files, in the store
            assert fast[0] == 0 and "added 3, already present 0, refused 0, transaction 0000000001" in fast[1]
            assert {k for k in fast[3] if k.endswith("/refs.ptr")} and len(fast[3]) == 3 * 2 + 3
    assert seen_codes == {0, 2}


def test_the_option_table_is_the_typer_commands():
    """Names, parameter and kind of every option, as typer built them from the same table."""
    from symtool.commands.publish import OPTIONS

    made, arguments = typer_option_table("publish")
    assert made == {(tuple(sorted(names)), dest, kind) for names, dest, kind in OPTIONS}
    assert arguments == [("paths", -1)]
