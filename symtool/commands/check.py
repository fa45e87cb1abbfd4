"""``symtool check``: will a release build produce symbols a debugger can use?"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from symtool.commands.common import note

HELP = """Check that release profiles emit usable debug info, and fix the root Cargo.toml.

Resolves the effective debug, split-debuginfo and strip of each profile the
way cargo does (Cargo.toml inheritance and package overrides, .cargo/config.toml
files found from PATH upward and $CARGO_HOME, CARGO_PROFILE_* variables,
rustflags) and reports every value below the policy with its source and a fix.

Default profiles: release and every profile that inherits from it.
Policy: keys debug, split-debuginfo, strip in workspace.metadata.symtool.check;
default debug >= "line-tables-only", split-debuginfo "packed", strip "none".

Exit codes: 0 ok, 1 findings remain, 2 unreadable input or bad usage.
"""

EPILOG = """Examples:

  symtool check                       # the workspace around the current directory

  symtool check samples --json        # machine-readable

  symtool check --profile dist --target x86_64-pc-windows-msvc

  symtool check --fix --dry-run       # show the Cargo.toml diff, write nothing

  symtool check --fix                 # write it (atomically; comments, order, CRLF, BOM kept)
"""


def _print_report(result, out) -> None:
    out.write(f"workspace {result.workspace_root} (target {result.target})\n")
    for report in result.profiles:
        eff = ", ".join(f"{k} = {v}" for k, v in report.effective.items())
        status = "ok" if not report.findings else f"{len(report.findings)} finding(s)"
        out.write(f"[profile.{report.name}] {eff}: {status}\n")
        for f in report.findings:
            value = f.value if isinstance(f.value, str) else repr(f.value)
            out.write(f"  {f.key} = {value}  ({f.source})\n")
            out.write(f"      why: {f.message}\n")
            out.write(f"      fix: {f.fix}\n")
    count = sum(len(r.findings) for r in result.profiles)
    out.write("ok: release builds keep usable debug info\n" if result.ok else f"{count} finding(s)\n")


def check(
    path: Optional[Path] = typer.Argument(None, help="Workspace directory or Cargo.toml (default: current directory)."),
    profile: Optional[List[str]] = typer.Option(None, "--profile", "-p", metavar="NAME", help="Profile to check (repeatable). Default: release and every profile inheriting from it."),
    target: Optional[str] = typer.Option(None, "--target", metavar="TRIPLE", help="Target triple (default: build.target from cargo config, else the host)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON: {ok, workspace_root, profiles: [{name, effective, findings}]}."),
    fix: bool = typer.Option(False, "--fix", help="Write the fixes into the workspace root Cargo.toml."),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --fix (implied): print the unified diff, write nothing."),
    source_index: bool = typer.Option(False, "--source-index", help="Report what `symtool srcindex` would do with the release PDBs (exit 1: files served nowhere)."),
) -> None:
    from symtool.cargo.metadata import cargo_version, load_workspace
    from symtool.cargo.profiles import check_workspace
    from symtool.commands.common import print_json

    if source_index:
        from symtool.commands.common import error, print_json, warning
        from symtool.srcindex.report import check_source_index

        raise typer.Exit(check_source_index(path, json_out, error=error, warning=warning, print_json=print_json))
    env = dict(os.environ)
    workspace = load_workspace(path if path is not None else Path.cwd(), env)
    version = cargo_version(env)
    profiles = list(profile) if profile else None

    if fix or dry_run:
        from symtool.cargo.manifest import plan_fix, unified_diff, write_manifest

        outcome = plan_fix(workspace, env, profiles, target, version)
        result = outcome.result
        log = sys.stderr if json_out else sys.stdout
        if dry_run:
            diff = unified_diff(outcome.path, outcome.original, outcome.new)
            sys.stdout.write(diff)
            if not diff:
                note(f"{outcome.path}: nothing to change")
        elif outcome.changed:
            write_manifest(outcome.path, outcome.original, outcome.new)
            for keypath, value in outcome.applied:
                table = ".".join(keypath[:-1])
                log.write(f'fixed: {keypath[-1]} = "{value}" in [{table}] of {outcome.path}\n')
        if json_out:
            print_json(result.as_json())
        elif not dry_run:
            _print_report(result, sys.stdout)
        if dry_run:
            raise typer.Exit(1 if (outcome.changed or not result.ok) else 0)
        raise typer.Exit(0 if result.ok else 1)

    result = check_workspace(workspace, env, profiles, target, version)
    if json_out:
        print_json(result.as_json())
    else:
        _print_report(result, sys.stdout)
    raise typer.Exit(0 if result.ok else 1)


def register(app: typer.Typer) -> None:
    from symtool.commands.common import handle_errors

    app.command(name="check", help=HELP, epilog=EPILOG)(handle_errors(check))
