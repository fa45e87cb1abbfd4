"""Atomic writes: temp file in the same directory, fsync, rename.

Used for Cargo.toml edits, store files and caches, so a crash or SIGKILL never
leaves a half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

TMP_PREFIX = ".symtool-tmp-"


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename durable (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: str = "wb", *, replace: bool = True,
                  newline: str | None = None, encoding: str | None = None,
                  prefix: str = TMP_PREFIX) -> Iterator[IO]:
    """Yield a file object; on success it becomes ``path`` atomically.

    On any exception the temp file is removed and ``path`` is left untouched.
    With ``replace=False`` an existing ``path`` is not overwritten
    (FileExistsError), which makes concurrent writers of identical content safe.
    ``prefix`` names the temp file (it should start with TMP_PREFIX so cleanup
    tools recognise it; stores add the owner's host and pid).
    """
    path = Path(path)
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=directory)
    try:
        if "b" in mode:
            f = os.fdopen(fd, mode)
        else:
            f = os.fdopen(fd, mode, newline=newline, encoding=encoding or "utf-8")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            # link() fails if the target exists: no clobbering a concurrent winner.
            try:
                os.link(tmp, path)
            except (AttributeError, NotImplementedError, PermissionError):  # pragma: no cover - no hard links
                if path.exists():
                    raise FileExistsError(str(path))
                os.replace(tmp, path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        fsync_dir(directory)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_writer(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write text exactly as given (no newline translation)."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_copy(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, replace: bool = True,
                chunk: int = 1 << 20, progress=None, prefix: str = TMP_PREFIX) -> int:
    """Stream ``src`` to ``dst`` atomically; returns the bytes copied.

    ``progress(n)`` is called with each chunk's size (for progress bars).
    """
    total = 0
    with open(src, "rb") as fin, atomic_writer(dst, "wb", replace=replace, prefix=prefix) as fout:
        while True:
            buf = fin.read(chunk)
            if not buf:
                break
            fout.write(buf)
            total += len(buf)
            if progress is not None:
                progress(len(buf))
    return total


@contextlib.contextmanager
def atomic_temp(path: str | os.PathLike[str], *, replace: bool = True) -> Iterator[Path]:
    """Yield a temp *path* next to ``path``; on success it is fsynced and renamed to ``path``.

    For files that must be checked (by reading them back from disk) before they
    take their final name, e.g. downloads verified against their identity.  On
    any exception the temp file is removed and ``path`` is untouched.
    ``replace=False`` refuses to overwrite an existing ``path`` (FileExistsError).
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
