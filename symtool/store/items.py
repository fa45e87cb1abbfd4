"""What gets published: one file with its store key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


SAME_CHECK = 1 << 20  # bytes compared at each end of a file to call it identical (publish, objstore)


@dataclass(frozen=True)
class PublishItem:
    """A file to publish and its store key (``name/index/name``)."""

    path: Path  # the local file
    name: str  # file name in the store (case as on disk)
    index: str  # store INDEX (DebugId / CodeId)
    kind: str  # refs.ptr kind: "pri" full PDB, "pub" stripped PDB, "typ" types-only PDB, "bin" binary
    size: int = 0

    @property
    def key(self) -> str:
        """``name/INDEX/name``."""
        return f"{self.name}/{self.index}/{self.name}"


def sample_hash(path: Path, size: int) -> str:
    """sha256 of the first and last MiB: the "same bytes" rule of publish (see _same_plain)."""
    import hashlib  # only a republish or object storage hashes: not every publish's start-up

    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(SAME_CHECK))
        if size > SAME_CHECK:
            f.seek(max(SAME_CHECK, size - SAME_CHECK))
            h.update(f.read(SAME_CHECK))
    return h.hexdigest()


def publish_set_digest(files: list[tuple[str, str, str, int, str]], product: str, version: str,
                       comment: str) -> str:
    """One digest for a publish: every (name, index, form, size, sample hash), in any order,
    and the transaction's product, version and comment (``publish --skip-published``)."""
    import hashlib

    h = hashlib.sha256()
    for name, index, form, size, sample in sorted((n.lower(), i.upper(), f, z, s) for n, i, f, z, s in files):
        h.update(f"{name}\0{index}\0{form}\0{size}\0{sample}\n".encode("utf-8", "surrogateescape"))
    h.update(f"{product}\0{version}\0{comment}".encode("utf-8", "surrogateescape"))
    return h.hexdigest()
