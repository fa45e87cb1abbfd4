"""The source URL of a frame: read a PDB's ``srcsrv`` stream (and ``sourcelink``
as the fallback) once, then map file paths, exactly as the PDB records them, to
the URL (or path) a debugger would fetch them from.

srcsrv first, as WinDBG and cdb do: the entry of the path (case-insensitive for
Windows paths), its ``SRCSRVTRG`` expanded.  Source Link next, as Visual Studio
does: exact documents, then the longest ``prefix*`` wildcard (either separator,
any case), ``*`` replaced by the rest of the path with ``/`` separators.
"""

from __future__ import annotations

import os
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from symtool.errors import FormatError
from symtool.formats.pdb import STREAM_SOURCELINK, STREAM_SRCSRV, open_msf, read_pdb_file
from symtool.srcindex.streams import (MAX_STREAM_TEXT, SourceLink, SrcsrvIndex, decode_stream_text, read_sourcelink,
                                      read_srcsrv)


@dataclass
class SourceIndex:
    """The source index of one PDB (empty when it has none)."""

    srcsrv: SrcsrvIndex | None = None
    sourcelink: SourceLink | None = None
    problems: list[str] = field(default_factory=list)  # streams left unread (too large, unreadable PDB)
    _urls: dict[str, str | None] = field(default_factory=dict, repr=False)

    @property
    def indexed(self) -> bool:
        return bool((self.srcsrv and self.srcsrv.entries) or (self.sourcelink and self.sourcelink.documents))

    def url_for(self, path: str | None) -> str | None:
        """The URL (or path) ``path`` would be fetched from; None when not listed."""
        if not path:
            return None
        if path in self._urls:
            return self._urls[path]
        url = self.srcsrv.target(path) if self.srcsrv is not None else None
        if url is None and self.sourcelink is not None:
            url = self.sourcelink.url(path)
        if len(self._urls) < 1 << 16:
            self._urls[path] = url
        return url


def _stream_text(msf, number: int, name: str, out: SourceIndex) -> str | None:
    size = msf.stream_size(number)
    if size > MAX_STREAM_TEXT:
        out.problems.append(f"{name} stream of {size} bytes is larger than {MAX_STREAM_TEXT} (not read)")
        return None
    return decode_stream_text(msf.read_stream(number, 0, size))


def read_source_index(pdb: str | os.PathLike[str], named_streams: dict[str, int] | None = None) -> SourceIndex:
    """The source index of the PDB at ``pdb``: FormatError / OSError when the PDB is unreadable.

    Bad srcsrv or Source Link text never raises: it indexes nothing.
    """
    path = os.fspath(pdb)
    out = SourceIndex()
    f, msf = open_msf(path)
    with f:
        if named_streams is None:
            named_streams = read_pdb_file(f, path).named_streams
        number = named_streams.get(STREAM_SRCSRV)
        if number is not None and number < msf.num_streams:
            text = _stream_text(msf, number, STREAM_SRCSRV, out)
            if text is not None:
                out.srcsrv = read_srcsrv(text)
        number = named_streams.get(STREAM_SOURCELINK)
        if number is not None and number < msf.num_streams:
            text = _stream_text(msf, number, STREAM_SOURCELINK, out)
            if text is not None:
                out.sourcelink = read_sourcelink(text)
    return out


class SourceIndexCache:
    """Source indexes by PDB path, each PDB read once per run (least recently used dropped first)."""

    def __init__(self, size: int = 64):
        self.size = size
        self._items: OrderedDict[str, SourceIndex] = OrderedDict()

    def get(self, pdb: str | os.PathLike[str] | Path) -> SourceIndex:
        """The PDB's index; an empty one (with the problem noted) when the PDB cannot be read."""
        key = os.fspath(pdb)
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
            return found
        try:
            found = read_source_index(key)
        except FormatError as err:
            found = SourceIndex(problems=[err.message])
        except (OSError, ValueError, struct.error) as err:
            found = SourceIndex(problems=[str(err)])
        self._items[key] = found
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return found

    def url_for(self, pdb: str | os.PathLike[str] | Path, path: str | None) -> str | None:
        return self.get(pdb).url_for(path) if path else None


__all__ = ["SourceIndex", "SourceIndexCache", "read_source_index"]
