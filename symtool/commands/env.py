"""``symtool env``: symbol, source and image paths for debuggers and shells.

Runs in every new shell, so this module imports nothing heavy at the top and
offers :func:`fast_main`, which handles ``symtool env ...`` without typer
(typer's import alone costs more than the rest of the command).  The typer
command registered by :func:`register` has the same options and is what
``--help`` and the docs show; both call :func:`run_env`.
"""

import os
from pathlib import Path
from typing import List, Optional

HELP = "Print or write the debugger paths (_NT_SYMBOL_PATH, _NT_SOURCE_PATH, _NT_EXECUTABLE_IMAGE_PATH)."

EPILOG = """\
Examples:

  eval "$(symtool env)"                          # bash, zsh

  symtool env --shell fish | source              # fish

  symtool env | Out-String | Invoke-Expression   # PowerShell

  symtool env --shell cmd > %TEMP%\\symenv.cmd && call %TEMP%\\symenv.cmd

  symtool env --json                     # elements and where each came from

  symtool env --write dbg                # *.path files and symtool.windbg

  symtool env --debugger gdb > rust.gdb  # map /rustc/<hash> to rust-src

  symtool env --profile dist --target x86_64-pc-windows-msvc   # only that build's dirs
"""



def _out(text: str) -> None:
    """UTF-8 bytes whatever the console code page (shell outputs handle decoding themselves)."""
    from symtool.commands.common import write_utf8

    write_utf8(text)


def _warn(warnings: list, quiet: bool) -> None:
    from symtool.commands.common import warning

    if not quiet:
        for w in warnings:
            warning(w)


def _select_build_dirs(inputs, start: Optional[Path], packages: list, profile: Optional[str], targets: list,
                       env: dict) -> None:
    """Keep the build dirs of ``--profile`` and ``--target`` (every profile and triple when not given).

    ``-p`` is checked against the members, nothing more: the dirs hold every
    package's output.  Unknown profile, package or triple: UsageError.
    """
    from symtool.cargo.outputs import select_outputs
    from symtool.cargo.workspace import profile_dir_name

    selection = select_outputs(start, packages, profile, targets, env)
    dir_name = profile_dir_name(profile) if profile else None
    kept = [b for b in inputs.build_dirs
            if (dir_name is None or os.path.basename(b.path) == dir_name)
            and (not selection.triples or b.triple in selection.triples)]
    if not kept and (profile or targets):
        inputs.warnings.append(f"{selection.no_output('').message}: the symbol path lists no build output")
    inputs.build_dirs = kept


def run_env(path: Optional[str] = None, shell: Optional[str] = None, as_json: bool = False,
            write: Optional[str] = None, debugger: Optional[str] = None, quiet: bool = False,
            environ: Optional[dict] = None, manifest_path: Optional[str] = None, packages: Optional[list] = None,
            profile: Optional[str] = None, targets: Optional[list] = None) -> int:
    """The whole command; raises symtool.errors on bad input."""
    from symtool.debugger import paths as P
    from symtool.debugger.probe import gather
    from symtool.debugger.shells import default_shell, default_shell_warning, render, shell_syntax
    from symtool.errors import UsageError

    env = dict(os.environ if environ is None else environ)
    if shell is not None:
        shell = shell_syntax(shell)
    if manifest_path is not None:
        if path is not None:
            raise UsageError("give the workspace as PATH or --manifest-path, not both")
        if not Path(manifest_path).is_file():
            raise UsageError("manifest path does not exist or is not a file", manifest_path)
        path = manifest_path
    packages, targets = list(packages or ()), list(targets or ())
    selecting = bool(packages or profile or targets)
    if debugger is not None:
        if debugger not in ("gdb", "lldb"):
            raise UsageError(f"--debugger must be gdb or lldb, not {debugger!r}")
        if shell is not None or as_json or write is not None:
            raise UsageError("--debugger prints debugger commands: it does not combine with --shell, --json or --write")
    start = Path(path) if path else None
    if start is not None and not start.exists():
        raise UsageError("no such file or directory", start)

    if debugger is not None:
        from symtool.debugger.windbg import debugger_commands

        inputs = gather(start, env, scan_pdbs=False)
        if selecting:
            _select_build_dirs(inputs, start, packages, profile, targets, env)
        text = debugger_commands(inputs, debugger)
        warnings = P.compute_warnings(inputs)
        _warn(warnings, quiet)
        _out(text)
        return 0

    inputs = gather(start, env)
    if selecting:
        _select_build_dirs(inputs, start, packages, profile, targets, env)
    result = P.compute(inputs)
    written = []
    if write is not None:
        from symtool.debugger.windbg import write_files

        written = [str(p) for p in write_files(result, Path(write))]
    if as_json:
        import json

        data = result.as_json()
        if written:
            data["written"] = written
        _out(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return 0
    _warn(result.warnings, quiet)
    if write is not None and shell is None:
        _out("".join(f"{w}\n" for w in written))
        return 0
    if shell is None:
        shell = default_shell(inputs.platform, env)
        _warn([w for w in (default_shell_warning(inputs.platform, env),) if w], quiet)
    assignments = [(name, result.value(which)) for which, name in P.ENV_NAMES.items()]
    if not P.is_windows(inputs.platform):
        urls = P.debuginfod_urls(inputs)
        if P.url_stores(inputs) and urls:
            assignments.append(("DEBUGINFOD_URLS", urls))
    _out(render(shell, assignments))
    return 0


# --------------------------------------------------------------------------- fast path

_VALUE_OPTIONS = {"--shell": "shell", "--write": "write", "--debugger": "debugger",
                  "--manifest-path": "manifest_path", "--profile": "profile"}
_LIST_OPTIONS = {"--package": "packages", "-p": "packages", "--target": "targets"}
_FLAG_OPTIONS = {"--json": "as_json", "--quiet": "quiet", "-q": "quiet"}


def parse_fast(argv: list) -> Optional[dict]:
    """Options of ``symtool env`` parsed without click; None when typer should handle argv."""
    opts: dict = {}
    positional: list = []
    i = 0
    only_positional = False
    while i < len(argv):
        arg = argv[i]
        if only_positional or not arg.startswith("-") or arg == "-":
            positional.append(arg)
        elif arg == "--":
            only_positional = True
        elif arg in _FLAG_OPTIONS:
            opts[_FLAG_OPTIONS[arg]] = True
        elif arg.split("=", 1)[0] in _VALUE_OPTIONS or arg.split("=", 1)[0] in _LIST_OPTIONS:
            name, eq, value = arg.partition("=")
            if not eq:
                i += 1
                if i >= len(argv):
                    return None
                value = argv[i]
            if name in _LIST_OPTIONS:
                opts.setdefault(_LIST_OPTIONS[name], []).append(value)
            else:
                key = _VALUE_OPTIONS[name]
                if key in opts:
                    return None
                opts[key] = value
        else:
            return None  # --help, unknown options: typer's messages
        i += 1
    if len(positional) > 1:
        return None
    if positional:
        opts["path"] = positional[0]
    return opts


def fast_main(argv: list) -> Optional[int]:
    """Run ``symtool env`` with ``argv`` (after "env"); None if typer must take over."""
    opts = parse_fast(argv)
    if opts is None:
        return None
    from symtool.commands.common import run_parsed

    return run_parsed(opts, run_env, "as_json")


# --------------------------------------------------------------------------- typer

def register(app) -> None:
    import typer

    from symtool.commands.common import handle_errors
    from symtool.commands.workspace_opts import manifest_path_option, profile_option, target_option

    @handle_errors
    def env(
        path: Optional[Path] = typer.Argument(
            None, help="Workspace dir or manifest (default: the current directory).", show_default=False),
        shell: Optional[str] = typer.Option(
            None, "--shell", metavar="powershell|pwsh|cmd|bash|zsh|fish",
            help="Shell syntax of the printed statements (default: powershell on Windows, else $SHELL, else bash)."),
        manifest_path: Optional[str] = manifest_path_option(),
        package: Optional[List[str]] = typer.Option(
            None, "--package", "-p", metavar="SPEC",
            help="Checked to be a member (repeatable); the build dirs hold every package's output."),
        profile: Optional[str] = profile_option("every profile built"),
        target: Optional[List[str]] = target_option(),
        as_json: bool = typer.Option(
            False, "--json", help="Print the three values, their elements and where each came from, as JSON."),
        write: Optional[Path] = typer.Option(
            None, "--write", metavar="DIR",
            help="Write symbols.path, sources.path, images.path and symtool.windbg into DIR."),
        debugger: Optional[str] = typer.Option(
            None, "--debugger", metavar="gdb|lldb",
            help="Print gdb or lldb commands mapping /rustc/<hash> to the toolchain's rust-src."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No warnings on stderr."),
    ) -> None:
        code = run_env(str(path) if path else None, shell, as_json, str(write) if write else None, debugger, quiet,
                       manifest_path=manifest_path, packages=package, profile=profile, targets=target)
        if code:
            raise typer.Exit(code)

    env.__doc__ = HELP
    app.command(name="env", help=HELP + "\n\nBuild output dirs first, then srv*<cache>*<store> per "
                "configured store, then Microsoft's server. Config: \\[workspace.metadata.symtool] stores, "
                "cache; SYMTOOL_STORE, SYMTOOL_CACHE.", epilog=EPILOG)(env)
