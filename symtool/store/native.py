"""ELF, .dwp and Mach-O files in a symbol store: their SSQP entries and the debuginfod view.

Every file is stored as ordinary ``name/INDEX/name`` entries, whose INDEX is an
SSQP one (``elf-buildid-<id>``, ``mach-uuid-<uuid>``...; see
:mod:`symtool.store.layout`), so transactions, refs.ptr, locking, delete,
prune and ``store verify`` treat them exactly as PDBs:

=====================================  =================================================  ====
file                                   entry                                              kind
=====================================  =================================================  ====
ELF binary (has code)                  ``<name>/elf-buildid-<id>/<name>``                 bin
ELF with DWARF (debug file or binary)  ``_.debug/elf-buildid-sym-<id>/_.debug``           pri
``.dwp`` of a binary                   ``<name>.dwp/elf-buildid-<binary id>/<name>.dwp``  dwp
Mach-O binary, each slice              ``<name>/mach-uuid-<uuid>/<name>``                 bin
dSYM DWARF file, each slice            ``_.dwarf/mach-uuid-sym-<uuid>/_.dwarf``           pri
=====================================  =================================================  ====

A ``.dwp`` has no identity of its own: it is keyed by the build-id of the
binary whose skeleton units it completes (same set of DWO IDs), published with it.

The debuginfod layout is a view of these entries: ``debuginfod/buildid/<id>/``
``executable``, ``debuginfo`` and ``dwp`` are relative symlinks to them, made
after the transaction commits and removed when they dangle (delete, prune).
Serve the store with any static web server that follows symlinks and set
``DEBUGINFOD_URLS=<url>/debuginfod``.  ``publish --sources`` adds
``debuginfod/buildid/<id>/source/<absolute path>``: a copy of each source file
the binary's DWARF line tables name that exists here, as ``debuginfod-find
source`` asks for it; it goes when the build-id's last artifact does.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from symtool import platform
from symtool.errors import FormatError
from symtool.store.items import PublishItem
from symtool.store.layout import (DEBUGINFOD_ROOT, SSQP_DEBUG_NAME, SSQP_DWARF_NAME, debuginfod_key, elf_index,
                                  key_path, mach_index, store_dir)

NATIVE_KINDS = ("elf", "dwp", "dwo", "macho")


class Unkeyable(FormatError):
    """A readable file that cannot be given a store key (no build-id, a .dwp without its binary):
    publish refuses it (a finding, exit 1) rather than calling it unreadable (exit 2)."""
_ARTIFACT = {"bin": "executable", "pri": "debuginfo", "dwp": "dwp"}


def is_native(info) -> bool:
    return getattr(info, "kind", None) in NATIVE_KINDS


def items_for(path: Path, info, size: int) -> list[PublishItem]:
    """The store entries of an ELF binary/debug file or Mach-O file (``.dwp``: see :func:`dwp_item`)."""
    name = path.name.lower()
    if info.kind == "elf":
        if info.index is None:
            raise Unkeyable("no build-id: cannot be keyed in a store (link with -Wl,--build-id)", path)
        out = []
        if info.has_code:
            out.append(PublishItem(path, name, elf_index(info.index), "bin", size))
        if info.has_dwarf:
            out.append(PublishItem(path, SSQP_DEBUG_NAME, elf_index(info.index, sym=True), "pri", size))
        if not out:
            raise Unkeyable("neither code nor DWARF: nothing a debugger would fetch", path)
        return out
    if info.kind == "macho":
        out = []
        for sl in info.slices:
            if sl.index is None:
                raise Unkeyable(f"{sl.arch} slice has no LC_UUID: cannot be keyed", path)
            if sl.is_dsym:
                out.append(PublishItem(path, SSQP_DWARF_NAME, mach_index(sl.index, sym=True), "pri", size))
            else:
                out.append(PublishItem(path, name, mach_index(sl.index), "bin", size))
        return out
    raise FormatError(f"a {info.kind} file is published with its binary", path)


def dwp_item(dwp: Path, info, binaries: list[tuple[Path, object]]) -> PublishItem:
    """The entry of a ``.dwp``: keyed by the build-id of the binary among ``binaries`` with its DWO IDs.

    The binary beside it named ``<dwp without .dwp>`` is preferred; any binary with
    the same set of DWO IDs will do.  FormatError when none pairs with it.
    """
    want = set(info.dwo_ids or ())
    size = os.stat(dwp).st_size
    if not want:
        raise Unkeyable("an empty .dwp (no units): nothing to publish", dwp)
    stem = dwp.name[:-4] if dwp.name.lower().endswith(".dwp") else dwp.name
    ranked = sorted(binaries, key=lambda b: (b[0].parent != dwp.parent or b[0].name != stem, str(b[0])))
    for path, binfo in ranked:
        if binfo.kind == "elf" and binfo.index and set(binfo.dwo_ids or ()) == want:
            return PublishItem(dwp, f"{path.name.lower()}.dwp", elf_index(binfo.index), "dwp", size)
    raise Unkeyable("no ELF binary given with it has these DWO IDs: a .dwp is keyed by its binary's build-id, "
                      "publish it with its binary", dwp)


def identity_matches(info, name: str, index: str) -> bool:
    """Is a file with identity ``info`` right under ``name/index``?  (store verify, fetch)"""
    low = index.lower()
    if info.kind == "elf":
        return info.index is not None and low in (elf_index(info.index), elf_index(info.index, sym=True))
    if info.kind in ("dwp", "dwo"):
        # Keyed by its binary's build-id: only the shape can be checked here.
        return low.startswith("elf-buildid-") and not low.startswith("elf-buildid-sym-")
    if info.kind == "macho":
        return any(low in (mach_index(s.index), mach_index(s.index, sym=True)) for s in info.slices if s.index)
    return info.index is not None and info.index.upper() == index.upper()


# -- the debuginfod view ----------------------------------------------------------------------

def debuginfod_link(item: PublishItem) -> tuple[str, str] | None:
    """(build-id, artifact) for an ELF entry, None for others."""
    if not item.index.startswith("elf-buildid-"):
        return None
    build_id = item.index.removeprefix("elf-buildid-").removeprefix("sym-")
    return build_id, _ARTIFACT[item.kind]


def debuginfod_view_key(name: str, index: str) -> str | None:
    """``debuginfod/buildid/<id>/<artifact>`` for the store entry ``name/index`` of an ELF
    file, None for other entries.  The key alone decides: ``elf-buildid-sym-`` is the
    debuginfo, a ``.dwp`` name the dwp, anything else under ``elf-buildid-`` the executable."""
    low = index.lower()
    if not low.startswith("elf-buildid-"):
        return None
    if low.startswith("elf-buildid-sym-"):
        build_id, artifact = low.removeprefix("elf-buildid-sym-"), "debuginfo"
    else:
        build_id = low.removeprefix("elf-buildid-")
        artifact = "dwp" if name.lower().endswith(".dwp") else "executable"
    try:
        return f"{DEBUGINFOD_ROOT}/{debuginfod_key(build_id, artifact)}"
    except FormatError:
        return None  # not a hex build-id: no view for it


def link_debuginfod(store: Path, items: list[PublishItem], two_tier: bool,
                    refused: list[str] | None = None) -> list[Path]:
    """Make ``debuginfod/buildid/<id>/<artifact>`` symlinks to the entries of ``items``; returns them.

    Where symlinks cannot be made (Windows without Developer Mode) the view holds hard links;
    :class:`symtool.platform.LinksUnsupported` where neither can (an SMB share).  Publish calls
    this before its commit point, so no error follows a committed transaction.

    A level of the view that is not a real directory inside the store (a store owner's
    symlink) gets no link: the reason goes to ``refused`` (raised when it is None)."""
    from symtool.errors import UnsafeNameError

    made = []
    for item in items:
        link = debuginfod_link(item)
        if link is None:
            continue
        build_id, artifact = link
        # Every level a real directory inside the store: a symlinked debuginfod/ would put links elsewhere.
        try:
            d = store_dir(store, DEBUGINFOD_ROOT, "buildid", build_id)
        except UnsafeNameError as err:
            if refused is None:
                raise
            refused.append(f"debuginfod view of {item.name} not made: {err.message}")
            continue
        entry = store / key_path(item.name, item.index, two_tier)
        path = d / artifact
        tmp = d / f".{artifact}.tmp-{os.getpid()}"
        platform.unlink(tmp, missing_ok=True)
        try:
            platform.symlink(os.path.relpath(entry, d), tmp)
        except platform.LinksUnsupported:
            # No symlink privilege (Windows without Developer Mode): a hard link to the entry serves
            # the same bytes, and unlink_dangling drops it once it is the entry's last name.  No hard
            # links either (an SMB share): LinksUnsupported, the caller's call.
            platform.link(entry, tmp)
        platform.replace(tmp, path)
        made.append(path)
    return made


SOURCE_DIR = "source"


def source_rel_path(path: str) -> str | None:
    """The path below ``source/`` for the absolute POSIX ``path`` a line table names; None for
    one that cannot be served safely (relative, ``..``/``.`` parts, NUL, control characters)."""
    if not path.startswith("/") or "\0" in path or any(ord(ch) < 32 for ch in path):
        return None
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        return None
    return "/".join(parts)


def source_roots_for_publish(extra: list[Path] = ()):
    """The allow-list of what ``--sources`` may copy (srcindex/roots.py): the workspace of the
    current directory, cargo's registry and git checkouts, the toolchains' rust-src, ``extra``."""
    from symtool.cargo.workspace import cargo_home, find_root_manifest
    from symtool.errors import ConfigError
    from symtool.srcindex.roots import SourceRoots

    try:
        manifest = find_root_manifest(Path.cwd())
    except ConfigError:
        manifest = None  # an unreadable manifest adds no root (publish reports it elsewhere)
    return SourceRoots.standard(manifest.parent if manifest else None, cargo_home(os.environ)[0], list(extra))


def archive_debuginfod_sources(store: Path, items: list[PublishItem], tmp_prefix: str,
                               extra_roots: list[Path] = ()) -> tuple[int, list[str], list[str]]:
    """``publish --sources`` for ELF binaries: copy each local source file their DWARF names to
    ``debuginfod/buildid/<id>/source/<path>``; (files written, notes, refusals).  Files already there
    with the same bytes are left alone; ones that differ are replaced (the build is newer).

    Only files the allow-list admits are copied (:mod:`symtool.srcindex.roots`); every other
    file that exists here is listed in the refusals with the reason.  Every directory written
    through is a real directory inside the store (:func:`store_dir`)."""
    from symtool.errors import UnsafeNameError
    from symtool.formats.dwarf_symbols import DwarfSymbolizer
    from symtool.fsutil import atomic_writer

    roots = source_roots_for_publish(extra_roots)
    written, notes, refused = 0, [], []
    for item in items:
        link = debuginfod_link(item)
        if link is None or item.kind != "bin":
            continue
        build_id = link[0]
        try:
            with DwarfSymbolizer(item.path) as sym:
                paths = sym.source_files()
        except (FormatError, OSError) as err:
            notes.append(f"{item.path}: sources not archived: {getattr(err, 'message', None) or err}")
            continue
        missing = 0
        for path in paths:
            rel = source_rel_path(path)
            if rel is None:
                continue
            local = roots.read(path)
            if local.refused is not None:
                refused.append(f"{item.path}: source {path} not archived: {local.refused}")
                continue
            if local.data is None:
                missing += 1  # std's /rustc/<commit>/... and other build-machine paths
                continue
            data = local.data
            try:
                dest = store_dir(store, DEBUGINFOD_ROOT, "buildid", build_id, SOURCE_DIR, *rel.split("/")[:-1])
            except UnsafeNameError as err:
                refused.append(f"{item.path}: source {path} not archived: {err.message}")
                continue
            dest = dest / rel.split("/")[-1]
            if os.path.islink(dest):
                refused.append(f"{item.path}: source {path} not archived: its place in the store is a symbolic link")
                continue
            try:
                if dest.is_file() and not dest.is_symlink() and dest.read_bytes() == data:
                    continue
            except OSError:
                pass
            with atomic_writer(dest, "wb", prefix=tmp_prefix, mode_like=local.real) as out:
                out.write(data)
            written += 1
        if missing:
            notes.append(f"{item.name} ({build_id}): {missing} of {len(paths)} source files named by its DWARF "
                         "are not on this machine (not archived)")
    return written, notes, refused


def _view_entry_gone(link: Path) -> bool:
    """A view link whose store entry is gone: a dangling symlink, or a hard link (made where symlinks
    cannot be) that is the last name of its file."""
    try:
        st = link.lstat()
    except OSError:
        return False
    if stat.S_ISLNK(st.st_mode):
        return not link.exists()
    return stat.S_ISREG(st.st_mode) and st.st_nlink <= 1


def unlink_dangling(store: Path) -> list[Path]:
    """Remove debuginfod links whose entry is gone (after delete/prune), and emptied directories."""
    root = store / DEBUGINFOD_ROOT / "buildid"
    removed: list[Path] = []
    try:
        ids = sorted(root.iterdir())
    except OSError:
        return removed
    for d in ids:
        if not d.is_dir() or d.is_symlink():
            continue
        for link in sorted(d.iterdir()):
            if _view_entry_gone(link):
                with contextlib.suppress(FileNotFoundError):
                    platform.unlink(link)
                removed.append(link)
        sources = d / SOURCE_DIR
        if sources.is_dir() and not sources.is_symlink() and \
                not any(p.is_symlink() or p.is_file() for p in d.iterdir() if p.name != SOURCE_DIR):
            import shutil  # not at import: every publish loads this module, few remove sources

            shutil.rmtree(sources, ignore_errors=True)  # the build-id's last artifact is gone
            removed.append(sources)
        with contextlib.suppress(OSError):
            d.rmdir()  # only when empty
    return removed


# -- placing fetched files where debuggers look ------------------------------------------------

def debuginfod_cache_dir(environ) -> Path:
    """The debuginfod client's cache: $DEBUGINFOD_CACHE_PATH, else $XDG_CACHE_HOME/debuginfod_client,
    else ~/.cache/debuginfod_client (elfutils' order; gdb reads through that client)."""
    if environ.get("DEBUGINFOD_CACHE_PATH"):
        return Path(environ["DEBUGINFOD_CACHE_PATH"])
    base = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".cache")
    return Path(base) / "debuginfod_client"


def native_fetch_keys(exe: Path, info, binary: bool) -> list[tuple[str, str, str]]:
    """(name, index, role) of the store entries to fetch for an ELF or Mach-O binary."""
    name = exe.name.lower()
    if info.kind == "elf":
        if info.index is None:
            raise FormatError("no build-id: nothing to look it up by (link with -Wl,--build-id)", exe)
        keys = [(SSQP_DEBUG_NAME, elf_index(info.index, sym=True), "debuginfo"),
                (f"{name}.dwp", elf_index(info.index), "dwp")]
        if binary:
            keys.append((name, elf_index(info.index), "executable"))
        return keys
    if info.kind == "macho":
        keys = []
        for sl in info.slices:
            if sl.index is None:
                raise FormatError(f"{sl.arch} slice has no LC_UUID: nothing to look it up by", exe)
            keys.append((SSQP_DWARF_NAME, mach_index(sl.index, sym=True), f"dwarf:{sl.arch}"))
            if binary:
                keys.append((name, mach_index(sl.index), f"executable:{sl.arch}"))
        return keys
    raise FormatError(f"a {info.kind} file is not a binary to fetch debug files for", exe)


def _copy(src: Path, dst: Path) -> None:
    import shutil

    from symtool.fsutil import atomic_writer

    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(dst, "wb") as out, open(src, "rb") as fin:
        shutil.copyfileobj(fin, out, 1 << 20)


def place_for_gdb(exe: Path, build_id: str, files: dict[str, Path], environ) -> dict[str, str]:
    """Copy fetched files into the debuginfod client cache, where gdb (and llvm-symbolizer
    --debuginfod) look before asking a server: ``<cache>/<id>/debuginfo``, ``executable``, and the
    .dwp as ``<cache>/<id>/<binary name>.dwp`` (gdb's name for the package of a separate debug file).

    ``files``: role ("debuginfo", "dwp", "executable") -> fetched file.  The .dwp must hold exactly
    the DWO IDs of the debuginfo's skeleton units (StoreError otherwise).  Returns role -> placed path.
    """
    from symtool.errors import StoreError
    from symtool.formats.elf import read_elf

    if "dwp" in files:
        skel = set(read_elf(files["debuginfo"]).dwo_ids or ()) if "debuginfo" in files else None
        units = set(read_elf(files["dwp"]).dwo_ids or ())
        if skel is not None and skel != units:
            raise StoreError(f"the .dwp's units ({len(units)}) are not the skeleton units of the debuginfo "
                             f"({len(skel)}): not placed", files["dwp"])
    d = debuginfod_cache_dir(environ) / build_id
    targets = {"debuginfo": d / "debuginfo", "executable": d / "executable", "dwp": d / f"{exe.name}.dwp"}
    placed = {}
    for role, src in files.items():
        _copy(src, targets[role])
        placed[role] = str(targets[role])
    return placed


INFO_PLIST = {
    "CFBundleDevelopmentRegion": "English",
    "CFBundleInfoDictionaryVersion": "6.0",
    "CFBundlePackageType": "dSYM",
    "CFBundleSignature": "????",
    "CFBundleShortVersionString": "1.0",
    "CFBundleVersion": "1",
}


def rebuild_dsym(bundle: Path, name: str, dwarf_files: dict[str, Path]) -> Path:
    """Write ``bundle`` (``<name>.dSYM``): ``Contents/Info.plist`` and ``Contents/Resources/DWARF/<name>``
    (one per architecture, ``<name>.<arch>``, when there are several), as dsymutil lays it out.

    Built beside and renamed into place, so lldb never sees half a bundle.
    """
    import plistlib
    import shutil
    import tempfile

    bundle.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{bundle.name}.", dir=bundle.parent))
    try:
        contents = tmp / "Contents"
        (contents / "Resources" / "DWARF").mkdir(parents=True)
        plist = dict(INFO_PLIST, CFBundleIdentifier=f"com.apple.xcode.dsym.{name}")
        (contents / "Info.plist").write_bytes(plistlib.dumps(plist))
        for arch, src in dwarf_files.items():
            leaf = name if len(dwarf_files) == 1 else f"{name}.{arch}"
            shutil.copyfile(src, contents / "Resources" / "DWARF" / leaf)
        if bundle.is_symlink() or bundle.is_file():
            platform.unlink(bundle)
        elif bundle.is_dir():
            shutil.rmtree(bundle)
        platform.replace(tmp, bundle)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return bundle
