"""Plan and write the source index of PDBs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from symtool.errors import UsageError
from symtool.formats.pdb import STREAM_SOURCELINK, STREAM_SRCSRV, iter_source_files, open_msf, read_pdb_file
from symtool.srcindex.roots import SourceRoots
from symtool.srcindex.rules import RULES, IndexConfig, Resolution, config_from_metadata, parse_map, resolve
from symtool.srcindex.streams import representable, sourcelink_text, srcsrv_text


@dataclass
class PdbPlan:
    pdb: str
    resolutions: list[Resolution]
    written: bool = False
    archived: list[str] = field(default_factory=list)  # archive keys copied (new ones)
    bytes_read: int = 0
    write_mode: str | None = None  # "copy" or "in-place" once written
    copy_reason: str | None = None  # why --in-place still wrote a renamed copy

    def counts(self) -> dict[str, int]:
        out = {rule: 0 for rule in RULES}
        for r in self.resolutions:
            out[r.rule] += 1
        return out

    def entries(self) -> list[tuple[str, str]]:
        return [(r.path, r.target) for r in self.resolutions
                if r.rule != "none" and r.target and representable(r.path, r.target)]

    def unserved(self) -> list[Resolution]:
        """Files of the workspace or its dependencies served from nowhere (toolchain files are not ours)."""
        return [r for r in self.resolutions if r.rule == "none"]

    def to_json(self) -> dict:
        return {
            "pdb": self.pdb, "written": self.written, "write_mode": self.write_mode,
            "copy_reason": self.copy_reason, "counts": self.counts(), "archived": self.archived,
            "files": [{"path": r.path, "rule": r.rule, "target": r.target, "reasons": r.reasons,
                       "checksum": ({"algorithm": r.file.algorithm, "digest": r.file.digest}
                                    if r.file.algorithm else None)} for r in self.resolutions],
        }


def load_config(start: Path | None = None, maps: list[str] = (), archive_url: str | None = None,
                environ: Mapping[str, str] | None = None, source_roots: list[Path] = ()) -> IndexConfig:
    """Settings from ``[workspace.metadata.symtool.srcindex]`` plus the command line.

    ``source_roots``: ``--sources-root`` directories, added to the allow-list of
    what the archive may copy (srcindex/roots.py)."""
    from symtool.cargo.workspace import cargo_home, find_root_manifest, read_toml
    from symtool.settings import metadata_table
    from symtool.srcindex.git import open_checkout

    env = os.environ if environ is None else environ
    start = Path(start or Path.cwd()).absolute()
    manifest = find_root_manifest(start)
    meta = config_from_metadata(metadata_table(read_toml(manifest)), manifest) if manifest else {}
    cfg = IndexConfig()
    cfg.maps = [parse_map(m) for m in maps] + list(meta.get("maps", []))
    cfg.forge = meta.get("forge")
    cfg.url_template = meta.get("url_template")
    cfg.archive_url = archive_url or meta.get("archive_url")
    cfg.cargo_home = cargo_home(env)[0]
    cfg.checkout = open_checkout(manifest.parent if manifest else (start if start.is_dir() else start.parent))
    cfg.sources = SourceRoots.standard(manifest.parent if manifest else None, cfg.cargo_home, list(source_roots), env)
    return cfg


def plan_pdb(pdb: str | os.PathLike[str], cfg: IndexConfig) -> PdbPlan:
    """What indexing ``pdb`` would write; FormatError for unreadable PDBs."""
    p = os.fspath(pdb)
    f, msf = open_msf(p)
    with f:
        if msf.version != 7:
            from symtool.errors import FormatError

            raise FormatError("MSF 2.00 PDBs (pre-VC 7) cannot be source-indexed", p)
        info = read_pdb_file(f, p)
        files = iter_source_files(msf, info.named_streams)
        read = msf.r.bytes_read
    return PdbPlan(p, [resolve(sf, cfg) for sf in files], bytes_read=read)


def copy_archive(plan: PdbPlan, store: Path) -> list[str]:
    """Copy the plan's archive files into the local store ``store`` (content-addressed: never replaced)."""
    from symtool.fsutil import atomic_writer

    added = []
    for r in plan.resolutions:
        if r.rule != "archive" or r.archive_key is None or r.archive_data is None:
            continue
        from symtool.store.layout import store_dir

        parts = r.archive_key.split("/")
        # Every level a real directory inside the store (a store owner's symlinked
        # <name>/ would otherwise receive the copy wherever it points).
        dest = store_dir(store, *parts[:-1]) / parts[-1]
        if os.path.lexists(dest):
            continue  # content-addressed: whatever holds this key holds these bytes, or is verify's finding
        try:
            # The source's own permission bits: a 0600 file does not become world-readable.
            with atomic_writer(dest, "wb", replace=False, mode_like=r.archive_source) as out:
                out.write(r.archive_data)
            added.append(r.archive_key)
        except FileExistsError:
            pass
    plan.archived = added
    return added


def streams_for(plan: PdbPlan) -> dict[str, bytes]:
    entries = plan.entries()
    return {STREAM_SRCSRV: srcsrv_text(entries).encode("utf-8"),
            STREAM_SOURCELINK: sourcelink_text(entries).encode("utf-8")}


def index_pdb(pdb: str | os.PathLike[str], cfg: IndexConfig, *, archive_dir: Path | None = None,
              dry_run: bool = False, in_place: bool = False) -> PdbPlan:
    """Plan, copy archive files (when ``archive_dir``), then write both streams into ``pdb``.

    ``in_place``: commit inside the PDB (msf_write's in-place mode) instead of a renamed copy."""
    from symtool.formats.msf_write import write_named_streams

    plan = plan_pdb(pdb, cfg)
    if dry_run or not plan.entries():
        return plan
    store = _store_of(plan.pdb)
    if archive_dir is not None:
        copy_archive(plan, archive_dir)
    elif any(r.rule == "archive" for r in plan.resolutions) and cfg.archive_url and \
            not cfg.archive_url.startswith(("http://", "https://")) and Path(cfg.archive_url).is_dir():
        copy_archive(plan, Path(cfg.archive_url))
    if in_place:
        if store is not None:
            # A store's committed bytes are changed only by a store command (publish --force),
            # never as a side effect: the copy replaces this name, the store keeps its file.
            in_place = False
            link = "is a symbolic link into" if os.path.islink(plan.pdb) else "lies in"
            plan.copy_reason = f"{link} the symbol store {store}"
    report = write_named_streams(plan.pdb, streams_for(plan), in_place=in_place)
    plan.written = True
    plan.write_mode = report.mode
    plan.copy_reason = report.copy_reason or plan.copy_reason
    return plan


def _store_of(pdb: str) -> Path | None:
    """The local store ``pdb`` resolves into, if any.

    StoreError when it is reached through a symlinked directory: the renamed
    copy would land in the store as surely as an in-place commit, replacing a
    committed PDB behind the store's back.  A store's own path, named as such,
    is the caller's explicit choice (indexed in a copy, never in place).
    """
    from symtool.errors import StoreError
    from symtool.store.layout import enclosing_store

    store = enclosing_store(Path(pdb))
    if store is None:
        return None
    parent = Path(os.path.abspath(pdb)).parent
    if Path(os.path.realpath(parent)) != parent:
        raise StoreError(f"reaches the symbol store {store} through a symlinked directory; indexing it would "
                         "change a committed PDB (copy it out of the store first)", pdb)
    return store


def source_index_summary(pdb: str | os.PathLike[str], named_streams: dict[str, int]) -> dict | None:
    """``{"srcsrv": entries or None, "sourcelink": documents or None}``; None when neither stream exists."""
    from symtool.srcindex.lookup import read_source_index

    if STREAM_SRCSRV not in named_streams and STREAM_SOURCELINK not in named_streams:
        return None
    index = read_source_index(pdb, named_streams)
    out: dict = {"srcsrv": None, "sourcelink": None}
    if STREAM_SRCSRV in named_streams:
        out["srcsrv"] = len(index.srcsrv.entries) if index.srcsrv is not None else 0
    if STREAM_SOURCELINK in named_streams:
        out["sourcelink"] = index.sourcelink.documents if index.sourcelink is not None else 0
    return out


def default_pdbs(start: Path | None = None) -> list[Path]:
    """The PDBs of the workspace's release output (find_workspace's profile dirs)."""
    from symtool.cargo.workspace import find_workspace

    ws = find_workspace(start)
    if ws.manifest is None:
        raise UsageError("no PDB given and no cargo workspace here")
    out = []
    for d in ws.profile_dirs("release"):
        out += sorted(d.glob("*.pdb"))
    if not out:
        raise UsageError(f"no PDBs in the workspace's release output ({', '.join(map(str, ws.profile_dirs('release')))})")
    return out


def _pdbs_in(paths: list[Path]) -> list[Path]:
    from symtool.formats.pdb import MSF7_MAGIC

    out = []
    for p in paths:
        files = sorted(p.glob("*.pdb")) if p.is_dir() else [p]
        for f in files:
            try:
                with open(f, "rb") as fh:
                    if fh.read(len(MSF7_MAGIC)) == MSF7_MAGIC:
                        out.append(f)
            except OSError:
                continue  # publish reports unreadable files itself
    return out


def index_for_publish(paths: list[Path], store: str, *, archive: bool, dry_run: bool,
                      source_roots: list[Path] = ()) -> tuple[list[str], list[str]]:
    """``publish --source-index [--sources]``: index every MSF 7 PDB among ``paths`` in place.

    With ``archive`` the source archive goes into ``store`` itself (a local
    directory or share; ``srcindex.archive-url`` says how debuggers reach it,
    e.g. the HTTP URL nginx serves that store at).  Returns (notes, warnings)
    for the publish report -- a warning for each file the archive refused to
    copy (srcindex/roots.py); unreadable PDBs are left to publish's own checks.
    """
    from symtool.errors import FormatError
    from symtool.store.layout import is_remote

    if archive and is_remote(store):
        raise UsageError("--sources needs a store directory or share (HTTP uploads of sources are not supported)")
    cfg = load_config(source_roots=source_roots)
    archive_dir = None
    if archive:
        archive_dir = Path(store)
        if not cfg.archive_url:
            cfg.archive_url = str(archive_dir.absolute())
    notes: list[str] = []
    warnings: list[str] = []
    for pdb in _pdbs_in(paths):
        try:
            plan = index_pdb(pdb, cfg, archive_dir=archive_dir, dry_run=dry_run)
        except FormatError as err:
            notes.append(f"{err} (not source-indexed)")
            continue
        c = plan.counts()
        verb = "would source-index" if dry_run else "source-indexed"
        notes.append(f"{verb} {pdb}: {len(plan.entries())} files (workspace {c['workspace']}, std {c['std']}, "
                     f"crates {c['crate']}, mapped {c['map']}, archive {c['archive']}), {c['none']} not indexed, "
                     f"{c['toolchain']} of the toolchain (not ours)")
        for r in plan.resolutions:
            refused = [why for why in r.reasons if why.startswith("not archived: ")]
            if refused:
                warnings.append(f"{pdb}: {r.path}: {refused[-1]}")
    return notes, warnings
