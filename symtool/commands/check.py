"""``symtool check``: will a release build produce symbols a debugger can use?"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from symtool.commands.common import note
from symtool.text import count as plural

HELP = """Check that release profiles emit usable debug info, and fix the root Cargo.toml.

Resolves the effective debug, split-debuginfo and strip of each profile the
way cargo does (Cargo.toml inheritance and package overrides, .cargo/config.toml
files found from PATH upward and $CARGO_HOME, CARGO_PROFILE_* variables,
rustflags) for each target the workspace builds (build.target, or --target;
the host when neither is set), and reports every value below the policy with
its target, file and line, and a fix.

Default profiles: release and every profile that inherits from it.
Policy: keys debug, split-debuginfo, strip in workspace.metadata.symtool.check;
default debug >= "line-tables-only", split-debuginfo "packed", strip "none".

Exit codes: 0 ok, 1 findings remain (or, with --diff, the fix would change
the manifest), 2 unreadable input or bad usage (an unknown target triple,
a package not in the workspace, an undefined profile).
"""

EPILOG = """Examples:

  symtool check                       # the workspace around the current directory

  symtool check --manifest-path samples/Cargo.toml --json

  symtool check --profile dist --target x86_64-pc-windows-msvc --target aarch64-pc-windows-msvc

  symtool check -p crash-me           # overrides for other packages do not count

  symtool check --diff                # show the Cargo.toml change, write nothing

  symtool check --fix                 # write it (atomically; comments, order, CRLF, BOM kept)
"""


def _shown_path(path: Path) -> str:
    """``path`` relative to the current directory when it is below it (as ruff names files), else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _print_report(result, out) -> None:
    from symtool.cargo.profiles import toml_literal

    out.write(f"workspace {result.workspace_root} (targets: {', '.join(result.targets)})\n")
    for report in result.profiles:
        eff = ", ".join(f"{k} = {toml_literal(v)}" for k, v in report.effective.items())
        status = "ok" if not report.findings else f"{len(report.findings)} finding(s)"
        out.write(f"[profile.{report.name}] for {report.target}: {eff}: {status}\n")
        if report.output_dir is not None:
            out.write(f"  output: {report.output_dir}\n")
        for f in report.findings:
            out.write(f"  {f.shown()}  ({f.source})\n")
            out.write(f"      why: {f.message}\n")
            out.write(f"      fix: {f.fix}\n")
    count = sum(len(r.findings) for r in result.profiles)
    out.write("ok: release builds keep usable debug info\n" if result.ok else f"{plural(count, 'finding')}\n")


def check(
    path: Optional[Path] = typer.Argument(None, help="Workspace directory or Cargo.toml (default: current directory)."),
    manifest_path: Optional[Path] = typer.Option(None, "--manifest-path", metavar="PATH",
                                                 help="Path to Cargo.toml, as in cargo (instead of PATH)."),
    package: Optional[List[str]] = typer.Option(None, "--package", "-p", metavar="SPEC",
                                                help="Package to check (repeatable): \\[profile.*.package.<other>] "
                                                     "overrides do not count. Default: all."),
    profile: Optional[List[str]] = typer.Option(None, "--profile", metavar="NAME",
                                                help="Profile to check (repeatable; dev builds into debug/). "
                                                     "Default: release and every profile inheriting from it."),
    target: Optional[List[str]] = typer.Option(None, "--target", metavar="TRIPLE",
                                               help="Target triple (repeatable). Default: build.target from cargo "
                                                    "config, else the host."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON: {ok, workspace_root, targets, profiles: "
                                                        "[{name, target, output_dir, effective, findings}]}."),
    fix: bool = typer.Option(False, "--fix", help="Write the fixes into the workspace root Cargo.toml."),
    diff: bool = typer.Option(False, "--diff", "--dry-run",
                              help="Print the fix as a unified diff, write nothing (--dry-run is an alias)."),
    source_index: bool = typer.Option(False, "--source-index", help="Report what `symtool srcindex` would do with the release PDBs (exit 1: files served nowhere)."),
) -> None:
    from symtool.cargo.metadata import cargo_version, load_workspace
    from symtool.cargo.profiles import check_workspace
    from symtool.commands.common import print_json
    from symtool.errors import UsageError

    if source_index:
        from symtool.commands.common import error, warning
        from symtool.srcindex.report import check_source_index

        raise typer.Exit(check_source_index(path, json_out, error=error, warning=warning, print_json=print_json))
    if path is not None and manifest_path is not None:
        raise UsageError("give the workspace either as PATH or with --manifest-path, not both")
    if manifest_path is not None and manifest_path.name != "Cargo.toml":
        raise UsageError("the manifest path must be a path to a Cargo.toml file", manifest_path)
    env = dict(os.environ)
    workspace = load_workspace(manifest_path or path or Path.cwd(), env)
    version = cargo_version(env)
    profiles = list(profile) if profile else None
    targets = list(target) if target else None
    packages = list(package) if package else None

    if fix or diff:
        from symtool.cargo.manifest import plan_fix, unified_diff, write_manifest

        outcome = plan_fix(workspace, env, profiles, targets, version, packages=packages)
        result = outcome.result
        log = sys.stderr if json_out else sys.stdout
        if diff:
            text = unified_diff(outcome.path, outcome.original, outcome.new, _shown_path(outcome.path))
            sys.stdout.write(text)
            if not text:
                note(f"{outcome.path}: nothing to change")
        elif outcome.changed:
            write_manifest(outcome.path, outcome.original, outcome.new)
            for keypath, value in outcome.applied:
                table = ".".join(keypath[:-1])
                log.write(f'fixed: {keypath[-1]} = "{value}" in [{table}] of {outcome.path}\n')
        if json_out and not diff:
            print_json(result.as_json())
        elif not diff:
            _print_report(result, sys.stdout)
        if diff:
            raise typer.Exit(1 if (outcome.changed or not result.ok) else 0)
        raise typer.Exit(0 if result.ok else 1)

    result = check_workspace(workspace, env, profiles, targets, version, packages=packages)
    if json_out:
        print_json(result.as_json())
    else:
        _print_report(result, sys.stdout)
    raise typer.Exit(0 if result.ok else 1)


def register(app: typer.Typer) -> None:
    from symtool.commands.common import handle_errors

    app.command(name="check", help=HELP, epilog=EPILOG)(handle_errors(check))
