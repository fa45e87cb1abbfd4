"""``symtool id FILE...``: the debug identity and store key of PE images and PDBs."""

from __future__ import annotations

import sys
from typing import List

import typer

from symtool.commands.common import error, error_object

EXAMPLES = """Examples:

  symtool id target/x86_64-pc-windows-msvc/release/crash-me.exe

  symtool id --json target/x86_64-pc-windows-msvc/release/*.pdb

Every file is reported; a file that is not a readable PE image or PDB gets one
line on stderr and makes the exit code 2 (the others are still reported).
"""


def _store_path(name: str, index: str) -> str | None:
    from symtool.errors import UnsafeNameError
    from symtool.store.layout import key_path

    try:
        return key_path(name, index)
    except UnsafeNameError:
        return None  # a name no store may hold: reported as null, never used as a path


def identity_record(info) -> dict:
    """The stable ``--json`` object for a PeInfo or PdbInfo."""
    from symtool.ids import NB10, basename_any

    name = basename_any(info.path)
    rec: dict = {"path": info.path, "kind": info.kind, "index": info.index,
                 "store_path": _store_path(name, info.index)}
    if info.kind == "pe":
        cv = info.primary_codeview
        did = cv.debug_id if cv else None
        rec.update({
            "machine": info.machine_name,
            "machine_type": info.machine,
            "timestamp": info.timestamp,
            "size_of_image": info.size_of_image,
            "is_dll": info.is_dll,
            "repro": info.repro,
            "pdb_name": cv.pdb_name if cv else None,
            "pdb_path": cv.pdb_path if cv else None,
            "pdb_guid": did.guid_str if did else None,
            "pdb_age": did.age if did else None,
            "pdb_signature": did.signature if did and did.kind == NB10 else None,
            "pdb_index": did.index() if did else None,
            "pdb_store_path": _store_path(cv.pdb_name, did.index()) if cv and cv.pdb_name else None,
            "pdb_checksum": ({"algorithm": info.pdb_checksum[0], "digest": info.pdb_checksum[1]}
                             if info.pdb_checksum else None),
            "codeview": [
                {"pdb_path": c.pdb_path, "guid": c.debug_id.guid_str, "age": c.debug_id.age,
                 "signature": c.debug_id.signature, "index": c.debug_id.index()}
                for c in info.codeview
            ],
        })
    else:
        did = info.debug_id
        rec.update({
            "guid": did.guid_str if did.kind != NB10 else None,
            "signature": did.signature if did.kind == NB10 else info.signature,
            "age": info.age,
            "info_age": info.info_age,
            "block_size": info.block_size,
            "num_streams": info.num_streams,
            "named_streams": sorted(info.named_streams),
            "source_index": _source_index(info),
        })
    return rec


def _source_index(info) -> dict | None:
    """Entries of the srcsrv and sourcelink streams (None: not source-indexed)."""
    if info.kind != "pdb":
        return None
    from symtool.errors import SymtoolError
    from symtool.srcindex.index import source_index_summary

    try:
        return source_index_summary(info.path, info.named_streams)
    except (SymtoolError, OSError):
        return None


def _line(rec: dict) -> str:
    store = rec["store_path"] or f"(unsafe name) {rec['index']}"
    if rec["kind"] == "pe":
        head = f"{rec['path']}: pe {rec['machine']} {store}"
        if rec["pdb_index"] is None:
            return f"{head}  pdb: none (no CodeView record)"
        ident = f"guid {rec['pdb_guid']}" if rec["pdb_guid"] else f"signature {rec['pdb_signature']:08X}"
        want = rec["pdb_store_path"] or rec["pdb_index"]
        return f"{head}  pdb: {want} {ident} age {rec['pdb_age']} path \"{rec['pdb_path']}\""
    ident = f"guid {rec['guid']}" if rec["guid"] else f"signature {rec['signature']:08X}"
    if rec["kind"] == "portable-pdb":
        age = "- (portable PDBs have none)"
    else:
        age = "none (no DBI stream)" if rec["age"] is None else rec["age"]
    info_age = "-" if rec["info_age"] is None else rec["info_age"]
    return f"{rec['path']}: {rec['kind']} {store} {ident} age {age} info-age {info_age}"


def ident(
    files: List[str] = typer.Argument(..., metavar="FILE...", help="PE images (.exe/.dll/.sys...) and PDBs, any name."),
    json_out: bool = typer.Option(False, "--json", help="A JSON list, one object per readable file."),
) -> None:
    """Show debug identities: store key (name/INDEX/name), GUID, DBI and info ages, the PDB a binary asks for.

    Formats are detected by content, never by extension.
    """
    from symtool.commands.common import print_json
    from symtool.errors import SymtoolError
    from symtool.formats.detect import read_identity

    records = []
    failures: list[BaseException] = []
    for f in files:
        try:
            info = read_identity(f)
        except SymtoolError as err:
            error(str(err))
            failures.append(err)
            continue
        except OSError as err:
            error(f"{f}: {err.strerror or err}")
            failures.append(err)
            continue
        rec = identity_record(info)
        records.append(rec)
        if not json_out:
            sys.stdout.write(_line(rec) + "\n")
    if json_out:
        # Nothing readable at all is a failure of the command: the JSON error object,
        # like every --json command's; otherwise the list, with the bad files on stderr.
        if failures and not records:
            print_json(error_object(failures[-1], 2, str(failures[-1])))
        else:
            print_json(records)
    sys.stdout.flush()
    if failures:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    from symtool.commands.common import handle_errors

    app.command(name="id", help=ident.__doc__, epilog=EXAMPLES)(handle_errors(ident))


__all__ = ["register", "identity_record", "ident"]
