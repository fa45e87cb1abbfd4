"""``symtool verify [PATH...]``: do the binaries and their PDBs belong together?"""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from symtool.commands.common import error

EXAMPLES = """Examples:

  symtool verify                      # every profile of this workspace's target dir

  symtool verify target/x86_64-pc-windows-msvc/release

  symtool verify --json dist/app.exe

Exit codes: 0 every binary matches its PDB; 1 a mismatch, a missing PDB, a
binary without CodeView record, or nothing to verify; 2 bad usage or an
unreadable binary or PDB.
"""


def verify(
    paths: Optional[List[str]] = typer.Argument(
        None, metavar="[PATH...]",
        help="Binaries or directories (searched recursively for .exe/.dll/.sys). "
             "Default: all profile dirs of the workspace's target dir (CARGO_TARGET_DIR honoured).",
    ),
    json_out: bool = typer.Option(False, "--json", help="A JSON list, one object per binary."),
) -> None:
    """Check that each binary's PDB matches it, as a debugger would (same GUID, DBI age = image age).

    The PDB is looked for at the path in the CodeView record, then beside the
    binary under the CodeView file name (crash-me.exe -> crash_me.pdb).
    """
    from symtool.commands.common import print_json
    from symtool.verify import MATCH, UNREADABLE, verify_paths, verify_workspace

    verdicts = verify_paths(paths) if paths else verify_workspace()
    if json_out:
        print_json([v.to_json() for v in verdicts])
    else:
        width = max(len(v.status) for v in verdicts)
        for v in verdicts:
            detail = v.reason
            if v.status == MATCH:
                detail = f"{v.pdb} ({v.pdb_id})"
            sys.stdout.write(f"{v.status:<{width}}  {v.binary}: {detail}\n")
        counts: dict[str, int] = {}
        for v in verdicts:
            counts[v.status] = counts.get(v.status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in counts.items())
        sys.stdout.write(f"{len(verdicts)} binar{'y' if len(verdicts) == 1 else 'ies'}: {summary}\n")
    sys.stdout.flush()
    if any(v.status == UNREADABLE for v in verdicts):
        for v in verdicts:
            if v.status == UNREADABLE:
                error(f"{v.binary}: {v.reason}")
        raise typer.Exit(2)
    if not all(v.status == MATCH for v in verdicts):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    from symtool.commands.common import handle_errors

    app.command(name="verify", help=verify.__doc__, epilog=EXAMPLES)(handle_errors(verify))


__all__ = ["register", "verify"]
