"""``symtool srcindex [PDB...]``: write srcsrv and Source Link streams into PDBs (replaces pdbstr)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from symtool.commands.common import error, note, warning

EXAMPLES = """Examples:

  symtool srcindex

  symtool srcindex target/x86_64-pc-windows-msvc/release/crash_me.pdb --sources /srv/symbols

  symtool srcindex --in-place target/release/big.pdb

  symtool srcindex ci-artifact.pdb --map 'D:\\a\\proj\\=https://raw.githubusercontent.com/me/proj/COMMIT/'

Without PDB the workspace's release output is indexed.  Each source file the
PDB lists is mapped, first rule first: --map prefixes, std (/rustc/<commit>/),
registry crates (.cargo_vcs_info.json + repository), workspace files (git
remote at HEAD), then the source archive (--sources).  Files of Visual Studio,
the Windows SDK and the CRT's build paths are "toolchain (not ours)": counted
and listed (--json), never a finding.  Exit code 2 when a PDB is unreadable (it
is never rewritten), 1 when some files of the workspace or its dependencies can
be served from nowhere, else 0.

Writes are crash-safe either way.  By default the PDB is indexed in a copy
that is fsynced and renamed over it.  --in-place commits inside the file the
way msf.cpp (pdbstr) does: the new pages are fsynced before the superblock
that points at them is rewritten, so only the new streams' bytes are written.
"""


def srcindex_cmd(
    pdbs: Optional[List[Path]] = typer.Argument(None, metavar="[PDB...]",
                                                help="PDBs to index in place (default: the workspace's release output)."),
    maps: List[str] = typer.Option([], "--map", metavar="PREFIX=URL",
                                   help="Map paths starting with PREFIX (any case, either separator) to URL; repeatable."),
    sources: Optional[str] = typer.Option(None, "--sources", metavar="STORE",
                                          help="Local store directory to copy unmapped files into (the source archive)."),
    sources_url: Optional[str] = typer.Option(None, "--sources-url", metavar="URL",
                                              help="How debuggers reach the archive (default: --sources itself)."),
    sources_root: List[Path] = typer.Option([], "--sources-root", metavar="DIR",
                                            help="Another directory the archive may copy files from (repeatable); "
                                                 "by default the workspace root, cargo's registry and git "
                                                 "checkouts and the toolchain's rust-src."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be indexed; write nothing."),
    in_place: bool = typer.Option(False, "--in-place",
                                  help="Commit inside the PDB as pdbstr does (new pages, then the superblock) "
                                       "instead of writing a copy and renaming it: no copy of a large PDB. "
                                       "Hard-linked and symlinked PDBs, and PDBs in a symbol store, are still copied."),
    as_json: bool = typer.Option(False, "--json", help="One object per PDB: counts and every file's rule and target."),
) -> None:
    """Source-index PDBs: every frame's source fetchable by WinDBG, cdb and Visual Studio."""
    from symtool.commands.common import print_json
    from symtool.errors import SymtoolError
    from symtool.srcindex.index import default_pdbs, index_pdb, load_config

    archive_dir = Path(sources) if sources else None
    if archive_dir is not None and not archive_dir.is_dir():
        from symtool.errors import UsageError

        raise UsageError(f"--sources: {sources} is not a directory")
    cfg = load_config(maps=list(maps), archive_url=sources_url or (str(archive_dir.absolute()) if archive_dir else None),
                      source_roots=list(sources_root))
    targets = list(pdbs) if pdbs else default_pdbs()
    results, bad, unserved = [], 0, 0
    for pdb in targets:
        try:
            plan = index_pdb(pdb, cfg, archive_dir=archive_dir, dry_run=dry_run, in_place=in_place)
        except (SymtoolError, OSError) as err:
            text = str(err) if isinstance(err, SymtoolError) else f"{pdb}: {err.strerror or err}"
            error(f"{text} (not indexed)")
            bad += 1
            continue
        results.append(plan)
        missing = plan.unserved()
        unserved += len(missing)
        if not as_json:
            c = plan.counts()
            verb = "would index" if dry_run else "indexed" if plan.written else "nothing to index in"
            sys.stdout.write(f"{verb} {pdb}: {len(plan.entries())} files (workspace {c['workspace']}, std {c['std']}, "
                             f"crates {c['crate']}, mapped {c['map']}, archive {c['archive']}, none {c['none']}; "
                             f"toolchain {c['toolchain']}, not ours)\n")
            if in_place and plan.write_mode == "copy":
                note(f"{pdb}: {plan.copy_reason or 'has other hard links'}; indexed in a renamed copy, not in place")
            for r in missing[:20]:
                warning(f"{r.path}: not indexed: {'; '.join(r.reasons) or 'no rule applies'}")
            if len(missing) > 20:
                warning(f"... and {len(missing) - 20} more files not indexed (--json lists them all)")
            for r in plan.resolutions:
                if r.rule == "archive" and r.reasons:
                    note(f"{r.path}: archived ({'; '.join(r.reasons)})")
    if as_json:
        print_json([p.to_json() for p in results])
    if bad:
        raise typer.Exit(2)
    if unserved:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    from symtool.commands.common import handle_errors

    app.command(name="srcindex", help=srcindex_cmd.__doc__, epilog=EXAMPLES)(handle_errors(srcindex_cmd))
