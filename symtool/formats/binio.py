"""Bounded reading helpers shared by the binary readers."""

from __future__ import annotations

import os
import struct

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up of `id`, `symbolize`)
if TYPE_CHECKING:  # names of annotations only
    from typing import BinaryIO

from symtool import platform
from symtool.errors import FormatError


class BoundedReader:
    """Positional reads from a binary file, checked against its size.

    Counts the bytes read (benchmarks and tests assert that identity reads
    stay small) and turns short reads into :class:`FormatError`.
    """

    def __init__(self, f: BinaryIO, path: str, size: int | None = None):
        self.f = f
        self.path = path
        if size is None:
            try:
                size = os.fstat(f.fileno()).st_size
            except (OSError, AttributeError, ValueError):
                # BytesIO and other file-likes have no (usable) descriptor.
                size = _seek_size(f)
        self._fd: int | None
        try:
            self._fd = f.fileno()
        except (OSError, AttributeError, ValueError):
            self._fd = None
        self.size = size
        self.bytes_read = 0

    def read(self, offset: int, length: int, what: str = "data") -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise FormatError(
                f"{what} at offset {offset:#x} (+{length}) runs past the end of the file ({self.size} bytes)",
                self.path,
            )
        if length == 0:
            return b""
        if self._fd is not None:
            try:
                # Positional: the file object's position (and other readers of it) are left alone.
                data = platform.pread(self._fd, length, offset)
            except (OSError, ValueError):
                self.f.seek(offset)
                data = self.f.read(length)
        else:
            self.f.seek(offset)
            data = self.f.read(length)
        self.bytes_read += len(data)
        if len(data) != length:
            raise FormatError(f"{what}: short read at offset {offset:#x}", self.path)
        return data

    def unpack(self, record: struct.Struct, offset: int, what: str = "data") -> tuple:
        """The fields of one ``record`` (a declared layout) at ``offset``."""
        return record.unpack(self.read(offset, record.size, what))


def _seek_size(f: BinaryIO) -> int:
    pos = f.tell()
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(pos)
    return size


def cstring(data: bytes, start: int = 0) -> bytes:
    """Bytes from ``start`` up to the first NUL (or the end)."""
    end = data.find(b"\0", start)
    return data[start:] if end < 0 else data[start:end]
