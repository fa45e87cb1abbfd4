"""`symtool symbolize` and `symtool id` parsed without typer (symtool.main's fast paths) say exactly
what the typer commands say.

Every argument form below runs twice in-process: as a user runs it, and with
``_SYMTOOL_NO_FAST_PATH`` set, which sends it through the typer command; stdout, stderr and the
exit code must be the same.  Each form also says which parser should take it: a fast-path form
that quietly fell back to typer would pass the comparison and prove nothing, so the test records
whether the typer app was built.  The forms reading stdin need a real process (the command reads
file descriptor 0) and run as subprocesses.

The fast parser's option table (symtool.commands.symbolize.OPTIONS) also declares the typer
command's option names; the last test checks the kinds typer made of them (flag, one value,
repeatable) against the table, so the two parsers cannot drift apart.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_runner import symtool_in_process

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
ELF = FIXTURES / "elf-macho" / "crash-me.dwarf5"  # x86-64 Rust binary, split DWARF in its .dwp
ELF4 = FIXTURES / "elf-macho" / "crash-me.dwarf4"
PE = FIXTURES / "pe-pdb" / "crash.exe"  # x86, image base 0x400000; its PDB beside it
PDB = FIXTURES / "pe-pdb" / "crash.pdb"
MACHO = FIXTURES / "elf-macho" / "crash-me.arm64"  # no dSYM beside it: an error
A1, A2 = "0x201300", "0x2012d4"  # minicore::poke, crash_me::crash_now (+4)

FAST, TYPER = "fast", "typer"


def cases(tmp: Path) -> list[tuple[str, list[str], str]]:
    """(name, argv, the parser that should take it)."""
    hostile = tmp / "hostile.bin"
    hostile.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 3)
    missing = str(tmp / "missing")
    return [
        ("two addresses", ["symbolize", "--obj", str(ELF), A1, A2], FAST),
        ("--obj=FILE", ["symbolize", f"--obj={ELF}", A1], FAST),
        ("-e FILE", ["symbolize", "-e", str(ELF), A2], FAST),
        ("--exe, --json", ["symbolize", "--exe", str(ELF), "--json", A1, A2], FAST),
        ("address before the option", ["symbolize", A1, "--obj", str(ELF)], FAST),
        ("after --", ["symbolize", "--obj", str(ELF), "--", A1, "--json"], FAST),
        ("--relative", ["symbolize", "--obj", str(ELF), "--relative", "0x1300"], FAST),
        ("decimal and unknown", ["symbolize", "--obj", str(ELF), str(0x201300), "0x10"], FAST),
        ("--no-symbol-cache", ["symbolize", "--no-symbol-cache", "--obj", str(ELF), A1], FAST),
        ("--dwp given", ["symbolize", "--obj", str(ELF4), "--dwp", f"{ELF4}.dwp", A1], FAST),
        ("--build-dir twice", ["symbolize", "--obj", str(ELF), "-b", str(tmp), "--build-dir", str(tmp), A1], FAST),
        ("--obj twice: the last", ["symbolize", "--obj", str(PE), "--obj", str(ELF), A1], FAST),
        ("-q before", ["-q", "symbolize", "--obj", str(ELF), A1], FAST),
        ("-v after", ["symbolize", "--obj", str(ELF), A1, "-vv"], FAST),
        ("--color never", ["symbolize", "--color", "never", "--obj", str(ELF), A1], FAST),
        ("PE image, its PDB beside it", ["symbolize", "--obj", str(PE), "0x401000", "0x400000"], FAST),
        ("PE, --json, --offline", ["symbolize", "--obj", str(PE), "--json", "--offline", "0x401000"], FAST),
        ("a PDB: RVAs", ["symbolize", "--obj", str(PDB), "0x1000"], FAST),
        ("Mach-O without its dSYM", ["symbolize", "--obj", str(MACHO), "0x100000f00"], FAST),
        ("--module not found", ["symbolize", "--module", f"crash.pdb/{'0' * 33}", "--store", str(tmp), "0x1"],
         FAST),
        ("--module malformed", ["symbolize", "--module", "nonsense", "0x1"], FAST),
        ("--obj and --module", ["symbolize", "--obj", str(ELF), "--module", "a/b", A1], FAST),
        ("neither --obj nor --module", ["symbolize", A1], FAST),
        ("not an address", ["symbolize", "--obj", str(ELF), A1, "zzz"], FAST),
        ("not an address, --json", ["symbolize", "--json", "--obj", str(ELF), "0x1g"], FAST),
        ("over 64 bits", ["symbolize", "--obj", str(ELF), "0x1" + "0" * 16], FAST),
        ("missing file", ["symbolize", "--obj", missing, A1], FAST),
        ("missing file, --json", ["symbolize", "--obj", missing, "--json", A1], FAST),
        ("missing --dwp", ["symbolize", "--obj", str(ELF), "--dwp", missing, A1], FAST),
        ("a directory", ["symbolize", "--obj", str(tmp), A1], FAST),
        ("hostile file", ["symbolize", "--obj", str(hostile), A1], FAST),
        ("hostile file, --json", ["symbolize", "--obj", str(hostile), "--json", A1], FAST),
        ("--dwp with a PE", ["symbolize", "--obj", str(PE), "--dwp", str(ELF), "0x401000"], FAST),
        # Forms the fast parser leaves to typer: its messages, whatever they are.
        ("--help", ["symbolize", "--help"], TYPER),
        ("-h", ["symbolize", "-h"], TYPER),
        ("unknown option", ["symbolize", "--obj", str(ELF), "--bogus", A1], TYPER),
        ("negative number", ["symbolize", "--obj", str(ELF), "-5"], TYPER),
        ("option without its value", ["symbolize", A1, "--obj"], TYPER),
        ("value that looks like an option", ["symbolize", "--obj", "--json", A1], TYPER),
        ("flag given a value", ["symbolize", "--obj", str(ELF), "--json=yes", A1], TYPER),
        ("clustered short option", ["symbolize", f"-e{ELF}", A1], TYPER),
        ("unknown option, --json", ["symbolize", "--json", "--obj", str(ELF), "--nope", A1], TYPER),
        # `symtool id`: its own fast path, the same switch.
        ("id", ["id", str(ELF), str(PDB)], FAST),
        ("id --json", ["id", "--json", str(PE)], FAST),
        ("id: missing and hostile", ["id", missing, str(hostile), str(ELF)], FAST),
        ("id --json: nothing readable", ["id", "--json", missing], FAST),
        ("id --help", ["id", "--help"], TYPER),
        ("id, unknown option", ["id", "--bogus", str(ELF)], TYPER),
        ("id without files", ["id"], TYPER),
    ]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A home and symbol cache of the test's own; the cache switch `--no-symbol-cache` flips is
    process-wide, restored after the test."""
    from symtool.store import symcache

    monkeypatch.setattr(symcache, "_disabled_by_option", False)
    monkeypatch.setattr(symcache, "_dir_of_process", None)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYMTOOL_", "_SYMTOOL_", "_NT_"))}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), NO_COLOR="1", SYMTOOL_CACHE=str(tmp_path / "c"))
    work = tmp_path / "work"
    work.mkdir()
    return env, work


def _run(argv, env, cwd, *, typer_only: bool, monkeypatch):
    """(exit code, stdout, stderr, whether the typer app was built)."""
    import symtool.cli
    from symtool.store import symcache

    built = []
    make_app = symtool.cli.make_app
    monkeypatch.setattr(symtool.cli, "make_app", lambda *a: built.append(a) or make_app(*a))
    symcache._disabled_by_option = False
    symcache._dir_of_process = None  # the settings are read once per process: once per run here
    run_env = dict(env, _SYMTOOL_NO_FAST_PATH="1") if typer_only else env
    proc = symtool_in_process(*argv, env=run_env, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr, bool(built)


def test_every_argument_form_says_the_same_through_both_parsers(isolated, tmp_path, monkeypatch):
    env, work = isolated
    seen_codes = set()
    for name, argv, parser in cases(tmp_path):
        fast = _run(argv, env, work, typer_only=False, monkeypatch=monkeypatch)
        slow = _run(argv, env, work, typer_only=True, monkeypatch=monkeypatch)
        assert slow[3], f"{name}: the switch did not send it through typer"
        assert fast[3] == (parser == TYPER), f"{name}: expected the {parser} parser"
        assert fast[:3] == slow[:3], f"{name}: {argv}\nfast: {fast[:3]}\ntyper: {slow[:3]}"
        assert "Traceback" not in fast[2], f"{name}: {fast[2]}"
        seen_codes.add(fast[0])
    assert seen_codes == {0, 2}  # answers and errors both exercised


def test_fast_answers_are_llvm_symbolizers_text(isolated, monkeypatch):
    """Not only the same as typer's: the right answer (the function names nm gives)."""
    env, work = isolated
    code, out, err, built = _run(["symbolize", "--obj", str(ELF), A1, A2], env, work, typer_only=False,
                                 monkeypatch=monkeypatch)
    assert (code, built) == (0, False), err
    blocks = out.split("\n\n")
    assert blocks[0].splitlines()[0] == "minicore::poke"
    assert blocks[1].splitlines()[-2].endswith("crash_me::crash_now")


@pytest.mark.parametrize("order", ["as given", "twice"])
def test_stdin_forms_are_the_same_through_both_parsers(isolated, order):
    env, work = isolated
    env = dict(env, PYTHONPATH=str(ROOT))
    stdin = f"{A1}\n\n  {A2}  \n" if order == "as given" else f"{A1}\n{A1}\nnot-an-address\n"
    got = []
    for extra in ({}, {"_SYMTOOL_NO_FAST_PATH": "1"}):
        proc = subprocess.run([sys.executable, "-m", "symtool", "symbolize", "--obj", str(ELF)], input=stdin,
                              capture_output=True, text=True, env=dict(env, **extra), cwd=work, timeout=120)
        got.append((proc.returncode, proc.stdout, proc.stderr))
    assert got[0] == got[1]
    assert got[0][0] == (0 if order == "as given" else 2)


def test_the_option_table_is_the_typer_commands(monkeypatch):
    """Names, parameter and kind of every option, as typer built them from the same table."""
    from symtool.commands.symbolize import OPTIONS

    made, arguments = typer_option_table("symbolize")
    assert made == {(tuple(sorted(names)), dest, kind) for names, dest, kind in OPTIONS}
    assert arguments == [("addresses", -1)]


def typer_option_table(name: str) -> tuple[set, list]:
    """The options typer built for command ``name``, as (sorted names, parameter, kind) in the
    fast parsers' terms, and its arguments as (parameter, nargs)."""
    import typer.main

    from symtool.cli import make_app
    from symtool.commands.common import FLAG, MULTIPLE, VALUE

    command = typer.main.get_command(make_app(name)).commands[name]
    made = set()
    arguments = []
    for param in command.params:
        if param.param_type_name == "argument":
            arguments.append((param.name, param.nargs))
            continue
        kind = FLAG if param.is_flag else MULTIPLE if param.multiple else VALUE
        made.add((tuple(sorted(param.opts + param.secondary_opts)), param.name, kind))
    return made, arguments


def test_text_blocks_are_frame_lines_made_terminal_safe(monkeypatch):
    """The memoized text (TextBlocks) is exactly frame_lines' lines through terminal_safe, for
    shared and unshared frames, names with control characters, and past the memo's bound."""
    from symtool.commands import symbolize as cmd
    from symtool.commands.common import terminal_safe
    from symtool.formats.symbols import Frame, Symbolized

    def expected(result):
        return "".join(terminal_safe(line) + "\n" for line in cmd.frame_lines(result)) + "\n"

    shared = Frame("outer", "/src/lib.rs", 10, 5)
    answers = [None, Symbolized(1, 1, 0),
               Symbolized(2, 1, 1, [Frame("inner\x1b[31m", "/src/a\nb.rs", 3, None), shared]),
               Symbolized(3, 1, 2, [Frame("plain", None, None, 7), shared]),
               Symbolized(4, 1, 3, [Frame("inner\x1b[31m", "/src/a\nb.rs", 3, None), shared])]
    monkeypatch.setattr(cmd, "MAX_MEMO", 2)  # the memo starts again: still the same text
    blocks = cmd.TextBlocks()
    encoded = cmd.EncodedBlocks("utf-8", "backslashreplace")  # what a redirected stdout is given
    for _ in range(3):
        for result in answers:
            assert blocks.block(result) == expected(result)
            assert encoded.block(result) == expected(result).encode("utf-8")
    assert "\\x1b[31m" in blocks.block(answers[2]) and "\x1b" not in blocks.block(answers[2])
