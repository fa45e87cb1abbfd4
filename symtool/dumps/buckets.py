"""Crash buckets: identical crashes counted, with first/last time and an example dump."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from symtool.dumps.triage import TriageRow


@dataclass
class Bucket:
    key: str
    count: int = 0
    first: str | None = None
    last: str | None = None
    example: str | None = None
    exception_code: str | None = None
    exception_name: str | None = None
    faulting_module: str | None = None
    faulting_offset: str | None = None
    function: str | None = None
    signature: list[str] = field(default_factory=list)
    stack: list = field(default_factory=list)  # the symbolized stack of the first dump in the bucket
    panic: dict | None = None  # the first dump's panic (message, file, line, column, thread)
    user_frame_index: int = 0  # where the user's frames start in ``stack`` (past the panic/abort path)

    def to_json(self) -> dict:
        return {"bucket": self.key, "count": self.count, "first": self.first, "last": self.last,
                "example": self.example, "exception_code": self.exception_code,
                "exception_name": self.exception_name, "faulting_module": self.faulting_module,
                "faulting_offset": self.faulting_offset, "function": self.function, "signature": self.signature,
                "stack": [dataclasses.asdict(f) if dataclasses.is_dataclass(f) else f for f in self.stack],
                "panic": self.panic}


@dataclass
class Buckets:
    """Crash buckets accumulated row by row (memory grows with buckets, not dumps)."""

    buckets: dict[str, Bucket] = field(default_factory=dict)
    unreadable: int = 0
    dumps: int = 0
    missing: dict[str, int] = field(default_factory=dict)  # pdb store path -> dumps needing it

    def add(self, row: TriageRow) -> None:
        self.dumps += 1
        if row.error:
            self.unreadable += 1
            return
        for m in row.modules:
            if m.pdb_found is False and m.pdb_store_path and not m.os_module:
                self.missing[m.pdb_store_path] = self.missing.get(m.pdb_store_path, 0) + 1
        key = row.bucket or "unknown"
        b = self.buckets.get(key)
        if b is None:
            b = self.buckets[key] = Bucket(key, example=row.path, exception_code=row.exception_code,
                                           exception_name=row.exception_name, faulting_module=row.faulting_module,
                                           faulting_offset=row.faulting_offset, function=row.function,
                                           signature=list(row.signature), stack=list(row.stack),
                                           panic=row.panic, user_frame_index=_user_frame_index(row))
        b.count += 1
        t = row.time
        if t:
            if b.first is None or t < b.first:
                b.first = t
            if b.last is None or t > b.last:
                b.last = t

    def ordered(self) -> list[Bucket]:
        return sorted(self.buckets.values(), key=lambda b: (-b.count, b.first or "", b.key))


def _user_frame_index(row: TriageRow) -> int:
    from symtool.dumps.signature import runtime_prefix

    os_modules = {m.name.lower() for m in row.modules if m.os_module}
    return min(runtime_prefix(row.stack, os_modules), len(row.stack)) if row.stack else 0


__all__ = ["Bucket", "Buckets"]
