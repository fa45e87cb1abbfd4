"""Where files live in a symbol store (the layout symstore.exe writes).

    <store>/<name>/<INDEX>/<name>          the file
    <store>/<name>/<INDEX>/<nam_>          the same, CAB-compressed (--compress)
    <store>/<name>/<INDEX>/file.ptr        a pointer to the file elsewhere (/p)
    <store>/<name>/<INDEX>/refs.ptr        which transactions reference it
    <store>/index2.txt                     two-tier: files under <store>/<na>/<name>/...
    <store>/pingme.txt, <store>/000Admin/  marker and transaction records

Lookups are case-insensitive on the name and INDEX, as symsrv's are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from symtool.ids import check_file_name, compressed_name, parse_index

ADMIN_DIR = "000Admin"
PINGME = "pingme.txt"
INDEX2 = "index2.txt"
REFS = "refs.ptr"
FILE_PTR = "file.ptr"


def is_two_tier(store: Path) -> bool:
    return (store / INDEX2).is_file()


def entry_dir(store: Path, name: str, index: str, two_tier: bool | None = None) -> Path:
    """``<store>[/<na>]/<name>/<INDEX>`` (validated: never outside the store)."""
    check_file_name(name)
    parse_index(index)
    if two_tier is None:
        two_tier = is_two_tier(store)
    base = store / name[:2] / name if two_tier else store / name
    return base / index


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


def find_entry_dir(store: Path, name: str, index: str, two_tier: bool | None = None) -> Path | None:
    """Existing ``<store>[/<na>]/<name>/<INDEX>`` directory (case-insensitive), or None."""
    check_file_name(name)
    parse_index(index)
    if two_tier is None:
        two_tier = is_two_tier(store)
    base: Path | None = find_ci(store, name[:2]) if two_tier else store
    if base is None:
        return None
    name_dir = find_ci(base, name)
    if name_dir is None:
        return None
    idx_dir = find_ci(name_dir, index)
    if idx_dir is None or not idx_dir.is_dir():
        return None
    return idx_dir


@dataclass
class Found:
    path: Path  # what exists in the store
    form: str  # "plain", "compressed" or "pointer"


def lookup(store: Path, name: str, index: str) -> Found | None:
    """Find ``name`` with ``index`` in a local store, as symsrv would: plain, then
    compressed, then file.ptr."""
    idx_dir = find_entry_dir(store, name, index)
    if idx_dir is None:
        return None
    for wanted, form in ((name, "plain"), (compressed_name(name), "compressed"), (FILE_PTR, "pointer")):
        hit = find_ci(idx_dir, wanted)
        if hit is not None and hit.is_file():
            return Found(hit, form)
    return None
