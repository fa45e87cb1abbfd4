"""Statements that set environment variables, quoted for each shell.

Each function returns text whose evaluation sets the variables to exactly the
given strings — spaces, quotes, ``%``, ``&``, ``$``, backslashes and non-ASCII
included.  How each output is meant to be consumed:

* bash, zsh: ``eval "$(symtool env)"``
* fish: ``symtool env --shell fish | source``
* powershell: ``symtool env | Out-String | Invoke-Expression``
* cmd: ``symtool env --shell cmd > "%TEMP%\\symtool-env.cmd" && call "%TEMP%\\symtool-env.cmd"``
  (a batch file: ``%`` is doubled; delayed expansion must be off, the default).
"""

from __future__ import annotations

import os

from symtool.errors import UsageError

SHELLS = ("powershell", "cmd", "bash", "zsh", "fish")
# Other names of the same syntax: PowerShell 7's executable is pwsh.
SHELL_ALIASES = {"pwsh": "powershell"}
# Characters PowerShell treats as a single quote inside '...' (besides ASCII ').
_PS_QUOTES = "'\u2018\u2019\u201a\u201b"


def shell_syntax(name: str) -> str:
    """The shell whose syntax ``--shell name`` asks for (``pwsh`` is powershell); UsageError if none."""
    name = SHELL_ALIASES.get(name, name)
    if name not in SHELLS:
        raise UsageError(f"--shell must be one of {', '.join(SHELLS + tuple(SHELL_ALIASES))}, not {name!r}")
    return name


def default_shell(platform: str, environ: dict[str, str]) -> str:
    """powershell on Windows; elsewhere the basename of $SHELL when we know it, else bash."""
    if platform.startswith("win"):
        return "powershell"
    name = os.path.basename(environ.get("SHELL", "").rstrip("/"))
    name = SHELL_ALIASES.get(name, name)
    if name in ("bash", "zsh", "fish", "powershell"):
        return name
    return "bash"


# Shells that read the bash/zsh output as written (POSIX `export NAME='...'`).
POSIX_SHELLS = ("sh", "dash", "ash", "ksh", "mksh", "oksh", "pdksh", "yash", "busybox")


def default_shell_warning(platform: str, environ: dict[str, str]) -> str | None:
    """Why the default shell syntax may not be the user's: $SHELL names a shell whose syntax
    symtool does not write (tcsh, nushell...), so bash statements would fail there or, worse,
    half-work.  None when $SHELL is unset or its syntax is written (or POSIX-compatible)."""
    if platform.startswith("win"):
        return None
    shell = environ.get("SHELL", "").rstrip("/")
    name = SHELL_ALIASES.get(os.path.basename(shell), os.path.basename(shell))
    if not name or name in SHELLS or name in POSIX_SHELLS:
        return None
    return (f"SHELL is {shell}, whose syntax symtool env does not write: printing bash statements "
            f"(choose with --shell {'|'.join(SHELLS)})")


def posix_quote(value: str) -> str:
    """Single-quoted for bash/zsh/sh.

    A ``'`` becomes ``\\'`` outside quotes; empty quoted chunks are never
    emitted, so no ``''`` pair appears (zsh's RC_QUOTES would read it as a quote).
    """
    if value == "":
        return "''"
    parts = value.split("'")
    out = []
    for i, part in enumerate(parts):
        if i:
            out.append("\\'")
        if part:
            out.append("'" + part + "'")
    return "".join(out)


def fish_quote(value: str) -> str:
    """fish single quotes: only ``\\\\`` and ``\\'`` are escapes inside them."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def powershell_quote(value: str) -> str:
    """A PowerShell expression evaluating to ``value``, in ASCII only.

    Single-quoted strings expand nothing; quote characters (PowerShell also
    treats the typographic single quotes as quotes) are doubled.  Non-ASCII
    characters are spelled ``[char]0xNNNN`` and concatenated, so the text
    survives whatever code page the console uses to read native output.
    """
    chunks: list[str] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            chunks.append("'" + "".join(literal) + "'")
            literal.clear()

    for ch in value:
        code = ord(ch)
        if code < 0x80 and (ch.isprintable() or ch == " "):
            literal.append(ch * 2 if ch in _PS_QUOTES else ch)
            continue
        # Non-ASCII (typographic quotes included) and control characters.
        flush()
        if code > 0xFFFF:
            code -= 0x10000
            chunks.append(f"[char]0x{0xD800 + (code >> 10):04X}")
            chunks.append(f"[char]0x{0xDC00 + (code & 0x3FF):04X}")
        else:
            chunks.append(f"[char]0x{code:04X}")
    flush()
    if not chunks:
        return "''"
    if not chunks[0].startswith("'"):
        # [char] + [char] adds numbers; a leading string makes '+' concatenate.
        chunks.insert(0, "''")
    return " + ".join(chunks) if len(chunks) > 1 else chunks[0]


def cmd_value(value: str) -> str:
    """The text inside ``set "NAME=..."`` in a batch file: only ``%`` needs doubling.

    Inside the quotes ``&|<>^`` are literal.  A ``"`` or a line break cannot be
    carried (Windows paths never hold them), so they are refused.
    """
    for bad, name in (('"', 'a double quote'), ("\n", "a newline"), ("\r", "a carriage return")):
        if bad in value:
            raise UsageError(f"cannot be set from cmd: contains {name}", value)
    return value.replace("%", "%%")


def render(shell: str, assignments: list[tuple[str, str]]) -> str:
    """Text that sets each (name, value) in ``shell``; one statement per line."""
    shell = SHELL_ALIASES.get(shell, shell)
    if shell in ("bash", "zsh"):
        return "".join(f"export {n}={posix_quote(v)}\n" for n, v in assignments)
    if shell == "fish":
        return "".join(f"set -gx {n} {fish_quote(v)}\n" for n, v in assignments)
    if shell == "powershell":
        return "".join(f"$env:{n} = {powershell_quote(v)}\n" for n, v in assignments)
    if shell == "cmd":
        lines = [f'@set "{n}={cmd_value(v)}"\r\n' for n, v in assignments]
        if any(not v.isascii() for _, v in assignments):
            # cmd decodes each batch line with the current code page: read ours
            # as UTF-8, then put the user's code page back.
            lines = ['@for /f "tokens=2 delims=:." %%c in (\'chcp\') do @set "_symtool_cp=%%c"\r\n',
                     "@chcp 65001 >nul\r\n", *lines,
                     "@chcp %_symtool_cp% >nul\r\n", '@set "_symtool_cp="\r\n']
        return "".join(lines)
    raise UsageError(f"unknown shell {shell!r} (choose from {', '.join(SHELLS)})")
