"""Saved process memory, read by address: a read outside what the dump holds is None."""

from __future__ import annotations

import bisect
import struct

U64 = struct.Struct("<Q")
U32 = struct.Struct("<I")


class StackMemory:
    """Regions of memory (``(start, bytes)``), read by address."""

    def __init__(self, regions: list[tuple[int, bytes]] | None = None):
        self.regions = sorted(regions or [], key=lambda r: r[0])
        self._starts = [r[0] for r in self.regions]

    def read(self, address: int, size: int) -> bytes | None:
        i = bisect.bisect_right(self._starts, address) - 1
        if i < 0 or address < 0:
            return None
        start, data = self.regions[i]
        rel = address - start
        if rel + size > len(data):
            return None
        return data[rel:rel + size]

    def u64(self, address: int) -> int | None:
        raw = self.read(address, 8)
        return None if raw is None else U64.unpack(raw)[0]

    def u32(self, address: int) -> int | None:
        raw = self.read(address, 4)
        return None if raw is None else U32.unpack(raw)[0]

    def contains(self, address: int) -> bool:
        return self.read(address, 1) is not None

    @property
    def end(self) -> int:
        return max((s + len(d) for s, d in self.regions), default=0)


__all__ = ["StackMemory"]
