"""cargo's output conventions, the same in every command: error:/warning: labels, -q/-v anywhere,
--color and NO_COLOR, and a JSON error object on stdout when a --json command fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import FIXTURES_DIR


def run(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from symtool.main import main; main()", *args],
                          capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


# Each command given something that cannot be read, with --json.
FAILING_JSON_COMMANDS = [
    ("id", "--json", "/nonexistent/app.pdb"),
    ("verify", "--json", "/nonexistent/app.exe"),
    ("dumps", "--json", "/nonexistent/crash.dmp"),
    ("stack", "--json", "/nonexistent/crash.dmp"),
    ("symbolize", "--json", "--obj", "/nonexistent/app", "0x1000"),
    ("check", "--json", "/nonexistent/Cargo.toml"),
    ("env", "--json", "/nonexistent"),
    ("store", "list", "--json", "--store", "gs://bucket/prefix"),
]


@pytest.mark.parametrize("argv", FAILING_JSON_COMMANDS, ids=lambda a: a[0])
def test_json_commands_print_an_error_object_on_failure(argv, tmp_path):
    proc = run(*argv, cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["exit_code"] == 2 and error["message"] and error["kind"].endswith("Error")


def test_quiet_and_verbose_work_before_or_after_the_command(tmp_path):
    bad = tmp_path / "bad.pdb"
    bad.write_bytes(b"not a pdb")
    for argv in (("-q", "id", str(bad)), ("id", str(bad), "-q"), ("id", "-q", str(bad))):
        proc = run(*argv)
        # -q silences warnings and notes, never errors
        assert proc.returncode == 2 and proc.stderr.startswith("error: "), (argv, proc.stderr)


def test_color_only_when_asked_or_on_a_terminal(tmp_path):
    missing = str(tmp_path / "missing.pdb")
    plain = run("id", missing)
    assert plain.stderr.startswith("error: ")  # not a terminal: no escape codes
    forced = run("--color", "always", "id", missing)
    assert forced.stderr.startswith("\x1b[1;31merror:\x1b[0m ")
    never = run("id", missing, "--color=never", env=dict(os.environ, NO_COLOR=""))
    assert never.stderr.startswith("error: ")
    bad = run("--color", "sometimes", "id", missing)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --color takes one of auto, always, never")


def test_no_color_beats_a_terminal(tmp_path):
    # Under a real pseudo-terminal the label is coloured unless NO_COLOR is set.
    import pty

    missing = str(tmp_path / "missing.pdb")
    for no_color, want in (("", "\x1b[1;31merror:"), ("1", "error:")):
        env = dict(os.environ)
        env.pop("NO_COLOR", None)
        if no_color:
            env["NO_COLOR"] = no_color
        main, child = pty.openpty()
        proc = subprocess.run([sys.executable, "-c", "from symtool.main import main; main()", "id", missing],
                              stdout=subprocess.DEVNULL, stderr=child, env=env, timeout=60)
        os.close(child)
        out = os.read(main, 4096).decode()
        os.close(main)
        assert proc.returncode == 2 and out.startswith(want), (no_color, out)


def test_foreign_text_cannot_forge_terminal_lines(tmp_path):
    # A file name with an escape sequence and a newline: printed escaped, on one line.
    evil = tmp_path / "a\x1b[2Jb\nerror: forged.pdb"
    evil.write_bytes(b"junk")
    proc = run("id", str(evil))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "\x1b" not in proc.stderr and "\\x1b" in proc.stderr, proc.stderr
    assert FIXTURES_DIR.is_dir()


# Mistakes click finds before a command runs (issue 26, item 9): the same one-line rule as every
# other error, a suggestion where there is one, exit 2, and a JSON error object under --json.
USAGE_MISTAKES = [
    (("check", "--fixx"), "no such option: --fixx (did you mean --fix?)"),
    (("verfy",), "no such command 'verfy' (did you mean 'verify'?)"),
    (("store", "prune", "--older-than", "abc"), "invalid value for '--older-than': 'abc'"),
    (("dumps", "--json", "--bogus", "d"), "no such option: --bogus"),
]


@pytest.mark.parametrize("argv,words", USAGE_MISTAKES, ids=lambda a: a[0] if isinstance(a, tuple) else None)
def test_usage_mistakes_are_one_error_line(argv, words, tmp_path):
    proc = run(*argv, cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: symtool") and words in lines[0], proc.stderr
    assert "╭" not in proc.stderr and "Usage:" not in proc.stderr and "Traceback" not in proc.stderr
    if "--json" in argv:
        error = json.loads(proc.stdout)["error"]
        assert error == {"message": lines[0][len("error: "):], "path": None, "kind": "UsageError", "exit_code": 2}
    else:
        assert proc.stdout == ""


def test_json_usage_mistake_after_double_dash_is_not_json(tmp_path):
    # `--json` after `--` is an argument, not the option: no JSON object for it.
    proc = run("id", "--bogus", "--", "--json", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.startswith("error: symtool id: no such option")


@pytest.mark.parametrize("command", ["stack", "dumps"])
@pytest.mark.parametrize("option", ["--build-dir", "--store"])
def test_missing_build_dir_is_bad_input_like_a_missing_store(command, option, tmp_path):
    """Issue 26, item 5: a misspelled --build-dir finds nothing silently unless it is refused,
    as a missing --store is: exit 2, one error: line naming it, JSON under --json."""
    dump = FIXTURES_DIR / "dumps" / "symbolic-windows-mini.dmp"
    typo = tmp_path / "target" / "relaese"
    for json_out in ((), ("--json",)):
        proc = run(command, str(dump), option, str(typo), "--offline", *json_out, cwd=tmp_path)
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and str(typo) in lines[0], proc.stderr
        assert "does not exist" in lines[0]
        if json_out:
            assert json.loads(proc.stdout)["error"]["path"] == str(typo)


def test_stack_and_verify_name_the_real_problem(tmp_path):
    """Issue 26, item 10: a directory is not "no such file"; a short text file is not a truncated
    minidump (the same text at 3 KB already said "no MDMP signature"); a PDB alone is not a folder
    without binaries."""
    (tmp_path / "crashes").mkdir()
    short, long_ = tmp_path / "short.txt", tmp_path / "long.txt"
    short.write_text("this is not a minidump!\n")  # 24 bytes: less than a MINIDUMP_HEADER (32)
    long_.write_text("this is not a minidump!\n" * 128)
    cases = [
        (("stack", str(tmp_path / "crashes")), "is a directory, not a minidump"),
        (("stack", str(short)), "not a minidump (no MDMP signature)"),
        (("stack", str(long_)), "not a minidump (no MDMP signature)"),
        (("verify", str(FIXTURES_DIR / "pe-pdb" / "crash.pdb")), "a PDB, and no binary to compare it with"),
    ]
    for argv, words in cases:
        proc = run(*argv, cwd=tmp_path)
        assert proc.returncode == 2, (argv, proc.stdout, proc.stderr)
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {argv[1]}: ") and words in lines[0], (argv, lines)
    proc = run("stack", str(tmp_path / "missing.dmp"), cwd=tmp_path)
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_capital_v_prints_the_version_as_cargo_does(tmp_path):
    """Issue 26, item 14: `-V` is the version (cargo's convention), `-v` stays verbose."""
    from symtool import __version__

    for argv in (("-V",), ("--version",)):
        proc = run(*argv, cwd=tmp_path)
        assert proc.returncode == 0 and proc.stdout == f"symtool {__version__}\n" and proc.stderr == "", proc


def test_verbose_is_shown_as_a_flag(tmp_path):
    """Issue 26, item 14: `-v` takes no value (it counts: -vv), so the help shows none."""
    proc = run("--help", cwd=tmp_path, env=dict(os.environ, COLUMNS="200", NO_COLOR="1"))
    assert proc.returncode == 0
    (line,) = [line for line in proc.stdout.splitlines() if "--verbose" in line]
    assert "-v " in line and "<int>" not in line and "INTEGER" not in line and "default" not in line, line
    assert run("-vv", "--version", cwd=tmp_path).returncode == 0
