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
which runs in every new shell.  ``symtool.ids`` (uuid, dataclasses) is
imported inside the functions that validate keys for that reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from collections import namedtuple

from symtool.errors import FormatError, UnsafeNameError

ADMIN_DIR = "000Admin"
PINGME = "pingme.txt"
INDEX2 = "index2.txt"
REFS = "refs.ptr"
FILE_PTR = "file.ptr"
LOCK_NAME = "symtool.lock"
# Names at the top of a flat store that belong to the store itself, never to a key.
RESERVED_TOP = frozenset({ADMIN_DIR.lower(), PINGME, INDEX2, LOCK_NAME})

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
    with open(path, "rb") as f:
        data = f.read(MAX_FILE_PTR_SIZE + 1)
    if len(data) > MAX_FILE_PTR_SIZE:
        raise FormatError(f"file.ptr is implausibly large (over {MAX_FILE_PTR_SIZE} bytes)", path)
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


def inside(store: Path, path: Path) -> bool:
    """Does ``path`` (symlinks resolved) stay inside ``store``?"""
    try:
        root = store.resolve()
        target = path.resolve()
    except (OSError, RuntimeError):
        return False
    return target == root or root in target.parents


def find_ci(directory: Path, wanted: str) -> Path | None:
    """``directory/wanted`` with case-insensitive matching (exact match first).

    Stores written on Windows shares differ in case from what binaries and
    dumps record; symsrv matches case-insensitively, so do we.
    """
    exact = directory / wanted
    if os.path.lexists(exact):
        return exact
    try:
        with os.scandir(directory) as it:
            for entry in it:
                if entry.name.lower() == wanted.lower():
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


def find_entry_dir(store: Path, name: str, index: str, two_tier: bool | None = None) -> Path | None:
    """Existing ``<store>[/<na>]/<name>/<INDEX>`` directory (case-insensitive, inside the store), or None."""
    if two_tier is None:
        two_tier = is_two_tier(store)
    found = resolve_ci(store, key_dir(name, index, two_tier))
    if found is None or not found.is_dir():
        return None
    if not inside(store, found):
        raise UnsafeNameError(f"{name}/{index} resolves outside the store")
    return found


def entry_dir(store: Path, name: str, index: str, two_tier: bool | None = None) -> Path:
    """The ``<store>[/<na>]/<name>/<INDEX>`` directory to write a key into.

    Existing directories whose names differ only in case are reused (Windows
    and symsrv do not tell them apart); missing ones get the key's spelling.
    Never outside the store, never one of the store's own top-level names.
    """
    if two_tier is None:
        two_tier = is_two_tier(store)
    rel = key_dir(name, index, two_tier)
    if not two_tier and name.lower() in RESERVED_TOP:
        raise UnsafeNameError(f"file name {name!r} collides with the store's own files")
    path = store
    for part in rel.split("/"):
        path = find_ci(path, part) or path / part
    if not inside(store, path if path.exists() else path.parent):
        raise UnsafeNameError(f"{name}/{index} would resolve outside the store")
    return path


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
        if message:
            messages.append(message)
        if target is not None:
            return Found(path, POINTER, target, tuple(messages))
    if messages and last_ptr is not None:
        return Found(last_ptr, MESSAGE, None, tuple(messages))
    return None
