"""Where a module's PDB or image is: local stores, build directories, HTTP stores.

Windows modules are looked up by their symstore keys (``name/INDEX/name``).
macOS (Mach-O) modules are looked up by LC_UUID (:meth:`SymbolLocator.lookup_macho`): the
binary and its dSYM's DWARF file, under the SSQP keys, and in build directories as the file
of that name and the ``.dSYM`` bundles there, each opened and its UUID compared.
Linux (ELF) modules are looked up by GNU build id (:meth:`SymbolLocator.lookup_elf`):
the binary (its CFI and code), its ``.dwp`` and its separate debug file, under
the SSQP keys and the debuginfod view of symtool.store.layout, and in build
directories as the ELF file whose build id matches with ``<name>.dwp`` beside it.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from symtool.errors import FormatError, NetworkError, SymtoolError


@dataclass
class Hit:
    """Where a key was looked up and what was found there."""

    found: bool | None  # None: not checked (e.g. the server could not be asked)
    where: str | None = None  # store path / URL / file where it was found
    form: str | None = None  # plain, compressed, pointer, file
    local_file: Path | None = None  # a readable local copy (for symbolizing)
    note: str | None = None


ELF_ROLES = ("executable", "dwp", "debuginfo")  # debuginfod's artifact names
MAX_BUILD_DIR_SCAN = 4096  # files of one build directory read for their build id


class SymbolLocator:
    """Looks keys up in local stores, build directories and HTTP stores, caching answers.

    * a local directory is searched as a symbol store (``name/INDEX/name``,
      compressed, ``file.ptr``; two-tier aware) and also as a build directory:
      a file of that name directly inside it whose identity matches;
    * an ``http(s)://`` store is asked with HEAD requests for the plain,
      compressed and file.ptr forms of the key (GET-less: nothing downloads).
    """

    def __init__(self, stores: list[str], build_dirs: list[str] | None = None, http_client=None):
        from symtool.store.layout import is_object_store, is_url

        self.local: list[Path] = []
        self.http: list[str] = []
        self.objects: list[str] = []  # s3:// and azblob:// stores
        for s in stores:
            if is_url(s):
                self.http.append(s.rstrip("/"))
            elif is_object_store(s):
                self.objects.append(s)
            else:
                self.local.append(Path(s))
        self.build_dirs = [Path(d) for d in (build_dirs or [])]
        self._client = http_client
        self._own_client = False
        self._cache: dict[tuple[str, str, str], Hit] = {}
        self._listing: dict[Path, dict[str, Path]] = {}
        self._identity: dict[Path, str | None] = {}
        self._macho_ids: dict[Path, str] = {}  # Mach-O file -> its slices' UUID keys, comma-separated
        self._elf_cache: dict[tuple[str, str], dict[str, tuple[str, str, Hit]]] = {}

    def close(self) -> None:
        if self._own_client and self._client is not None:
            self._client.close()

    def lookup(self, name: str, index: str, kind: str) -> Hit:
        key = (name.lower(), index.upper(), kind)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._lookup(name, index, kind)
            self._cache[key] = hit
        return hit

    def _lookup(self, name: str, index: str, kind: str) -> Hit:
        hit = self._lookup_local_stores(name, index)
        if hit is not None:
            return hit
        for d in [*self.local, *self.build_dirs]:
            f = self._flat(d, name, index, kind)
            if f is not None:
                return Hit(True, str(f), "file", f)
        notes = []
        for location in self.objects:
            from symtool.store.objstore import open_store

            try:
                store = open_store(location)
                found = store.locate(name, index)
            except SymtoolError as err:
                notes.append(str(err))
                continue
            if found is not None:
                return Hit(True, store.backend.url(found[0].rel), found[0].form, None)
        for url in self.http:
            try:
                hit = self._http_lookup(url, name, index)
            except NetworkError as err:
                notes.append(str(err))
                continue
            if hit is not None:
                return hit
        if notes:
            return Hit(None, note="; ".join(notes))
        return Hit(False)

    def lookup_elf(self, name: str, build_id: str) -> dict[str, tuple[str, str, Hit]]:
        """role -> (store name, store index, Hit) of an ELF module's files: ``executable``
        (the binary), ``dwp`` and ``debuginfo`` (a separate debug file); roles not found are absent.

        Each file is looked for under its SSQP key (``layout.lookup``: plain, compressed,
        ``file.ptr``), then in the store's debuginfod view, then (the binary and its ``.dwp``)
        in the build directories, then on HTTP stores.  Identity (build id) is checked by the
        caller on the file it opens."""
        key = (name.lower(), build_id.lower())
        cached = self._elf_cache.get(key)
        if cached is not None:
            return cached
        from symtool.store.layout import DEBUGINFOD_ROOT, SSQP_DEBUG_NAME, debuginfod_key, elf_index

        keys = {"executable": (name, elf_index(build_id)), "dwp": (f"{name}.dwp", elf_index(build_id)),
                "debuginfo": (SSQP_DEBUG_NAME, elf_index(build_id, sym=True))}
        out: dict[str, tuple[str, str, Hit]] = {}
        for role, (kname, index) in keys.items():
            hit = self._lookup_local_stores(kname, index)
            if hit is None:
                for store in self.local:
                    candidate = store / DEBUGINFOD_ROOT / debuginfod_key(build_id, role)
                    if candidate.is_file():
                        hit = Hit(True, str(candidate), "file", candidate)
                        break
            if hit is not None:
                out[role] = (kname, index, hit)
        if "executable" not in out:
            for d in [*self.local, *self.build_dirs]:
                f = self._flat(d, name, elf_index(build_id), "elf") or self._scan_build_id(d, build_id)
                if f is not None:
                    out["executable"] = (name, elf_index(build_id), Hit(True, str(f), "file", f))
                    dwp = f.with_name(f.name + ".dwp")
                    if "dwp" not in out and dwp.is_file():
                        out["dwp"] = (f"{name}.dwp", elf_index(build_id), Hit(True, str(dwp), "file", dwp))
                    break
        self._http_roles(keys, out)
        self._elf_cache[key] = out
        return out

    def lookup_macho(self, name: str, uuid: str) -> dict[str, tuple[str, str, Hit]]:
        """role -> (store name, store index, Hit) of a Mach-O module's files: ``executable`` (the
        binary: its ``__unwind_info``, ``__eh_frame`` and code) and ``dsym`` (the dSYM's DWARF
        file, or a binary that carries its own ``__DWARF``); roles not found are absent.

        Each is looked for under its SSQP key (``<name>/mach-uuid-<uuid>/<name>``,
        ``_.dwarf/mach-uuid-sym-<uuid>/_.dwarf``), then in the stores' and build directories'
        files: the binary of that name with a slice of that UUID, ``<binary>.dSYM`` beside it,
        and any other ``*.dSYM`` bundle there (cargo's ``deps/<crate>-<hash>.dSYM``); then on
        HTTP stores.  Every local file is opened and its UUID compared here."""
        key = ("macho:" + name.lower(), uuid.lower())
        cached = self._elf_cache.get(key)
        if cached is not None:
            return cached
        from symtool.store.layout import SSQP_DWARF_NAME, mach_index

        keys = {"executable": (name, mach_index(uuid)), "dsym": (SSQP_DWARF_NAME, mach_index(uuid, sym=True))}
        out: dict[str, tuple[str, str, Hit]] = {}
        for role, (kname, index) in keys.items():
            hit = self._lookup_local_stores(kname, index)
            if hit is not None:
                out[role] = (kname, index, hit)
        for d in [*self.local, *self.build_dirs]:
            if len(out) == len(keys):
                break
            if "executable" not in out:
                f = self._flat(d, name, "", "macho")
                if f is not None and uuid.lower() in self._macho_uuids(f):
                    out["executable"] = (name, keys["executable"][1], Hit(True, str(f), "file", f))
            if "dsym" not in out:
                dwarf = self._dsym_in(d, name, uuid)
                if dwarf is not None:
                    out["dsym"] = (SSQP_DWARF_NAME, keys["dsym"][1], Hit(True, str(dwarf), "file", dwarf))
        self._http_roles(keys, out)
        self._elf_cache[key] = out
        return out

    def _http_roles(self, keys: dict[str, tuple[str, str]], out: dict[str, tuple[str, str, Hit]]) -> None:
        """Each role of ``keys`` (role -> (name, index)) not in ``out`` yet, asked of the HTTP stores."""
        for role, (kname, index) in keys.items():
            if role in out:
                continue
            for url in self.http:
                try:
                    hit = self._http_lookup(url, kname, index)
                except NetworkError:
                    continue
                if hit is not None:
                    out[role] = (kname, index, hit)
                    break

    def _macho_uuids(self, path: Path) -> set[str]:
        """The UUID keys of the Mach-O file's slices (empty: unreadable or not Mach-O)."""
        cached = self._macho_ids.get(path)
        if cached is None:
            uuids: set[str] = set()
            try:
                from symtool.formats.macho import MAGICS, read_macho

                with open(path, "rb") as f:
                    magic = f.read(4)
                if magic in MAGICS:
                    uuids = {s.index for s in read_macho(path).slices if s.index}
            except (SymtoolError, OSError, ValueError, struct.error):
                uuids = set()
            cached = self._macho_ids[path] = ",".join(sorted(uuids))
        return set(cached.split(",")) - {""}

    def _dsym_in(self, directory: Path, name: str, uuid: str) -> Path | None:
        """The DWARF file with this UUID in ``directory/<name>.dSYM``, else in any ``*.dSYM``
        bundle directly inside ``directory``."""
        from symtool.formats.macho import dsym_dwarf_files

        self._flat(directory, "", "", "macho")  # fills the listing
        listing = self._listing.get(directory, {})
        bundles = [listing[n] for n in sorted(listing) if n.endswith(".dsym")]
        first = listing.get(f"{name.lower()}.dsym")
        if first is not None:
            bundles.remove(first)
            bundles.insert(0, first)
        for bundle in bundles[:MAX_BUILD_DIR_SCAN]:
            for dwarf in dsym_dwarf_files(bundle)[:16]:
                if uuid.lower() in self._macho_uuids(dwarf):
                    return dwarf
        return None

    def _lookup_local_stores(self, name: str, index: str) -> Hit | None:
        from symtool.store.layout import MESSAGE, PLAIN, POINTER, lookup

        for store in self.local:
            try:
                found = lookup(store, name, index)
            except (OSError, FormatError, ValueError):
                found = None
            if found is not None and found.form != MESSAGE:
                local = None
                if found.form == PLAIN:
                    local = found.path
                elif found.form == POINTER and Path(found.target).is_file():
                    local = Path(found.target)
                return Hit(True, str(found.path), found.form, local)
        return None

    def _scan_build_id(self, directory: Path, build_id: str) -> Path | None:
        """The ELF file directly inside ``directory`` whose build id is ``build_id`` (cargo's
        ``deps/`` names binaries ``<crate>-<hash>``, not as the module list does)."""
        self._flat(directory, "", "", "elf")  # fills the listing
        listing = self._listing.get(directory, {})
        for n, (low, path) in enumerate(sorted(listing.items())):
            if n >= MAX_BUILD_DIR_SCAN:
                break
            if "." in low and not low.endswith(".so") and ".so." not in low:
                continue  # .d, .rlib, .dwp, .rmeta...: not a linked ELF binary
            if path not in self._identity:
                try:
                    if not path.is_file():
                        continue
                except OSError:
                    continue
                self._identity[path] = _file_index(path, "elf")
            from symtool.store.layout import elf_index

            got = self._identity[path]
            if got is not None and got == elf_index(build_id):
                return path
        return None

    def _flat(self, directory: Path, name: str, index: str, kind: str) -> Path | None:
        listing = self._listing.get(directory)
        if listing is None:
            listing = {}
            try:
                with os.scandir(directory) as it:
                    for entry in it:
                        listing.setdefault(entry.name.lower(), Path(entry.path))
            except OSError:
                pass
            self._listing[directory] = listing
        candidate = listing.get(name.lower())
        if candidate is None or not candidate.is_file():
            return None
        if kind == "macho":
            return candidate  # a Mach-O file has one UUID per slice: the caller compares them
        if candidate not in self._identity:
            self._identity[candidate] = _file_index(candidate, kind)
        got = self._identity[candidate]
        return candidate if got is not None and got.upper() == index.upper() else None

    def _http_lookup(self, url: str, name: str, index: str) -> Hit | None:
        from symtool.store.http import HttpClient
        from symtool.store.layout import MESSAGE

        if self._client is None:
            self._client = HttpClient()
            self._own_client = True
        hit = self._client.server(url).locate(name, index)
        if hit is None or hit.form == MESSAGE:
            return None
        return Hit(True, hit.url, hit.form)


class DebugFiles:
    """The local copies of debug files and images by store key: a :class:`SymbolLocator`'s hits,
    fetched from an HTTP store (``fetch(name, index)``, symtool.store.fetch.Fetcher) when one holds
    them and ``fetch`` is given (None: --offline).  What ``symbolize`` needs to find a PE image's
    PDB, a store key's file or a Mach-O slice's dSYM, without the stack machinery
    (:class:`symtool.dumps.stack.StackResolver` builds on it)."""

    def __init__(self, locator: SymbolLocator, fetch=None):
        self.locator = locator
        self.fetch = fetch

    def _local(self, hit: Hit | None, name: str, index: str) -> Path | None:
        if hit is None or not hit.found:
            return None
        if hit.local_file is not None:
            return hit.local_file
        if self.fetch is not None:
            try:
                return self.fetch(name, index)
            except SymtoolError:
                return None
        return None

    def key_path(self, name: str, index: str) -> Path | None:
        """The local file of store key ``name``/``index`` (kind told by its index), or None."""
        kind = "pdb" if name.lower().endswith(".pdb") else "elf"
        try:
            hit = self.locator.lookup(name, index, kind)
        except SymtoolError:
            hit = None
        return self._local(hit, name, index)

    def dsym_path(self, name: str, uuid: str) -> Path | None:
        """The local DWARF file (a dSYM's, fetched if need be) of Mach-O ``name`` with this UUID
        (``symtool symbolize``), or None."""
        try:
            found = self.locator.lookup_macho(name, uuid).get("dsym")
        except SymtoolError:
            return None
        if found is None:
            return None
        kname, index, hit = found
        return self._local(hit, kname, index)

    def pdb_path(self, pdb_name: str, debug_id) -> Path | None:
        """The local PDB of this CodeView name and identity: from the stores and build
        directories (fetched from an HTTP store unless offline), or None."""
        try:
            hit = self.locator.lookup(pdb_name, debug_id.index(), "pdb")
        except SymtoolError:
            hit = None
        return self._local(hit, pdb_name, debug_id.index())


def default_build_dirs(start: Path | None = None) -> list[str]:
    """The workspace's build output directories that exist (every profile, every target
    triple, and their ``deps``), as ``symtool env`` lists them; [] outside a workspace."""
    from symtool.cargo.workspace import find_workspace

    try:
        ws = find_workspace(start)
    except (SymtoolError, OSError):
        return []
    out: list[str] = []
    for profile in ws.profiles():
        for d in ws.profile_dirs(profile):
            for candidate in (d, d / "deps"):
                if candidate.is_dir() and str(candidate) not in out:
                    out.append(str(candidate))
    return out


def check_stores(stores: list[str]) -> None:
    """A local store that does not exist is a usage error (exit 2), not "nothing found"; so is
    object storage (s3://, azblob://) without its SDK installed."""
    from symtool.errors import UsageError
    from symtool.store.layout import is_object_store, is_remote, url_scheme

    for s in stores:
        if is_object_store(s):
            from symtool.store.backends import require_sdk

            require_sdk(url_scheme(s) or "")
        elif not is_remote(s) and not Path(s).is_dir():
            raise UsageError("store does not exist (or is not a directory)", s)


def check_build_dirs(dirs: list[str]) -> None:
    """A ``--build-dir`` that does not exist is a usage error (exit 2), as a missing store is:
    a misspelled one would otherwise quietly find nothing."""
    from symtool.errors import UsageError

    for d in dirs:
        if not Path(d).is_dir():
            raise UsageError("build directory does not exist (or is not a directory)", d)


def make_fetch(stores: list[str], cache: str | None, offline: bool):
    """``fetch(name, index) -> Path | None`` for files found only on HTTP stores: downloaded into
    ``cache`` and verified by identity (symtool.store.fetch.Fetcher); None when offline or no HTTP store."""
    from symtool.store.layout import is_remote

    http = [s for s in stores if is_remote(s)]
    if offline or not http or not cache:
        return None, None
    from symtool.store.fetch import CACHED, FETCHED, Fetcher

    fetcher = Fetcher(http, Path(cache))

    def fetch(name: str, index: str) -> Path | None:
        result = fetcher.fetch(name, index)
        if result.status in (CACHED, FETCHED) and result.path:
            return Path(result.path)
        return None

    return fetch, fetcher


def _file_index(path: Path, kind: str) -> str | None:
    """Store INDEX of a local PDB or image (None if unreadable or of another kind)."""
    try:
        if kind == "elf":
            from symtool.formats.elf import read_elf
            from symtool.store.layout import elf_index

            with open(path, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    return None
            info = read_elf(path, dwo_ids=False)
            return elf_index(info.index) if info.index else None
        if kind == "pdb":
            from symtool.formats.pdb import read_pdb

            return read_pdb(path).index
        from symtool.formats.pe import read_pe

        return read_pe(path).index
    except (SymtoolError, OSError, ValueError, struct.error):
        return None


__all__ = ["Hit", "SymbolLocator", "DebugFiles", "default_build_dirs", "check_build_dirs", "check_stores", "make_fetch"]
