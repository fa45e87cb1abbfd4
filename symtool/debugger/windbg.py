"""Files for WinDBG/cdb wrapper scripts, and gdb/lldb setup commands.

``symtool env --write DIR`` writes ``symbols.path``, ``sources.path``,
``images.path`` (one line each) and ``symtool.windbg``, a script for ``$$<``.
Everything is rendered and checked before the first file is written, so a
refusal leaves DIR untouched.
"""

from __future__ import annotations

from pathlib import Path

from symtool.debugger.paths import IMAGE, SOURCE, SYMBOL, DebuggerPaths, Inputs, debuginfod_urls, rust_src_dir
from symtool.errors import ConfigError, UsageError

# The debugger's command buffer: longer lines are cut or rejected.
MAX_COMMAND_CHARS = 4096

SCRIPT_NAME = "symtool.windbg"
PATH_FILES = {SYMBOL: "symbols.path", SOURCE: "sources.path", IMAGE: "images.path"}

# No semicolon may appear in this comment: '$$' comments end at one.
SCRIPT_HEADER = (
    "$$ Written by symtool env --write. Run it with $$<FILE (one command per line).\n"
    "$$ Not with $><FILE: that joins the lines with semicolons into one command,\n"
    "$$ and .sympath, .srcpath and .exepath, whose paths are semicolon-separated lists,\n"
    "$$ would swallow the commands that follow as more path elements.\n"
)


def _nvload_arg(path: str) -> str:
    return f'"{path}"' if " " in path else path


def windbg_script(paths: DebuggerPaths) -> str:
    """The ``$$<`` script; ConfigError if any command would exceed the debugger's limit."""
    commands = [
        f".sympath {paths.value(SYMBOL)}",
        f".srcpath {paths.value(SOURCE)}",
        f".exepath {paths.value(IMAGE)}",
        *(f".nvload {_nvload_arg(n)}" for n in paths.inputs.natvis),
        ".reload /f",
        ".ecxr",
        "kb",
    ]
    for command in commands:
        if len(command) > MAX_COMMAND_CHARS:
            verb = command.split(" ", 1)[0]
            raise ConfigError(
                f"{verb} would be {len(command)} characters, over the debugger's {MAX_COMMAND_CHARS}-character "
                f"command limit: configure fewer stores or shorter paths", SCRIPT_NAME)
    return SCRIPT_HEADER + "".join(c + "\n" for c in commands)


def render_files(paths: DebuggerPaths) -> dict[str, str]:
    files = {name: paths.value(which) + "\n" for which, name in PATH_FILES.items()}
    files[SCRIPT_NAME] = windbg_script(paths)
    return files


def write_files(paths: DebuggerPaths, directory: Path) -> list[Path]:
    """Render all files first (so a refusal writes nothing), then write each atomically."""
    from symtool.fsutil import atomic_write_text

    files = render_files(paths)
    if directory.exists() and not directory.is_dir():
        raise UsageError("not a directory", directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        target = directory / name
        atomic_write_text(target, text)
        written.append(target)
    return written


def _debugger_quote(arg: str) -> str:
    """gdb and lldb split arguments like a shell: double-quote when needed."""
    if arg and not any(c in arg for c in " \t\"'\\"):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def debugger_commands(inputs: Inputs, debugger: str) -> str:
    """gdb or lldb commands mapping /rustc/<hash> to the toolchain's rust-src."""
    if not inputs.sysroot or not inputs.commit:
        raise UsageError("rustc was not found (or gave no commit-hash): cannot map /rustc/<hash> paths")
    src = rust_src_dir(inputs.platform, inputs.sysroot)
    remote = f"/rustc/{inputs.commit}"
    urls = debuginfod_urls(inputs)
    lines = []
    if debugger == "gdb":
        lines.append(f"set substitute-path {remote} {_debugger_quote(src)}")
        if urls:
            # Same list a shell would put in DEBUGINFOD_URLS (gdb >= 12 reads it here too).
            lines.append(f"set debuginfod urls {_debugger_quote(urls)}")
            lines.append("set debuginfod enabled on")
    elif debugger == "lldb":
        lines.append(f"settings set target.source-map {remote} {_debugger_quote(src)}")
        for b in inputs.build_dirs:
            # Where cargo writes <binary>.dSYM (and .dwp): lldb looks for debug files there too.
            lines.append(f"settings append target.debug-file-search-paths {_debugger_quote(b.path)}")
        if urls:
            # DEBUGINFOD_URLS for lldb >= 18.
            lines.append("settings set plugin.symbol-locator.debuginfod.server-urls "
                         + " ".join(_debugger_quote(u) for u in urls.split()))
    else:
        raise UsageError(f"unknown debugger {debugger!r} (choose from gdb, lldb)")
    return "".join(line + "\n" for line in lines)
