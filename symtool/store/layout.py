"""Where files live in a symbol store (the layout symstore.exe writes), and the
one order in which a key is looked up -- locally and over HTTP alike.

    <store>/<name>/<INDEX>/<name>          the file
    <store>/<name>/<INDEX>/<nam_>          the same, CAB-compressed (--compress)
    <store>/<name>/<INDEX>/file.ptr        a pointer to the file elsewhere (/p)
    <store>/<name>/<INDEX>/refs.ptr        which transactions reference it
    <store>/index2.txt                     two-tier: files under <store>/<na>/<name>/...
    <store>/pingme.txt, <store>/000Admin/  marker and transaction records

Lookup order for a key (symsrv's), produced by :func:`candidates`:

1. the plain file, 2. the CAB-compressed ``nam_``, 3. ``file.ptr`` -- under
   ``<na>/`` when the store is two-tier (``index2.txt`` at its root);
4. the same three for the lower-cased key: stores copied from Windows onto a
   case-sensitive server often hold only lower-case directories.

A local store matches every path component case-insensitively (as symsrv
does on Windows shares), so there the lower-case retry finds nothing new; an
HTTP server matches exactly, so there it matters.  Both walk the same list,
so a store gives the same found/missing answer to every command.

Stdlib only and cheap to import: :func:`is_url` is used by ``symtool env``,
which runs in every new shell.  ``symtool.ids`` (its identity classes and patterns) is
imported inside the functions that validate keys for that reason.
"""

from __future__ import annotations

import os
import stat
import re
from pathlib import Path
from collections import namedtuple

from symtool.errors import FormatError, UnsafeNameError

ADMIN_DIR = "000Admin"
PINGME = "pingme.txt"
INDEX2 = "index2.txt"
REFS = "refs.ptr"
FILE_PTR = "file.ptr"
LOCK_NAME = "symtool.lock"
# The symbol cache (symtool.store.symcache) inside the local cache: one file per debug-file identity.
SYMCACHE_DIR = "000SymCache"
SYMCACHE_SUFFIX = ".symc"
# Names at the top of a flat store that belong to the store itself, never to a key.
RESERVED_TOP = frozenset({ADMIN_DIR.lower(), PINGME, INDEX2, LOCK_NAME, SYMCACHE_DIR.lower()})

# Forms a key can be stored in, in lookup order.
PLAIN = "plain"
COMPRESSED = "compressed"
POINTER = "pointer"
# Not a form: every file.ptr met named no path, only a MSG: for the user.
MESSAGE = "message"

MAX_FILE_PTR_SIZE = 64 << 10  # a file.ptr holds one path; anything bigger is not one


# --- locations ---------------------------------------------------------------------------------

# Object storage (symtool.store.objstore): written and read with credentials, through each SDK.
OBJECT_SCHEMES = ("s3", "azblob")
SERVED_SCHEMES = ("http", "https") + OBJECT_SCHEMES
_USERINFO = re.compile(r"(?<=:)//[^/@\s*;]*@")


def is_url(location: str) -> bool:
    """An ``http(s)://`` store (a symbol server); anything else is a directory or share."""
    low = location.strip().lower()
    return low.startswith("http://") or low.startswith("https://")


def is_object_store(location: str) -> bool:
    """An ``s3://bucket/prefix`` or ``azblob://container/prefix`` store."""
    return url_scheme(location) in OBJECT_SCHEMES


def is_remote(location: str) -> bool:
    """A store that is not a directory: a symbol server or object storage."""
    return is_url(location) or is_object_store(location)


def redact_url(url: str) -> str:
    """The URL without ``user:password@`` (safe to print)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        port = parts.port
    except ValueError:
        return strip_userinfo(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def strip_userinfo(text: str) -> str:
    """``text`` with the ``user:password@`` of every ``scheme://`` in it removed (also inside
    ``srv*cache*http://user:pass@host`` elements and messages)."""
    return _USERINFO.sub("//", text) if "@" in text else text


def url_scheme(location: str) -> str | None:
    """The scheme of a ``scheme://...`` location (lower-case), else None.

    One-letter schemes do not exist: ``C://x`` is a drive letter.
    """
    head, sep, _rest = location.strip().partition("://")
    if not sep or len(head) < 2 or not head[0].isalpha() \
            or not all(c.isalnum() or c in "+.-" for c in head) or not head.isascii():
        return None
    return head.lower()


def is_windows_path(location: str) -> bool:
    """A drive-letter (``C:\\x``, ``C:/x``, ``C:x``) or UNC (``\\\\server\\share``) path.

    Those name something only on Windows; elsewhere they are relative names
    that would become folders called ``C:\\symbols`` in the current directory.
    """
    text = location.strip()
    if text.startswith("\\\\"):
        return True
    return len(text) >= 2 and text[1] == ":" and text[0].isascii() and text[0].isalpha()


# --- file.ptr ----------------------------------------------------------------------------------

def parse_file_ptr(text: str) -> tuple[str | None, str | None]:
    """``file.ptr`` content -> (path, message).  ``PATH:x``, ``MSG:x`` or a plain path."""
    path = message = None
    for line in text.replace("\r", "\n").split("\n"):
        line = line.strip()
        if not line:
            continue
        if line[:5].upper() == "PATH:":
            path = path or line[5:].strip()
        elif line[:4].upper() == "MSG:":
            message = message or line[4:].strip()
        elif path is None and message is None:
            path = line
    return path or None, message


def read_file_ptr(path: Path) -> tuple[str | None, str | None]:
    """:func:`parse_file_ptr` of a local ``file.ptr``; FormatError when it is implausibly large."""
    from symtool.fsutil import read_regular

    # A regular file, never through a symlink: a FIFO would hang the reader, /dev/zero feed it forever.
    data = read_regular(path, MAX_FILE_PTR_SIZE, follow=False, what=FILE_PTR)
    return parse_file_ptr(data.decode("utf-8", "replace"))


# --- keys -> relative paths --------------------------------------------------------------------

def key_dir(name: str, index: str, two_tier: bool = False) -> str:
    """``name/INDEX`` (``na/name/INDEX`` two-tier), '/'-separated; the key is validated."""
    from symtool.ids import check_file_name, parse_index

    check_file_name(name)
    parse_index(index)
    return f"{name[:2]}/{name}/{index}" if two_tier else f"{name}/{index}"


def key_path(name: str, index: str, two_tier: bool = False) -> str:
    """``name/INDEX/name`` (``na/name/INDEX/name`` two-tier): where the plain file lives."""
    return f"{key_dir(name, index, two_tier)}/{name}"


def compressed_name(name: str) -> str:
    """symstore's compressed name: last character of the extension replaced by '_'."""
    return name[:-1] + "_"


def form_file_name(name: str, form: str) -> str:
    """The file name a key of ``name`` has in its INDEX directory when stored in ``form``."""
    if form == PLAIN:
        return name
    if form == COMPRESSED:
        return compressed_name(name)
    if form == POINTER:
        return FILE_PTR
    raise ValueError(f"unknown store form {form!r}")


# One place a key may be stored: ``rel``, the '/'-separated path below the store
# root (or server URL); ``form``, PLAIN, COMPRESSED or POINTER; ``name`` and
# ``index``, the key as spelled at this place (lower-cased in the retry).
# (namedtuple, not a dataclass or typing.NamedTuple: this module is on
# `symtool env`'s start-up path.)
Candidate = namedtuple("Candidate", "rel form name index")


def candidates(name: str, index: str, two_tier: bool) -> list[Candidate]:
    """Every place ``name``/``index`` may be stored, in lookup order (see the module docstring)."""
    keys = [(name, index)]
    if (name.lower(), index.lower()) != (name, index):
        keys.append((name.lower(), index.lower()))
    out = []
    for key_name, key_index in keys:
        base = key_dir(key_name, key_index, two_tier)
        for form in (PLAIN, COMPRESSED, POINTER):
            out.append(Candidate(f"{base}/{form_file_name(key_name, form)}", form, key_name, key_index))
    return out


# --- local stores ------------------------------------------------------------------------------

def is_two_tier(store: Path) -> bool:
    return (store / INDEX2).is_file()


def looks_like_store(directory: Path) -> bool:
    """Does ``directory`` hold a store's own files (000Admin, pingme.txt or index2.txt)?

    symstore.exe writes all of them; symsrv's downstream caches have pingme.txt.
    """
    return any(find_ci(directory, name) is not None for name in (ADMIN_DIR, PINGME, INDEX2))


def enclosing_store(path: Path) -> Path | None:
    """The local store ``path`` (symlinks resolved) lies in: its nearest ancestor directory that
    looks like a store (``looks_like_store``, one directory listing per ancestor); None when none."""
    marks = {ADMIN_DIR.lower(), PINGME, INDEX2}
    for parent in Path(os.path.realpath(path)).parents:
        try:
            with os.scandir(parent) as it:
                if any(entry.name.lower() in marks for entry in it):
                    return parent
        except OSError:
            continue  # an unreadable ancestor is no store we could have written
    return None


def inside(store: Path, path: Path) -> bool:
    """Does ``path`` (symlinks resolved) stay inside ``store``?"""
    try:
        root = store.resolve()
        target = path.resolve()
    except (OSError, RuntimeError):
        return False
    return target == root or root in target.parents


def top_level_names(store: Path) -> dict[str, str]:
    """Lower-case name -> name of every entry at the store's top level (for :func:`entry_dir`)."""
    out: dict[str, str] = {}
    try:
        with os.scandir(store) as it:
            for entry in it:
                out.setdefault(entry.name.lower(), entry.name)
    except (FileNotFoundError, NotADirectoryError):
        pass
    return out


def find_ci(directory: Path, wanted: str) -> Path | None:
    """``directory/wanted`` with case-insensitive matching (exact match first).

    Stores written on Windows shares differ in case from what binaries and
    dumps record; symsrv matches case-insensitively, so do we.
    """
    exact = directory / wanted
    if os.path.lexists(exact):
        return exact
    folded = wanted.lower()
    try:
        with os.scandir(directory) as it:
            for entry in it:
                if entry.name.lower() == folded:
                    return directory / entry.name
    except (FileNotFoundError, NotADirectoryError):
        return None
    return None


def resolve_ci(store: Path, rel: str) -> Path | None:
    """``store/rel`` matching each component case-insensitively, or None when absent."""
    path = store
    for part in rel.split("/"):
        found = find_ci(path, part)
        if found is None:
            return None
        path = found
    return path


def _refuse_symlinks(store: Path, path: Path, what: str) -> None:
    """No directory between ``store`` and ``path`` may be a symlink (UnsafeNameError).

    A symlinked key directory would make publish, delete or a fetch into a
    cache write wherever it points, even to a place inside the store that
    belongs to another key.
    """
    rel = path.relative_to(store)
    d = store
    for part in rel.parts:
        d = d / part
        if os.path.islink(d):
            raise UnsafeNameError(f"{what}: {d.relative_to(store).as_posix()} is a symbolic link, which is refused")


def store_dir(store: Path, *parts: str) -> Path:
    """``store/part/part...``, created as needed, every level a real directory inside ``store``.

    The store owner can leave a symlink (or a file) at any level -- ``debuginfod``,
    ``<name>``, ``source/home`` -- and ``mkdir(parents=True)`` followed by a write
    would then create and write files wherever it points.  Each component is
    checked with lstat and made with a single-level mkdir, then checked again
    (a symlink swapped in after the mkdir is refused too).  UnsafeNameError
    names the offending level; nothing beyond it is created.
    """
    store.mkdir(parents=True, exist_ok=True)  # the store itself is the user's choice, wherever it lies
    d = store
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\\" in part or "\0" in part:
            raise UnsafeNameError(f"{part!r} cannot be a directory name inside the store")
        d = d / part
        for attempt in (0, 1):
            try:
                mode = os.lstat(d).st_mode
            except FileNotFoundError:
                if attempt:
                    raise
                try:
                    os.mkdir(d)
                except FileExistsError:
                    pass
                continue
            if stat.S_ISLNK(mode):
                raise UnsafeNameError(f"{d.relative_to(store).as_posix()} is a symbolic link, which is refused "
                                      "(nothing is written through it)")
            if not stat.S_ISDIR(mode):
                raise UnsafeNameError(f"{d.relative_to(store).as_posix()} is not a directory")
            break
    return d


def find_entry_dir(store: Path, name: str, index: str, two_tier: bool | None = None) -> Path | None:
    """Existing ``<store>[/<na>]/<name>/<INDEX>`` directory (case-insensitive, inside the store), or None."""
    if two_tier is None:
        two_tier = is_two_tier(store)
    found = resolve_ci(store, key_dir(name, index, two_tier))
    if found is None or not found.is_dir():
        return None
    _refuse_symlinks(store, found, f"{name}/{index}")
    if not inside(store, found):
        raise UnsafeNameError(f"{name}/{index} resolves outside the store")
    return found


def entry_dir(store: Path, name: str, index: str, two_tier: bool | None = None,
              top_names: dict[str, str] | None = None) -> Path:
    """The ``<store>[/<na>]/<name>/<INDEX>`` directory to write a key into.

    Existing directories whose names differ only in case are reused (Windows
    and symsrv do not tell them apart); missing ones get the key's spelling.
    Never outside the store, never one of the store's own top-level names.
    ``top_names`` (lower-case name -> name, :func:`top_level_names`) stands for a listing
    of the store's top level that a caller placing many keys took once.
    """
    if two_tier is None:
        two_tier = is_two_tier(store)
    rel = key_dir(name, index, two_tier)
    if not two_tier and name.lower() in RESERVED_TOP:
        raise UnsafeNameError(f"file name {name!r} collides with the store's own files")
    path = store
    for k, part in enumerate(rel.split("/")):
        if k == 0 and top_names is not None:
            path = path / top_names.get(part.lower(), part)
            continue
        path = find_ci(path, part) or path / part
    _refuse_symlinks(store, path, f"{name}/{index}")
    if not inside(store, path if path.exists() else path.parent):
        raise UnsafeNameError(f"{name}/{index} would resolve outside the store")
    return path


def new_entry_dir(store: Path, name: str, index: str, two_tier: bool, top_names: dict[str, str]) -> Path | None:
    """The key's ``<store>[/<na>]/<name>/<INDEX>`` directory when none of its levels exists yet, else None.

    ``top_names`` is a listing of the store's top level (:func:`top_level_names`): when it has no
    entry for the key's first level, no level below it can exist either, so the caller makes each
    with a single-level mkdir -- which never follows a symlink, and fails (FileExistsError) when a
    concurrent writer made the level meanwhile: :func:`entry_dir` then finds what is there.  The
    key is validated as :func:`entry_dir` does.
    """
    rel = key_dir(name, index, two_tier)
    if not two_tier and name.lower() in RESERVED_TOP:
        raise UnsafeNameError(f"file name {name!r} collides with the store's own files")
    parts = rel.split("/")
    if parts[0].lower() in top_names:
        return None
    return store.joinpath(*parts)


# What a local store holds for a key: ``path``, the file found (for POINTER and
# MESSAGE the file.ptr itself); ``form``, PLAIN, COMPRESSED, POINTER, or MESSAGE
# (nothing usable, only messages); ``target``, the path a file.ptr names;
# ``messages``, the MSG: lines of file.ptr files met on the way.
Found = namedtuple("Found", "path form target messages", defaults=(None, ()))


def lookup(store: Path, name: str, index: str) -> Found | None:
    """Find ``name``/``index`` in a local store, walking :func:`candidates` in order.

    A ``file.ptr`` that names no path (only ``MSG:``) does not count: its
    message is kept and the walk goes on, as symsrv does.  When nothing else
    is found, the result has form MESSAGE and carries those messages.
    """
    messages: list[str] = []
    last_ptr: Path | None = None
    tried: set[str] = set()
    for cand in candidates(name, index, is_two_tier(store)):
        if cand.rel.lower() in tried:
            continue  # matching is case-insensitive here: the lower-case retry is the same path
        tried.add(cand.rel.lower())
        path = resolve_ci(store, cand.rel)
        if path is None or not path.is_file():
            continue
        if cand.form != POINTER:
            return Found(path, cand.form, None, tuple(messages))
        target, message = read_file_ptr(path)
        last_ptr = path
        if message and message not in messages:
            messages.append(message)
        if target is not None:
            return Found(path, POINTER, target, tuple(messages))
    if messages and last_ptr is not None:
        return Found(last_ptr, MESSAGE, None, tuple(messages))
    return None


# --- ELF and Mach-O keys -----------------------------------------------------------------------
#
# Two layouts, neither colliding with the symstore tree (whose second component is a hex INDEX):
#
#   <store>/debuginfod/buildid/<id>/{executable,debuginfo,dwp}   debuginfod's URL layout, so
#                                                                 DEBUGINFOD_URLS=<store>/debuginfod
#   <store>/<name>/elf-buildid-<id>/<name>                        SSQP (Microsoft's symbol servers,
#   <store>/_.debug/elf-buildid-sym-<id>/_.debug                  dotnet-symbol): every component
#   <store>/<name>/mach-uuid-<uuid>/<name>                        lower case, ids as lower-case hex
#   <store>/_.dwarf/mach-uuid-sym-<uuid>/_.dwarf                  two digits per byte, no dashes

DEBUGINFOD_ROOT = "debuginfod"
DEBUGINFOD_ARTIFACTS = ("executable", "debuginfo", "dwp")


def _hex_id(text: str, what: str, length: int | None = None) -> str:
    low = text.lower()
    if not low or len(low) % 2 or any(c not in "0123456789abcdef" for c in low) or len(low) > 128 \
            or (length is not None and len(low) != length):
        raise FormatError(f"not {what}: {text!r}")
    return low


def symcache_file_name(kind: str, identity: str) -> str:
    """The symbol cache file of a debug file: ``<kind>-<identity>.symc`` (``pdb-<GUID><AGE>``,
    ``elf-<build id>``, ``elf-<build id>-dwp`` when a .dwp's split units answer too)."""
    name = f"{kind}-{identity}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,120}", name):
        raise UnsafeNameError(f"not a symbol cache identity: {name[:40]!r}")
    return name + SYMCACHE_SUFFIX


def debuginfod_key(build_id: str, artifact: str) -> str:
    """``buildid/<id>/<artifact>`` below the debuginfod root (``executable``, ``debuginfo``, ``dwp``)."""
    if artifact not in DEBUGINFOD_ARTIFACTS:
        raise ValueError(f"unknown debuginfod artifact {artifact!r}")
    return f"buildid/{_hex_id(build_id, 'a build-id')}/{artifact}"


def _ssqp_name(name: str) -> str:
    from symtool.ids import check_file_name

    return check_file_name(name).lower()


SSQP_DEBUG_NAME = "_.debug"  # every ELF debug file has this SSQP name
SSQP_DWARF_NAME = "_.dwarf"  # every dSYM DWARF file has this SSQP name


def elf_index(build_id: str, sym: bool = False) -> str:
    """The INDEX of an ELF key: ``elf-buildid-<id>`` (binary, .dwp) or ``elf-buildid-sym-<id>`` (debug file)."""
    return f"elf-buildid-{'sym-' if sym else ''}{_hex_id(build_id, 'a build-id')}"


def mach_index(uuid_hex: str, sym: bool = False) -> str:
    """The INDEX of a Mach-O key: ``mach-uuid-<uuid>`` (binary) or ``mach-uuid-sym-<uuid>`` (dSYM DWARF)."""
    return f"mach-uuid-{'sym-' if sym else ''}{_hex_id(uuid_hex.replace('-', ''), 'a Mach-O UUID', 32)}"


def ssqp_elf_key(name: str, build_id: str) -> str:
    """``<name>/elf-buildid-<id>/<name>``: an ELF binary by its build-id."""
    n = _ssqp_name(name)
    return f"{n}/{elf_index(build_id)}/{n}"


def ssqp_elf_debug_key(build_id: str) -> str:
    """``_.debug/elf-buildid-sym-<id>/_.debug``: the debug file of an ELF binary."""
    return f"{SSQP_DEBUG_NAME}/{elf_index(build_id, sym=True)}/{SSQP_DEBUG_NAME}"


def ssqp_macho_key(name: str, uuid_hex: str) -> str:
    """``<name>/mach-uuid-<uuid>/<name>``: a Mach-O binary by its LC_UUID."""
    n = _ssqp_name(name)
    return f"{n}/{mach_index(uuid_hex)}/{n}"


def ssqp_dwarf_key(uuid_hex: str) -> str:
    """``_.dwarf/mach-uuid-sym-<uuid>/_.dwarf``: the dSYM DWARF file of a Mach-O binary."""
    return f"{SSQP_DWARF_NAME}/{mach_index(uuid_hex, sym=True)}/{SSQP_DWARF_NAME}"
