"""The storage interface on a local directory (or a share mounted here).

Create-only puts are a hard link of a complete temp file (fails atomically
when the name exists); compare-and-swap holds a lock on the root directory
(:func:`symtool.platform.dir_lock`) while it compares the etag and renames.
The etag is the file's mtime, size and inode.  Metadata go into ``user.symtool.*`` extended
attributes where the file system has them.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO, Iterator

from symtool import platform
from symtool.errors import StoreError
from symtool.fsutil import TMP_PREFIX
from symtool.store.backends.base import Backend, Blob, ObjectInfo

XATTR = "user.symtool."


def _etag(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns:x}-{st.st_size:x}-{st.st_ino:x}"


class LocalBackend(Backend):
    scheme = "file"

    def __init__(self, root: Path):
        self.root = Path(root)
        self.display = str(root)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts):
            raise StoreError(f"bad object key {key!r}", self.root)
        return self.root.joinpath(*parts)

    @staticmethod
    def _meta(path: Path) -> dict:
        out = {}
        with contextlib.suppress(OSError, AttributeError):
            for name in os.listxattr(path):
                if name.startswith(XATTR):
                    out[name[len(XATTR):]] = os.getxattr(path, name).decode("ascii", "replace")
        return out

    def get(self, key: str) -> Blob | None:
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        return Blob(data, _etag(st), self._meta(path))

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        return ObjectInfo(key, st.st_size, _etag(st), self._meta(path), st.st_mtime)

    def open_read_info(self, key: str) -> "tuple[BinaryIO, ObjectInfo] | None":
        f = self.open_read(key)
        if f is None:
            return None
        st = os.fstat(f.fileno())  # of the open file: the etag of the bytes streamed
        return f, ObjectInfo(key, st.st_size, _etag(st), self._meta(self._path(key)), st.st_mtime)

    def open_read(self, key: str) -> BinaryIO | None:
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def _temp(self, path: Path, data: bytes | Path, metadata: dict | None) -> Path:
        import shutil
        import tempfile

        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(data, (bytes, bytearray)):
                    out.write(data)
                else:
                    with open(data, "rb") as src:
                        shutil.copyfileobj(src, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            for k, v in (metadata or {}).items():
                with contextlib.suppress(OSError, AttributeError):
                    os.setxattr(tmp, XATTR + k, str(v).encode("ascii"))
        except BaseException:
            with contextlib.suppress(OSError):
                platform.unlink(tmp)
            raise
        return Path(tmp)

    def put(self, key: str, data: bytes | Path, *, metadata: dict | None = None,
            if_none_match: bool = False, if_match: str | None = None) -> str | None:
        path = self._path(key)
        tmp = self._temp(path, data, metadata)
        try:
            if if_none_match:
                try:
                    platform.link(tmp, path)
                except FileExistsError:
                    return None
                except platform.LinksUnsupported:
                    # No hard links here (an SMB share): create-if-absent under the directory lock.
                    with self._locked():
                        if os.path.lexists(path):
                            return None
                        platform.replace(tmp, path)
                return _etag(path.stat())
            with self._locked() if if_match is not None else contextlib.nullcontext():
                if if_match is not None:
                    try:
                        if _etag(path.stat()) != if_match:
                            return None
                    except FileNotFoundError:
                        return None
                platform.replace(tmp, path)
                return _etag(path.stat())
        finally:
            platform.unlink(tmp, missing_ok=True)

    def _locked(self):
        """Compare-and-swap is exclusive among this host's writers (flock on the root; on Windows a
        lock on a file in it, named like a temp file so listings skip it)."""
        return platform.dir_lock(self.root, TMP_PREFIX + "cas.lock")

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        out = []
        for dirpath, dirs, files in os.walk(self.root):
            for f in files:
                if f.startswith(TMP_PREFIX):
                    continue
                p = Path(dirpath) / f
                rel = p.relative_to(self.root).as_posix()
                if rel.startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):
                        st = p.stat()
                        out.append(ObjectInfo(rel, st.st_size, _etag(st), {}, st.st_mtime))
        return iter(sorted(out, key=lambda o: o.key))

    def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            platform.unlink(path)
        d = path.parent
        while d != self.root:  # symstore layouts have no empty directories
            try:
                d.rmdir()
            except OSError:
                break
            d = d.parent
