"""Atomic writes: temp file in the same directory, fsync, rename.

Used for Cargo.toml edits, store files and caches, so a crash or SIGKILL never
leaves a half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from pathlib import Path

from symtool import platform

# Readers import this module for open_regular (``symtool id`` and ``symbolize`` start through
# it): tempfile is imported by the writers that use it, and typing not at all (the annotations
# are strings; IO and Iterator name types only).

TMP_PREFIX = ".symtool-tmp-"

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "not a regular file"


def open_regular(path: str | os.PathLike[str], *, follow: bool = True, what: str = "") -> IO[bytes]:
    """``open(path, "rb")`` for a regular file only; NotRegularFileError for anything else.

    A FIFO or a device can neither block the open nor be read, and the check
    is made on what was opened, not only on the name
    (:func:`symtool.platform.open_regular_fd`); with ``follow=False`` a symlink
    is refused, not followed (store and cache files, which must stay inside
    their directory).  ``what`` prefixes the message ("refs.ptr is a FIFO").
    """
    try:
        fd = platform.open_regular_fd(path, follow=follow)
    except platform.NotRegular as err:
        raise not_regular_error(err, what) from None
    return os.fdopen(fd, "rb")


def not_regular_error(err, what: str = ""):
    """The NotRegularFileError, in words, for a :class:`symtool.platform.NotRegular`."""
    from symtool.errors import NotRegularFileError

    if stat.S_ISLNK(err.mode):
        return NotRegularFileError(f"{what or 'it'} is a symbolic link, which is refused here", err.path)
    return NotRegularFileError(f"{what or 'it'} is {kind_of(err.mode)}, not a regular file", err.path)


def read_regular(path: str | os.PathLike[str], max_size: int, *, follow: bool = False, what: str = "") -> bytes:
    """The bytes of a regular file (see :func:`open_regular`) of at most ``max_size`` bytes.

    FormatError when it is bigger: admin files and pointers are small, and
    ``/dev/zero`` or a procfs file behind one must not fill the memory.
    """
    from symtool.errors import FormatError

    with open_regular(path, follow=follow, what=what) as f:
        data = f.read(max_size + 1)
    if len(data) > max_size:
        raise FormatError(f"{what or 'file'} is implausibly large (over {max_size} bytes)", path)
    return data


def require_real_dir(path: str | os.PathLike[str], what: str = "") -> None:
    """``path`` must be a directory and not a symlink (NotRegularFileError otherwise); absent is fine."""
    from symtool.errors import NotRegularFileError

    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        raise NotRegularFileError(f"{what or 'it'} is {kind_of(mode)}, where a directory belongs", path)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename durable (:func:`symtool.platform.fsync_dir`: a no-op on Windows)."""
    platform.fsync_dir(directory)


def _move_into_place(tmp: str | os.PathLike[str], path: Path, replace: bool, sync_dir: bool = True) -> None:
    """Rename a complete, fsynced temp file to ``path`` and make the rename durable
    (``sync_dir=False``: the caller fsyncs the directory later, once for many files).

    ``replace=False`` uses link(), which fails if ``path`` exists: a concurrent
    writer that won the race is never clobbered (FileExistsError).
    """
    if replace:
        platform.replace(tmp, path)
    else:
        try:
            platform.link(tmp, path)
        except platform.LinksUnsupported:
            # A share or file system without hard links (Windows: errors 1 and 50 on SMB): a rename,
            # after a check that leaves a window in which a concurrent writer of the same (identical)
            # content may be overwritten -- harmless, as both wrote the same bytes.
            if os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
            platform.replace(tmp, path)
        finally:
            platform.unlink(tmp, missing_ok=True)
    if sync_dir:
        fsync_dir(path.parent)


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (threads may be writing)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def cp_mode(path: str | os.PathLike[str], like: str | os.PathLike[str] | None = None,
            umask: int | None = None) -> int:
    """The permission bits ``cp`` would leave on ``path``.

    An existing ``path`` keeps its own mode (cp writes into it).  A new one
    gets the source's mode (``like``), or 0666 for generated content, less the
    umask, without set-id bits.  mkstemp's 0600 would make a store on a share
    or behind a web server unreadable to everyone but its writer.  ``umask``:
    the process umask when the caller read it already (:func:`current_umask`
    reads /proc: a publish of many files reads it once).
    """
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        pass
    base = 0o666
    if like is not None:
        with contextlib.suppress(OSError):
            base = stat.S_IMODE(os.stat(like).st_mode) & 0o777
    return base & ~(current_umask() if umask is None else umask)


def _set_mode(fd: int, mode: int) -> None:
    if hasattr(os, "fchmod"):
        with contextlib.suppress(OSError):  # a filesystem without modes (some shares): keep its default
            os.fchmod(fd, mode)


@contextlib.contextmanager
def _temp_beside(path: Path, replace: bool, prefix: str, mode_like: str | os.PathLike[str] | None,
                 sync_dir: bool = True, umask: int | None = None,
                 mode: int | None = None) -> Iterator[tuple[int, str]]:
    """A new temp file beside ``path`` (fd and name) with cp's mode; moved into place after the body.

    The body must leave the data complete and fsynced.  On any exception the
    temp file is removed and ``path`` is left untouched.
    """
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    except OSError as err:
        raise _naming(err, path) from None
    try:
        _set_mode(fd, cp_mode(path, mode_like, umask) if mode is None else mode)
        yield fd, tmp
        _move_into_place(tmp, path, replace, sync_dir)
    except BaseException as err:
        with contextlib.suppress(OSError):  # a temp file kept by a scanner: store repair removes it later
            platform.unlink(tmp, missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:
            # ENOSPC, EFBIG, EINVAL from write/fsync name no file: say which one could not be written.
            raise _naming(err, path) from None
        raise


def _naming(err: OSError, path: Path) -> OSError:
    """``err`` with ``path`` as its file name when it names none (the same type, so handlers still match)."""
    if err.filename is not None:
        return err
    try:
        return type(err)(err.errno, err.strerror or str(err), str(path))
    except TypeError:  # pragma: no cover - an OSError subclass with another signature
        return OSError(err.errno, err.strerror or str(err), str(path))


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: str = "wb", *, replace: bool = True,
                  newline: str | None = None, encoding: str | None = None,
                  prefix: str = TMP_PREFIX, mode_like: str | os.PathLike[str] | None = None,
                  sync_dir: bool = True) -> Iterator[IO]:
    """Yield a file object; on success it becomes ``path`` atomically.

    ``sync_dir=False`` leaves the directory's fsync (which makes the rename durable) to the
    caller: a batch of files fsyncs each directory once, after all its renames.

    The result has the permission bits ``cp`` would give it (:func:`cp_mode`,
    with ``mode_like`` as the source file when there is one).

    On any exception the temp file is removed and ``path`` is left untouched.
    With ``replace=False`` an existing ``path`` is not overwritten
    (FileExistsError), which makes concurrent writers of identical content safe.
    ``prefix`` names the temp file (it should start with TMP_PREFIX so cleanup
    tools recognise it; stores add the owner's host and pid).
    """
    path = Path(path)
    with _temp_beside(path, replace, prefix, mode_like, sync_dir) as (fd, _tmp):
        if "b" in mode:
            f = os.fdopen(fd, mode)
        else:
            f = os.fdopen(fd, mode, newline=newline, encoding=encoding or "utf-8")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_fd(path: str | os.PathLike[str], *, replace: bool = True, prefix: str = TMP_PREFIX,
              mode_like: str | os.PathLike[str] | None = None, sync_dir: bool = True,
              umask: int | None = None, mode: int | None = None) -> Iterator[int]:
    """:func:`atomic_writer` for a raw descriptor (positioned at 0): no file object, no buffering.

    For writers that copy with descriptors (:func:`copy_fd_data`) or write one buffer: a store
    publish of many small files spends no system calls on a file object's set-up.  On success the
    descriptor is fsynced, closed and the file moved into place; ``umask`` as for :func:`cp_mode`;
    ``mode``: the permission bits, when the caller knows what cp_mode would say (a file new to a
    directory it just made: the source's mode less the umask), instead of two stats a file.
    """
    path = Path(path)
    with _temp_beside(path, replace, prefix, mode_like, sync_dir, umask, mode) as (fd, _tmp):
        try:
            yield fd
            os.fsync(fd)
        finally:
            os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """``data`` written whole to the descriptor ``fd`` (os.write may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_new_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Create ``path`` holding ``data``, fsynced (the directory's fsync is the caller's).

    FileExistsError when ``path`` exists (O_EXCL: never through a symlink either).  The mode is
    0666 less the umask, as cp gives new content.  Not atomic for readers, unlike
    :func:`atomic_writer`: only for files whose every reader holds a lock the writer holds
    (store refs.ptr files, see :func:`symtool.store.admin.append_ref`).  A failure removes the file.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o666)
    try:
        write_all(fd, data)
        os.fsync(fd)
    except BaseException as err:
        os.close(fd)
        with contextlib.suppress(OSError):
            platform.unlink(path, missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:
            raise _naming(err, Path(path)) from None
        raise
    os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_writer(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write text exactly as given (no newline translation)."""
    atomic_write_bytes(path, text.encode(encoding))


COPY_CHUNK = 8 << 20  # bytes per copy step: large enough for in-kernel copies, small enough for progress bars

_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of dirty pages in the range, do not wait
_sync_file_range = None  # resolved lazily (ctypes costs start-up time a republish does not need)


def _writeback_starter():
    """``start(fd, offset, length)`` that queues the range for writeback now, or None.

    Linux only (sync_file_range via libc).  Starting writeback while the copy
    goes on makes the final fsync wait for the tail only, and keeps the disk busy
    the whole time instead of idle until the fsync.  It does not make anything
    durable by itself: the fsync before the rename stays.
    """
    global _sync_file_range
    if _sync_file_range is None:
        _sync_file_range = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                libc = ctypes.CDLL(None, use_errno=True)
                fn = libc.sync_file_range
                fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
                fn.restype = ctypes.c_int
                _sync_file_range = fn
            except (OSError, AttributeError, ImportError):
                pass
    if not _sync_file_range:
        return None
    fn = _sync_file_range

    def start(fd: int, offset: int, length: int) -> None:
        fn(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # advisory: a failure just means no head start

    return start


def copy_file_data(fin: IO, fout: IO, *, chunk: int = COPY_CHUNK, progress=None, size: int | None = None,
                   what: str = "") -> int:
    """Copy all of ``fin`` (from its position) to ``fout``; returns the bytes copied.

    ``fout`` must be a fresh binary file (nothing buffered); durability is the
    caller's (atomic_writer fsyncs).  See :func:`copy_fd_data`.
    """
    fout.flush()
    src, dst = fin.fileno(), fout.fileno()
    start = fin.tell()
    base = os.lseek(dst, 0, os.SEEK_CUR)
    os.lseek(src, start, os.SEEK_SET)
    done = copy_fd_data(src, dst, chunk=chunk, progress=progress, size=size, what=what, start=start, base=base)
    # Keep the Python file objects' idea of their positions in step with the fds.
    fin.seek(start + done)
    fout.seek(base + done)
    return done


def copy_fd_data(src: int, dst: int, *, chunk: int = COPY_CHUNK, progress=None, size: int | None = None,
                 what: str = "", start: int = 0, base: int = 0) -> int:
    """Copy descriptor ``src`` from offset ``start`` (its position) to ``dst`` at ``base`` (its position).

    ``size``: what the source says it holds (its st_size).  No more is copied,
    and a source with more (a procfs file reports 0 and never ends, a file
    growing meanwhile) is a FormatError naming ``what`` -- the copy is bounded
    by what was known before it started.

    In-kernel where the OS can (copy_file_range, then sendfile), else read/write;
    writeback of each chunk is started as soon as it is written (Linux) when
    there is more than one chunk (a single chunk's fsync follows at once).
    ``progress(n)`` is called after each chunk.  Returns the bytes copied.
    """
    writeback = _writeback_starter() if size is None or size > chunk else None
    methods = [m for m in ("copy_file_range", "sendfile") if hasattr(os, m)] + ["readwrite"]
    done = 0
    while methods:
        method = methods[0]
        try:
            while size is None or done < size:
                step = chunk if size is None else min(chunk, size - done)
                if method == "copy_file_range":
                    n = os.copy_file_range(src, dst, step)
                elif method == "sendfile":
                    n = os.sendfile(dst, src, None, step)
                else:
                    buf = os.read(src, step)
                    n = len(buf)
                    view = memoryview(buf)
                    while view:
                        view = view[os.write(dst, view):]
                if not n:
                    if done == 0 and method != "readwrite":
                        # Kernels report 0 for files without a real size (procfs, some FUSE):
                        # let the next method confirm that the file really is empty.
                        raise OSError(0, "no data from in-kernel copy")
                    break
                if writeback is not None:
                    writeback(dst, base + done, n)
                done += n
                if progress is not None:
                    progress(n)
            break
        except OSError:
            # Not supported here (EXDEV, EINVAL, ENOSYS, EOPNOTSUPP...): next method from where we are.
            # A real I/O error (EIO, ENOSPC) fails the plain read/write too and is raised from there.
            if method == "readwrite":
                raise
            methods.pop(0)
            os.lseek(src, start + done, os.SEEK_SET)
            os.lseek(dst, base + done, os.SEEK_SET)
            os.ftruncate(dst, base + done)
    if size is not None and done == size and _has_more(src, start + done):
        from symtool.errors import FormatError

        raise FormatError(f"holds more than the {size} bytes its size says (a device, a procfs file, "
                          "or a file that grew while copied): not copied", what or None)
    return done


def _has_more(fd: int, offset: int) -> bool:
    """Is there data at ``offset`` (past the size the file claims)?  An error reading there counts as yes:
    a regular file ends quietly at its size (procfs files such as pagemap refuse odd reads instead)."""
    try:
        return bool(platform.pread(fd, 4096, offset))
    except OSError:
        return True


def atomic_copy(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, replace: bool = True,
                chunk: int = COPY_CHUNK, progress=None, prefix: str = TMP_PREFIX) -> int:
    """Stream ``src`` to ``dst`` atomically; returns the bytes copied.

    ``progress(n)`` is called with each chunk's size (for progress bars).
    The data is fsynced before the rename (atomic_writer), so ``dst`` appears
    only complete and durable.
    """
    with open(src, "rb") as fin, atomic_writer(dst, "wb", replace=replace, prefix=prefix, mode_like=src) as fout:
        with contextlib.suppress(AttributeError, OSError):
            os.posix_fadvise(fin.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        return copy_file_data(fin, fout, chunk=chunk, progress=progress)


@contextlib.contextmanager
def atomic_temp(path: str | os.PathLike[str], *, replace: bool = True, prefix: str = TMP_PREFIX) -> Iterator[Path]:
    """Yield a temp *path* next to ``path``; on success it is fsynced and renamed to ``path``.

    For files that must be checked (by reading them back from disk) before they
    take their final name, e.g. downloads verified against their identity.  On
    any exception the temp file is removed and ``path`` is untouched.
    ``replace=False`` refuses to overwrite an existing ``path`` (FileExistsError).
    """
    path = Path(path)
    with _temp_beside(path, replace, prefix, None) as (fd, tmp_name):
        os.close(fd)
        yield Path(tmp_name)
        with open(tmp_name, "rb+") as f:
            os.fsync(f.fileno())
