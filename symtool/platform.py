"""The platform layer: every file-system and process operation whose semantics differ by OS.

Why one module: Windows' CPython lacks ``os.pread`` (before 3.14),
``O_NOFOLLOW``, ``O_NONBLOCK`` and ``fcntl``; its ``os.set_blocking`` (3.12+)
works on pipes only, and a directory cannot be opened with ``os.open``.  Code
that reached for those directly crashed there (issue 21).  Here each
operation has a POSIX and a Windows implementation, chosen once at import by
``os.name``; nothing else under ``symtool/`` touches those calls
(``tests/test_architecture.py`` enforces it).

:func:`use_personality` swaps the implementation, so the test suite runs the
Windows code on Linux (``tests/windows_personality.py`` also takes the
missing calls away from ``os``, as Windows' CPython does).

Errors: :class:`NotRegular` (typed, no words) for a path that is a symlink
where none is allowed, a FIFO, a device or a directory; callers word it.
Everything else is the ``OSError`` the OS gave.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from typing import Iterator

__all__ = ["NotRegular", "pread", "open_regular_fd", "open_no_follow", "fsync_dir", "pid_alive", "dir_lock",
           "use_personality", "personality"]


class NotRegular(Exception):
    """``path`` is not a regular file: ``mode`` says what it is (``S_IFLNK`` for a refused symlink)."""

    def __init__(self, path: "str | os.PathLike[str]", mode: int):
        super().__init__(os.fspath(path), mode)
        self.path = os.fspath(path)
        self.mode = mode


_LINK_MODE = stat.S_IFLNK | 0o777
_FILE_ATTRIBUTE_REPARSE_POINT = 0x400  # winnt.h; stat.FILE_ATTRIBUTE_REPARSE_POINT exists on every OS


class _Posix:
    name = "posix"

    @staticmethod
    def pread(fd: int, length: int, offset: int) -> bytes:
        return os.pread(fd, length, offset)

    @staticmethod
    def open_regular_fd(path, follow: bool) -> int:
        # O_NONBLOCK: a FIFO or a device cannot block the open itself; the fstat on the
        # descriptor (not the name: no race with a rename) then refuses it before any read.
        flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
        fd = _open_posix(path, flags, 0o666, follow)
        try:
            _require_regular_fd(fd, path)
            os.set_blocking(fd, True)  # a regular file: reads must not see EAGAIN
            return fd
        except BaseException:
            os.close(fd)
            raise

    @staticmethod
    def open_no_follow(path, flags: int, mode: int) -> int:
        fd = _open_posix(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, mode, False)
        try:
            _require_regular_fd(fd, path)
            os.set_blocking(fd, True)
            return fd
        except BaseException:
            os.close(fd)
            raise

    @staticmethod
    def fsync_dir(directory) -> None:
        try:
            fd = os.open(directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:  # some file systems (and shares) refuse fsync on a directory: nothing more to do
            pass
        finally:
            os.close(fd)

    @staticmethod
    def pid_alive(pid: int) -> bool:
        if pid <= 0:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        except OSError:
            return False
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[-1].split()[0]
            return state not in (b"Z", b"X")
        except (OSError, IndexError):
            return True

    @staticmethod
    @contextlib.contextmanager
    def dir_lock(directory, name: str) -> Iterator[None]:
        del name  # flock on the directory itself: no file to create
        import fcntl

        fd = os.open(directory, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock


def _open_posix(path, flags: int, mode: int, follow: bool) -> int:
    import errno

    try:
        return os.open(path, flags | getattr(os, "O_BINARY", 0), mode)
    except OSError as err:
        if not follow and err.errno == errno.ELOOP:
            raise NotRegular(path, _LINK_MODE) from None
        if err.errno in (errno.ENXIO, errno.EISDIR):  # a socket / a directory
            raise NotRegular(path, os.lstat(path).st_mode) from None
        raise


def _require_regular_fd(fd: int, path) -> None:
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegular(path, mode)


_FD_LOCKS: dict[int, threading.Lock] = {}
_FD_LOCKS_GUARD = threading.Lock()


def _fd_lock(fd: int) -> threading.Lock:
    with _FD_LOCKS_GUARD:
        return _FD_LOCKS.setdefault(fd, threading.Lock())


def _is_link(st: os.stat_result) -> bool:
    """A symlink or any other reparse point (junction, cloud placeholder): never followed where refused."""
    return stat.S_ISLNK(st.st_mode) or bool(getattr(st, "st_file_attributes", 0) & _FILE_ATTRIBUTE_REPARSE_POINT)


def _same_entry(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class _Windows:
    """Windows' CPython: no pread before 3.14, no O_NOFOLLOW/O_NONBLOCK, set_blocking for pipes only,
    no directory descriptors, no fcntl."""

    name = "windows"

    @staticmethod
    def pread(fd: int, length: int, offset: int) -> bytes:
        native = getattr(os, "pread", None)
        if native is not None:  # Python 3.14+
            return native(fd, length, offset)
        # seek + read, then put the position back, under a lock per descriptor: to every
        # caller that goes through here it is pread (the file object's position is untouched).
        with _fd_lock(fd):
            here = os.lseek(fd, 0, os.SEEK_CUR)
            try:
                os.lseek(fd, offset, os.SEEK_SET)
                return os.read(fd, length)
            finally:
                os.lseek(fd, here, os.SEEK_SET)

    @staticmethod
    def open_regular_fd(path, follow: bool) -> int:
        # No O_NONBLOCK here: a FIFO (named pipe) or device (CON, NUL) is refused by its stat
        # before it is opened.  No O_NOFOLLOW either: the name is lstat'ed before and after the
        # open, and a link (or any reparse point) there, or another file after, is refused.
        before = os.lstat(path)
        if _is_link(before):
            if not follow:
                raise NotRegular(path, _LINK_MODE)
            before = os.stat(path)
        if not stat.S_ISREG(before.st_mode):
            raise NotRegular(path, before.st_mode)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            _require_regular_fd(fd, path)
            if not follow:
                _still_the_same(path, before)
            return fd
        except BaseException:
            os.close(fd)
            raise

    @staticmethod
    def open_no_follow(path, flags: int, mode: int) -> int:
        try:
            before = os.lstat(path)
        except FileNotFoundError:
            before = None  # O_CREAT makes it: checked after the open, before anything is written
        if before is not None:
            if _is_link(before):
                raise NotRegular(path, _LINK_MODE)
            if not stat.S_ISREG(before.st_mode):
                raise NotRegular(path, before.st_mode)
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0), mode)
        try:
            _require_regular_fd(fd, path)
            if before is not None:
                _still_the_same(path, before)
            elif _is_link(os.lstat(path)):
                raise NotRegular(path, _LINK_MODE)
            return fd
        except BaseException:
            os.close(fd)
            raise

    @staticmethod
    def fsync_dir(directory) -> None:
        # A directory cannot be opened with os.open on Windows; NTFS journals the rename itself.
        del directory

    @staticmethod
    def pid_alive(pid: int) -> bool:  # pragma: no cover - needs kernel32 (Windows only)
        if pid <= 0:
            return False
        import ctypes
        from ctypes import wintypes

        # use_last_error: without it get_last_error() is always 0, and a live process of another
        # user (access denied) would look dead -- its lock would be broken under it.
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        kernel32.OpenProcess.restype = wintypes.HANDLE
        kernel32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
        kernel32.GetExitCodeProcess.argtypes = (wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD))
        kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: it exists
        code = wintypes.DWORD()
        try:
            ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return bool(ok) and code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)

    @staticmethod
    @contextlib.contextmanager
    def dir_lock(directory, name: str) -> Iterator[None]:  # pragma: no cover - needs msvcrt (Windows only)
        # No directory descriptors and no flock: a byte-range lock on a file ``name`` in it.
        import msvcrt

        fd = os.open(os.path.join(directory, name), os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
        try:
            while True:
                try:
                    msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # retries for ~10 s, then OSError: keep waiting
                    break
                except OSError:
                    continue
            try:
                yield
            finally:
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        finally:
            os.close(fd)


def _still_the_same(path, before: os.stat_result) -> None:
    """The name still shows the entry lstat'ed before the open, and no link (else what was opened is unknown)."""
    import errno

    after = os.lstat(path)
    if _is_link(after):
        raise NotRegular(path, _LINK_MODE)
    if not _same_entry(before, after):
        raise OSError(errno.ESTALE, "replaced while being opened", os.fspath(path))


_PERSONALITIES = {"posix": _Posix, "windows": _Windows}
_impl: type = _Windows if os.name == "nt" else _Posix


def personality() -> str:
    """``"posix"`` or ``"windows"``: the implementation in use."""
    return _impl.name


def use_personality(name: str) -> str:
    """Switch to the ``"posix"`` or ``"windows"`` implementation (tests); returns the previous name."""
    global _impl
    previous = _impl.name
    _impl = _PERSONALITIES[name]
    return previous


def pread(fd: int, length: int, offset: int) -> bytes:
    """Up to ``length`` bytes at ``offset`` of ``fd``, leaving its file position where it was."""
    return _impl.pread(fd, length, offset)


def open_regular_fd(path: "str | os.PathLike[str]", *, follow: bool = True) -> int:
    """A blocking read-only descriptor of the regular file ``path``; :class:`NotRegular` for anything else.

    Opening never blocks on a FIFO or device.  ``follow=False``: a symlink (on
    Windows any reparse point) as the last component is refused, not followed.
    """
    return _impl.open_regular_fd(path, follow)


def open_no_follow(path: "str | os.PathLike[str]", flags: int, mode: int = 0o666) -> int:
    """``os.open(path, flags, mode)`` of a regular file, never through a final symlink
    (:class:`NotRegular` for a link, FIFO, device or directory); the descriptor blocks."""
    return _impl.open_no_follow(path, flags, mode)


def fsync_dir(directory: "str | os.PathLike[str]") -> None:
    """Make a rename in ``directory`` durable (nothing to do where the OS journals it, or cannot)."""
    _impl.fsync_dir(directory)


def pid_alive(pid: int) -> bool:
    """Does a process with this pid exist on this host (and is it not a zombie)?"""
    return _impl.pid_alive(pid)


def dir_lock(directory: "str | os.PathLike[str]", name: str):
    """``with dir_lock(d, name):`` -- exclusive among processes on this host that lock ``d``.

    ``name``: a file in ``d`` the Windows implementation locks (it cannot lock a
    directory); callers pick one their listings skip.
    """
    return _impl.dir_lock(directory, name)
