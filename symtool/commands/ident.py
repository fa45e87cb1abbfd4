"""``symtool id FILE...``: the debug identity and store keys of PE images, PDBs, ELF and Mach-O files."""

from __future__ import annotations

import os
import sys

from symtool.commands.common import error, error_object

EXAMPLES = """Examples:

  symtool id target/x86_64-pc-windows-msvc/release/crash-me.exe

  symtool id --json target/x86_64-pc-windows-msvc/release/*.pdb

  symtool id target/x86_64-unknown-linux-gnu/release/crash-me{,.dwp}

  symtool id target/aarch64-apple-darwin/release/crash-me.dSYM

Every file is reported; a file that is not a readable PE image, PDB, ELF or
Mach-O file gets one line on stderr and makes the exit code 2 (the others are
still reported).  A .dSYM bundle stands for the DWARF files inside it.
"""


def _store_path(name: str, index: str) -> str | None:
    from symtool.errors import UnsafeNameError
    from symtool.store.layout import key_path

    try:
        return key_path(name, index)
    except UnsafeNameError:
        return None  # a name no store may hold: reported as null, never used as a path


def identity_record(info) -> dict:
    """The stable ``--json`` object for a PeInfo, PdbInfo, ElfInfo or MachoInfo."""
    from symtool.ids import NB10, basename_any

    if info.kind in ("elf", "dwp", "dwo"):
        return _elf_record(info)
    if info.kind == "macho":
        return _macho_record(info)
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


def _keys(fn, *args) -> str | None:
    from symtool.errors import SymtoolError

    try:
        return fn(*args)
    except SymtoolError:
        return None  # a name no store may hold: reported as null, never used as a path


def elf_store_keys(info) -> list[dict]:
    """Every store key an ELF file is published under: [{"layout", "key"}...] (none without a build-id)."""
    from symtool.ids import basename_any
    from symtool.store.layout import DEBUGINFOD_ROOT, debuginfod_key, ssqp_elf_debug_key, ssqp_elf_key

    if info.index is None or info.kind != "elf":
        return []
    out = []
    if info.has_code:
        out.append({"layout": "ssqp", "key": _keys(ssqp_elf_key, basename_any(info.path), info.index)})
        out.append({"layout": "debuginfod", "key": f"{DEBUGINFOD_ROOT}/{debuginfod_key(info.index, 'executable')}"})
    if info.has_dwarf:
        out.append({"layout": "ssqp", "key": ssqp_elf_debug_key(info.index)})
        out.append({"layout": "debuginfod", "key": f"{DEBUGINFOD_ROOT}/{debuginfod_key(info.index, 'debuginfo')}"})
    return out


def _elf_record(info) -> dict:
    from symtool.formats.elf import ET_NAMES

    keys = elf_store_keys(info)
    primary = None
    if info.index is not None and info.kind == "elf":
        from symtool.store.layout import ssqp_elf_debug_key

        primary = keys[0]["key"] if keys else ssqp_elf_debug_key(info.index)
    return {
        "path": info.path, "kind": info.kind, "index": info.index, "store_path": primary,
        "machine": info.machine_name,
        "elf_type": ET_NAMES.get(info.elf_type, f"{info.elf_type:#x}"),
        "build_id": info.index,
        "debuglink": ({"name": info.debuglink[0], "crc32": f"{info.debuglink[1]:08x}"} if info.debuglink else None),
        "has_dwarf": info.has_dwarf,
        "has_code": info.has_code,
        "debug_only": info.is_debug_only,
        "dwo_ids": None if info.dwo_ids is None else [f"{x:016x}" for x in info.dwo_ids],
        "dwo_ids_error": info.dwo_error,
        "cu_index_version": info.cu_index_version,
        "store_keys": keys,
    }


def macho_slice_keys(info, sl) -> list[dict]:
    """Store keys of one Mach-O slice: the binary's or, for an MH_DSYM file, the DWARF file's."""
    from symtool.ids import basename_any
    from symtool.store.layout import ssqp_dwarf_key, ssqp_macho_key

    if sl.index is None:
        return []
    if sl.is_dsym:
        return [{"layout": "ssqp", "key": ssqp_dwarf_key(sl.index)}]
    out = [{"layout": "ssqp", "key": _keys(ssqp_macho_key, basename_any(info.path), sl.index)}]
    if sl.has_dwarf:
        out.append({"layout": "ssqp", "key": ssqp_dwarf_key(sl.index)})
    return out


def _macho_record(info) -> dict:
    slices = []
    for sl in info.slices:
        keys = macho_slice_keys(info, sl)
        slices.append({"arch": sl.arch, "uuid": sl.uuid.uuid_str if sl.uuid else None, "index": sl.index,
                       "filetype": sl.filetype_name, "has_dwarf": sl.has_dwarf,
                       "store_path": keys[0]["key"] if keys else None, "store_keys": keys})
    first = slices[0] if slices else {}
    return {
        "path": info.path, "kind": info.kind, "index": info.index, "store_path": first.get("store_path"),
        "machine": first.get("arch"),
        "uuid": first.get("uuid"),
        "fat": info.fat, "fat64": info.fat64,
        "dsym": info.is_dsym,
        "slices": slices,
    }


def _elf_lines(rec: dict) -> list[str]:
    kind = rec["kind"]
    if kind in ("dwp", "dwo"):
        ids = rec["dwo_ids"]
        what = rec["dwo_ids_error"] or f"{len(ids)} unit(s)"
        index = f" (.debug_cu_index v{rec['cu_index_version']})" if rec["cu_index_version"] else ""
        lines = [f"{rec['path']}: {kind} {rec['machine']} {what}{index}"]
        lines += [f"  dwo-id {x}" for x in ids or []]
        return lines
    bid = rec["build_id"] or "none (cannot be keyed: link with -Wl,--build-id)"
    role = "debug file" if rec["debug_only"] else "object" if rec["elf_type"] == "relocatable" else "binary"
    if rec["has_dwarf"] and not rec["debug_only"]:
        role += " with DWARF"
    lines = [f"{rec['path']}: elf {rec['machine']} {role} build-id {bid}"]
    if rec["debuglink"]:
        lines.append(f"  debuglink {rec['debuglink']['name']} crc32 {rec['debuglink']['crc32']}")
    if rec["dwo_ids_error"]:
        lines.append(f"  skeleton units: {rec['dwo_ids_error']}")
    elif rec["dwo_ids"]:
        lines.append(f"  skeleton units: {len(rec['dwo_ids'])} (needs a .dwp): {' '.join(rec['dwo_ids'])}")
    lines += [f"  {k['layout']:<10} {k['key'] or '(unsafe name)'}" for k in rec["store_keys"]]
    return lines


def _macho_lines(rec: dict) -> list[str]:
    fat = " universal (fat64)" if rec["fat64"] else " universal" if rec["fat"] else ""
    lines = [f"{rec['path']}: macho{fat} {len(rec['slices'])} slice(s)"]
    for sl in rec["slices"]:
        uuid = sl["uuid"] or "none (no LC_UUID: cannot be keyed)"
        lines.append(f"  {sl['arch']} {sl['filetype']} uuid {uuid}")
        lines += [f"    {k['layout']:<10} {k['key'] or '(unsafe name)'}" for k in sl["store_keys"]]
    return lines


def _source_index(info) -> dict | None:
    """Entries of the srcsrv and sourcelink streams (None: not source-indexed)."""
    if info.kind != "pdb":
        return None
    from symtool.formats.pdb import STREAM_SOURCELINK, STREAM_SRCSRV

    if STREAM_SRCSRV not in info.named_streams and STREAM_SOURCELINK not in info.named_streams:
        return None  # (the source indexer's modules are not loaded for a PDB it never touched)
    from symtool.errors import SymtoolError
    from symtool.srcindex.index import source_index_summary

    try:
        return source_index_summary(info.path, info.named_streams)
    except (SymtoolError, OSError):
        return None


def _line(rec: dict) -> str:
    if rec["kind"] in ("elf", "dwp", "dwo", "macho"):
        lines = _elf_lines(rec) if rec["kind"] != "macho" else _macho_lines(rec)
        if "usable" in rec:
            lines.insert(1, f"  {usable_text(rec)}")
        return "\n".join(lines)
    if "usable" in rec:
        return f"{_pe_pdb_line(rec)}  {usable_text(rec)}"
    return _pe_pdb_line(rec)


def _pe_pdb_line(rec: dict) -> str:
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


HELP = """Show debug identities and store keys: PE/PDB (GUID, ages, the PDB a binary asks for), ELF build-ids, .dwp units, Mach-O UUIDs.

Formats are detected by content, never by extension.
"""


def run_ident(files: list[str], json_out: bool) -> int:
    """``symtool id``: print the records; the exit code (2 when a file was unreadable)."""
    from symtool.commands.common import print_json
    from symtool.errors import SymtoolError
    from symtool.formats.detect import read_identity

    records = []
    failures: list[BaseException] = []
    for f in _expand(files):
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
        rec.update(usable_record(f, info))
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
    return 2 if failures else 0


def fast_main(argv: list[str]) -> int | None:
    """``symtool id FILE... [--json]`` without the CLI framework (identity is often a whole
    run: typer's import would be most of it); None when typer must take over (help, any
    other option, no file)."""
    files: list[str] = []
    json_out = only_files = False
    for arg in argv:
        if not only_files and arg == "--":
            only_files = True
        elif not only_files and arg == "--json":
            json_out = True
        elif not only_files and arg.startswith("-") and arg != "-":
            return None
        else:
            files.append(arg)
    if not files:
        return None
    from symtool.commands.common import report_error
    from symtool.errors import HANDLED

    try:
        return run_ident(files, json_out)
    except HANDLED as err:
        return report_error(err, json_out)


def usable_record(path, info) -> dict:
    """``usable`` and ``features``, the last keys of an id record (symtool.usable defines them)."""
    from symtool.errors import SymtoolError
    from symtool.usable import UNKNOWN, file_features, verdict

    try:
        features = file_features(path, info)
    except (SymtoolError, OSError):
        # The identity was readable, the debug info is not: say so rather than guess.
        return {"usable": UNKNOWN, "features": None}
    return {"usable": verdict(features), "features": features.to_json() if features else None}


def usable_text(rec: dict) -> str:
    """``usable: types only (types)``: the verdict and the features present."""
    feats = rec.get("features") or {}
    have = [k.replace("_", " ") for k, v in feats.items() if v]
    text = f"usable: {rec['usable']}" + (f" ({', '.join(have)})" if have else "")
    if rec["kind"] == "pe" and rec["usable"] != "usable":
        text += "; a PE image's symbols are in its PDB"
    return text


def _expand(files: list[str]) -> list[str]:
    """Files as given; a .dSYM bundle becomes the Mach-O files in its Contents/Resources/DWARF."""
    out = []
    for f in files:
        if not os.path.isdir(f):  # only a directory can be a bundle: files need no Mach-O reader
            out.append(f)
            continue
        from symtool.formats.macho import dsym_dwarf_files, is_dsym_bundle

        if is_dsym_bundle(f):
            found = dsym_dwarf_files(f)
            out.extend(str(p) for p in found) if found else out.append(f)
        else:
            out.append(f)
    return out


def register(app) -> None:
    import typer

    from symtool.commands.common import handle_errors

    def ident(
        files: list[str] = typer.Argument(..., metavar="FILE...",
                                          help="PE images (.exe/.dll/.sys...), PDBs, ELF files (.debug, .dwp), "
                                               "Mach-O files and .dSYM bundles, any name."),
        json_out: bool = typer.Option(False, "--json", help="A JSON list, one object per readable file."),
    ) -> None:
        code = run_ident(files, json_out)
        if code:
            raise typer.Exit(code)

    app.command(name="id", help=HELP, epilog=EXAMPLES)(handle_errors(ident))


__all__ = ["register", "identity_record", "run_ident", "fast_main", "usable_record", "usable_text"]
