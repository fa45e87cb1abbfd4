"""symtool.debugger.shells: statements that set variables to exact strings.

bash, zsh and fish evaluate the output for real and report what they got;
PowerShell and cmd are not on this machine, so their text is compared with
hand-written expectations.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import need_tool
from symtool.debugger.shells import default_shell, powershell_quote, render
from symtool.errors import UsageError

NASTY = [
    r"C:\Program Files (x86)\Debugging Tools\sym",
    "it's",
    "a''b",
    "'",
    "''",
    "\\'",
    'say "hi"',
    "100% R&D | <x> ^caret",
    "$HOME ${PATH} `date` $(id) !! !x",
    "Zoë ☃ 𝄞 日本",
    "back\\slash\\\\double\\",
    "*;?[]{}~#=",
    "line\nbreak",
    "tab\there",
    "",
    "-n",
]

# Reads V0..V<n-1> from the environment the shell exported (no single quote inside: any shell can hold it).
READ_BACK = 'import json, os, sys; print(json.dumps([os.environ.get("V%d" % i) for i in range(int(sys.argv[1]))]))'


def evaluate(shell_argv: list[str], shell: str, vals: list[str]) -> list[str]:
    text = render(shell, [(f"V{i}", v) for i, v in enumerate(vals)])
    reader = f"{sys.executable} -c '{READ_BACK}' {len(vals)}"
    proc = subprocess.run(shell_argv + [text + reader + "\n"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("shell,argv", [
    ("bash", ["bash", "--norc", "--noprofile", "-c"]),
    ("zsh", ["zsh", "-f", "-c"]),
    # RC_QUOTES reads '' inside single quotes as a quote: the output must not rely on it being off.
    ("zsh", ["zsh", "-f", "-o", "rcquotes", "-c"]),
    ("fish", ["fish", "--no-config", "-c"]),
])
def test_shell_evaluates_to_exact_strings(shell, argv):
    need_tool(argv[0])
    assert evaluate(argv, shell, NASTY) == NASTY


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                        max_size=30), min_size=1, max_size=8))
def test_bash_and_zsh_roundtrip_any_text(vals):
    need_tool("bash")
    need_tool("zsh")
    assert evaluate(["bash", "--norc", "--noprofile", "-c"], "bash", vals) == vals
    assert evaluate(["zsh", "-f", "-c"], "zsh", vals) == vals


def test_powershell_text():
    assert powershell_quote(r"C:\it's here") == r"'C:\it''s here'"
    assert powershell_quote("100% R&D $HOME `x` \"q\"") == "'100% R&D $HOME `x` \"q\"'"
    assert powershell_quote("Zoë") == "'Zo' + [char]0x00EB"
    assert powershell_quote("é") == "'' + [char]0x00E9"
    assert powershell_quote("é/ü") == "'' + [char]0x00E9 + '/' + [char]0x00FC"
    assert powershell_quote("𝄞") == "'' + [char]0xD834 + [char]0xDD1E"
    # PowerShell ends a '...' string at typographic single quotes too: never emit one raw.
    assert powershell_quote("a\u2019b") == "'a' + [char]0x2019 + 'b'"
    assert powershell_quote("") == "''"
    assert render("powershell", [("_NT_SYMBOL_PATH", r"C:\a b;srv*C:\c*https://x/")]) == \
        "$env:_NT_SYMBOL_PATH = 'C:\\a b;srv*C:\\c*https://x/'\n"
    assert all(ch.isascii() for ch in render("powershell", [("V", v) for v in NASTY if "\n" not in v]))


def test_cmd_text():
    assert render("cmd", [("_NT_SYMBOL_PATH", r"C:\R&D\100%\x")]) == '@set "_NT_SYMBOL_PATH=C:\\R&D\\100%%\\x"\r\n'
    lines = render("cmd", [("A", r"C:\Zoë")]).split("\r\n")
    assert lines[0].startswith("@for /f") and "chcp" in lines[0]
    assert lines[1] == "@chcp 65001 >nul"
    assert lines[2] == '@set "A=C:\\Zoë"'
    assert lines[3] == "@chcp %_symtool_cp% >nul"
    with pytest.raises(UsageError, match="double quote"):
        render("cmd", [("A", 'a"b')])


def test_unknown_shell():
    with pytest.raises(UsageError):
        render("tcsh", [("A", "b")])


@pytest.mark.parametrize("platform,environ,expected", [
    ("win32", {"SHELL": "/usr/bin/zsh"}, "powershell"),
    ("linux", {"SHELL": "/usr/bin/zsh"}, "zsh"),
    ("darwin", {"SHELL": "/opt/homebrew/bin/fish"}, "fish"),
    ("linux", {"SHELL": "/bin/bash"}, "bash"),
    ("linux", {"SHELL": "/bin/dash"}, "bash"),
    ("linux", {}, "bash"),
])
def test_default_shell(platform, environ, expected):
    assert default_shell(platform, environ) == expected
