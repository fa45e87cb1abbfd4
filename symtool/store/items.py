"""What gets published: one file with its store key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


SAME_CHECK = 1 << 20  # bytes compared at each end of a file to call it identical (publish, objstore)


@dataclass(frozen=True)
class PublishItem:
    path: Path  # the local file
    name: str  # file name in the store (case as on disk)
    index: str  # store INDEX (DebugId / CodeId)
    kind: str  # refs.ptr kind: "pri" full PDB, "pub" stripped PDB, "typ" types-only PDB, "bin" binary
    size: int = 0

    @property
    def key(self) -> str:
        """``name/INDEX/name``."""
        return f"{self.name}/{self.index}/{self.name}"
