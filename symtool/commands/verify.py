"""``symtool verify [PATH...]``: do the binaries and their debug files (PDB, .dwp, .dSYM) belong together?"""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from symtool.commands.common import error
from symtool.commands.workspace_opts import manifest_path_option, package_option, profile_option, target_option

EXAMPLES = """Examples:

  symtool verify                      # the release output of this workspace

  symtool verify --profile dist -p crash-me --target x86_64-pc-windows-msvc

  symtool verify target/x86_64-pc-windows-msvc/release

  symtool verify --json dist/app.exe dist/app.pdb

  symtool verify target/x86_64-unknown-linux-gnu/release/crash-me other-build/crash-me.dwp

  symtool verify --target aarch64-apple-darwin     # crash-me with crash-me.dSYM

Exit codes: 0 every binary matches its debug file (or needs none:
dwp-not-needed); 1 a mismatch, a missing PDB/.dwp/.dSYM, a binary without
CodeView record, build-id or UUID; 2 bad usage, nothing to verify (no build
output), or an unreadable binary or debug file.
"""


def _summary(verdicts) -> str:
    from symtool.text import count

    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v.status] = counts.get(v.status, 0) + 1
    listed = ", ".join(f"{n} {s}" for s, n in counts.items())
    return f"{count(len(verdicts), 'binary', 'binaries')}: {listed}"


def verify(
    paths: Optional[List[str]] = typer.Argument(
        None, metavar="[PATH...]",
        help="Binaries, their PDBs/.dwp/.dSYM, or directories (searched recursively for .exe/.dll/.sys "
             "and, by content, ELF and Mach-O binaries). "
             "A debug file named here is the one compared with the binary named here. "
             "Default: the workspace's build output for --profile and --target (CARGO_TARGET_DIR honoured).",
    ),
    manifest_path: Optional[str] = manifest_path_option(),
    package: Optional[List[str]] = package_option(),
    profile: Optional[str] = profile_option(),
    target: Optional[List[str]] = target_option(),
    json_out: bool = typer.Option(False, "--json", help="A JSON list, one object per binary."),
) -> None:
    """Check that each binary's debug file matches it, as a debugger would.

    PE: the PDB at the path in the CodeView record, then beside the binary
    under the CodeView file name (crash-me.exe -> crash_me.pdb); same GUID,
    DBI age = image age.  ELF: <binary>.dwp holds the DWO IDs of the binary's
    skeleton units, no more, no less.  Mach-O: <binary>.dSYM has the binary's
    UUID for each architecture (its DWARF files found by content).
    """
    from symtool.commands.common import print_json
    from symtool.commands.workspace_opts import given, select
    from symtool.errors import UsageError
    from symtool.verify import MATCH, UNREADABLE, verify_paths, verify_workspace

    if paths:
        options = given(manifest_path, package, profile, target)
        if options:
            raise UsageError(f"{', '.join(options)} select a workspace's output: give them or PATHs, not both")
        verdicts = verify_paths(paths)
    else:
        verdicts = verify_workspace(select(manifest_path, package, profile, target))
    if json_out:
        print_json([v.to_json() for v in verdicts])
    else:
        width = max(len(v.status) for v in verdicts)
        for v in verdicts:
            detail = v.reason
            if v.status == MATCH and v.format == "pe":
                detail = f"{v.pdb} ({v.pdb_id})"
            elif v.status == MATCH:
                detail = f"{v.debug_file}: {v.reason}"
            usable = f"  [usable: {v.usable}]" if v.usable else ""
            sys.stdout.write(f"{v.status:<{width}}  {v.binary}: {detail}{usable}\n")
        sys.stdout.write(_summary(verdicts) + "\n")
    sys.stdout.flush()
    if any(v.status == UNREADABLE for v in verdicts):
        for v in verdicts:
            if v.status == UNREADABLE:
                error(f"{v.binary}: {v.reason}")
        raise typer.Exit(2)
    if not all(v.ok for v in verdicts):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    from symtool.commands.common import handle_errors

    app.command(name="verify", help=verify.__doc__, epilog=EXAMPLES)(handle_errors(verify))


__all__ = ["register", "verify"]
