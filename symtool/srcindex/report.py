"""``symtool check --source-index``: what indexing the workspace's release PDBs would do."""

from __future__ import annotations

import sys
from pathlib import Path

from symtool.srcindex.index import default_pdbs, load_config, plan_pdb
from symtool.srcindex.rules import RULES


def check_source_index(path: Path | None, as_json: bool, *, error, warning, print_json) -> int:
    """Print the plan for every release PDB; the exit code (1 when a file can be served nowhere).

    ``error``, ``warning`` and ``print_json`` are the CLI's output helpers.
    """
    from symtool.errors import SymtoolError

    start = Path(path) if path is not None else None
    cfg = load_config(start)
    totals = {rule: 0 for rule in RULES}
    pdbs, unserved, toolchain, bad = [], [], [], 0
    for pdb in default_pdbs(start):
        try:
            plan = plan_pdb(pdb, cfg)
        except (SymtoolError, OSError) as err:
            error(str(err))
            bad += 1
            continue
        for rule, n in plan.counts().items():
            totals[rule] += n
        unserved += [(str(pdb), r) for r in plan.unserved()]
        toolchain += [(str(pdb), r) for r in plan.resolutions if r.rule == "toolchain"]
        pdbs.append({"pdb": str(pdb), "counts": plan.counts()})
    if as_json:
        print_json({"source_index": {"totals": totals, "pdbs": pdbs,
                                     "not_indexed": [{"pdb": p, "path": r.path, "reasons": r.reasons}
                                                     for p, r in unserved],
                                     "toolchain": [{"pdb": p, "path": r.path, "reasons": r.reasons}
                                                   for p, r in toolchain]}})
    else:
        out = sys.stdout
        out.write(f"source index: {totals['workspace']} workspace files to the forge, {totals['std']} std, "
                  f"{totals['crate']} crates, {totals['map']} mapped, {totals['archive']} to the archive, "
                  f"{totals['none']} nowhere; {totals['toolchain']} of the toolchain and SDK (not ours)\n")
        for pdb, r in unserved:
            warning(f"{pdb}: {r.path}: {'; '.join(r.reasons) or 'no rule applies'}")
    if bad:
        return 2
    return 1 if unserved else 0
