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
import _thread  # threading's lock, without threading's import (every run loads this module)

__all__ = ["NotRegular", "LinksUnsupported", "pread", "open_regular_fd", "open_no_follow", "fsync_dir",
           "pid_alive", "dir_lock", "replace", "unlink", "link", "symlink", "long_path", "windows_long_path",
           "real_paths", "may_be_program", "console_colors",
           "use_personality", "personality"]


class NotRegular(Exception):
    """``path`` is not a regular file: ``mode`` says what it is (``S_IFLNK`` for a refused symlink)."""

    def __init__(self, path: "str | os.PathLike[str]", mode: int):
        super().__init__(os.fspath(path), mode)
        self.path = os.fspath(path)
        self.mode = mode


class LinksUnsupported(OSError):
    """This file system or account cannot make the link asked for (a share without hard links, an
    account without the symlink privilege): callers copy instead, or go without."""


# Sharing violations: another handle (a reader, a debugger holding a PDB, an antivirus scan) has the
# file open without FILE_SHARE_DELETE.  They last as long as that handle, so they are retried, boundedly.
_SHARING_ERRORS = (5, 32, 33)  # ERROR_ACCESS_DENIED (also: delete pending), ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION
SHARING_RETRY_SECONDS = 10.0  # how long a replace/unlink waits for other handles to go before it gives up
# Hard links: a share or file system without them says ERROR_INVALID_FUNCTION (1) or ERROR_NOT_SUPPORTED
# (50), which CPython maps to EINVAL, not to PermissionError; ERROR_TOO_MANY_LINKS (1142) when full.
_NO_HARD_LINK_ERRORS = (1, 50, 1142)
_NO_SYMLINK_ERRORS = (1314, 1, 50)  # ERROR_PRIVILEGE_NOT_HELD (no Developer Mode), or a file system without them

_LINK_MODE = stat.S_IFLNK | 0o777
_FILE_ATTRIBUTE_REPARSE_POINT = 0x400  # winnt.h; stat.FILE_ATTRIBUTE_REPARSE_POINT exists on every OS


class _Posix:
    name = "posix"

    @staticmethod
    def pread(fd: int, length: int, offset: int) -> bytes:
        return os.pread(fd, length, offset)

    @staticmethod
    def real_paths(paths) -> list[str]:
        # realpath resolves a path component by component (an lstat each); files of one directory
        # share all but their last one, which is resolved only when it is a link.
        dirs: dict[str, str] = {}
        out = []
        for path in paths:
            head, name = os.path.split(os.fspath(path))
            if not name or name in (".", "..") or os.path.islink(path):
                out.append(os.path.realpath(path))
                continue
            real = dirs.get(head)
            if real is None:
                real = dirs[head] = os.path.realpath(head or os.curdir)
            out.append(os.path.join(real, name))
        return out

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
    def replace(src, dst) -> None:
        os.replace(src, dst)  # POSIX: open files never stop a rename

    @staticmethod
    def unlink(path) -> None:
        os.unlink(path)

    @staticmethod
    def long_path(path: str) -> str:
        return path  # no MAX_PATH here

    @staticmethod
    def may_be_program(st: os.stat_result) -> bool:
        return bool(st.st_mode & 0o111)

    @staticmethod
    def console_colors(fd: int) -> bool:
        return True  # every terminal here understands ANSI sequences (TERM=dumb is the caller's)

    @staticmethod
    def link(src, dst) -> None:
        import errno

        try:
            os.link(src, dst)
        except OSError as err:
            # EPERM (FAT, some FUSE), EOPNOTSUPP, EMLINK (too many links), EXDEV: no hard link here.
            if err.errno in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV, errno.ENOSYS):
                raise _links_unsupported(err) from None
            raise

    @staticmethod
    def symlink(target, path) -> None:
        import errno

        try:
            os.symlink(target, path)
        except OSError as err:
            if err.errno in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS):
                raise _links_unsupported(err) from None
            raise

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


_FD_LOCKS: dict[int, _thread.LockType] = {}
_FD_LOCKS_GUARD = _thread.allocate_lock()


def _fd_lock(fd: int) -> _thread.LockType:
    with _FD_LOCKS_GUARD:
        return _FD_LOCKS.setdefault(fd, _thread.allocate_lock())


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
    def real_paths(paths) -> list[str]:
        # Each whole: realpath here asks Windows for the final path of the opened file, whose last
        # component may differ in case (or be a short 8.3 name resolved) from what was given.
        return [os.path.realpath(path) for path in paths]

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
        fd = _open_read_shared(path)
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
    def may_be_program(st: os.stat_result) -> bool:
        # Windows derives the x bits from the extension (.exe, .bat, .cmd, .com): an extension-less
        # ELF or Mach-O file built by a cross toolchain never has them.  Its content decides.
        del st
        return True

    @staticmethod
    def console_colors(fd: int) -> bool:
        # A console understands ANSI sequences only with ENABLE_VIRTUAL_TERMINAL_PROCESSING, which
        # Windows 10+ lets a program switch on; older consoles (and conhost with it refused) print
        # the raw escapes.  Not a console (a pipe, a file, mintty's pty): the caller's isatty decides.
        mode = _Windows.get_console_mode(fd)
        if mode is None:
            return True
        if mode & _ENABLE_VIRTUAL_TERMINAL_PROCESSING:
            return True
        return _Windows.set_console_mode(fd, mode | _ENABLE_VIRTUAL_TERMINAL_PROCESSING)

    @staticmethod
    def get_console_mode(fd: int) -> int | None:  # pragma: no cover - kernel32 (Windows only)
        console = _console(fd)
        if console is None:
            return None
        kernel32, handle, wintypes, ctypes = console
        mode = wintypes.DWORD()
        return mode.value if kernel32.GetConsoleMode(handle, ctypes.byref(mode)) else None

    @staticmethod
    def set_console_mode(fd: int, mode: int) -> bool:  # pragma: no cover - kernel32 (Windows only)
        console = _console(fd)
        if console is None:
            return False
        kernel32, handle, wintypes, _ = console
        return bool(kernel32.SetConsoleMode(handle, wintypes.DWORD(mode)))

    @staticmethod
    def long_path(path: str) -> str:
        if os.name != "nt":  # the personality on a POSIX host: its paths are POSIX paths
            return path
        import ntpath  # pragma: no cover - Windows only

        # GetFullPathNameW (ntpath.abspath) knows each drive's current directory (the hidden =D:
        # variables os.environ leaves out); windows_long_path then picks the form.
        return windows_long_path(ntpath.abspath(path), os.getcwd(), os.environ)

    @staticmethod
    def replace(src, dst) -> None:
        _retry_sharing(os.replace, src, dst)

    @staticmethod
    def unlink(path) -> None:
        _retry_sharing(os.unlink, path)

    @staticmethod
    def link(src, dst) -> None:
        _windows_link(os.link, src, dst, _NO_HARD_LINK_ERRORS)

    @staticmethod
    def symlink(target, path) -> None:
        _windows_link(os.symlink, target, path, _NO_SYMLINK_ERRORS)

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
    def msvcrt():  # pragma: no cover - Windows only (the test personality gives its own)
        import msvcrt

        return msvcrt

    @staticmethod
    @contextlib.contextmanager
    def dir_lock(directory, name: str) -> Iterator[None]:
        # No directory descriptors and no flock: a byte-range lock on a file ``name`` in it.
        msvcrt = _Windows.msvcrt()

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


def _console(fd: int):  # pragma: no cover - kernel32 (Windows only)
    """(kernel32, the handle of ``fd``, wintypes, ctypes) on Windows; None elsewhere or for a bad fd."""
    if os.name != "nt":
        return None
    import ctypes
    import msvcrt
    from ctypes import wintypes

    try:
        handle = msvcrt.get_osfhandle(fd)
    except OSError:
        return None
    return ctypes.WinDLL("kernel32", use_last_error=True), wintypes.HANDLE(handle), wintypes, ctypes


def _open_read_shared(path) -> int:
    """A read-only descriptor of ``path``; on Windows opened with FILE_SHARE_DELETE, so a writer may
    replace or remove the file while it is read (what POSIX always allows).

    CPython's ``open``/``os.open`` never share delete access; only ``CreateFileW`` can, hence
    ctypes here.  Files opened elsewhere with ``open()`` (a copy's source, a PDB being rewritten)
    do block a writer: its replace retries (:func:`_retry_sharing`) and those readers are short.
    Under the test personality (not on Windows) this is ``os.open``: every open file then blocks,
    which is stricter than Windows and exercises the retries.
    """
    if os.name != "nt":
        return os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    import ctypes  # pragma: no cover - Windows only
    import msvcrt
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.CreateFileW.restype = wintypes.HANDLE
    kernel32.CreateFileW.argtypes = (wintypes.LPCWSTR, wintypes.DWORD, wintypes.DWORD, wintypes.LPVOID,
                                     wintypes.DWORD, wintypes.DWORD, wintypes.HANDLE)
    generic_read, share_all, open_existing, normal = 0x80000000, 0x7, 3, 0x80
    handle = kernel32.CreateFileW(os.fspath(path), generic_read, share_all, None, open_existing, normal, None)
    if handle in (None, wintypes.HANDLE(-1).value):
        code = ctypes.get_last_error()
        raise OSError(None, ctypes.FormatError(code), os.fspath(path), code)
    try:
        return msvcrt.open_osfhandle(handle, os.O_RDONLY | os.O_BINARY)
    except BaseException:
        kernel32.CloseHandle(handle)
        raise


MAX_PATH = 260
_ENABLE_VIRTUAL_TERMINAL_PROCESSING = 0x0004  # wincon.h: the console interprets ANSI sequences
# What a store or cache puts below its root: name/index/file (each up to a file name's length, in
# practice under 100 characters together) and temp names (.symtool-tmp-<host>-<pid>-<random>).
LONG_PATH_RESERVE = 120


def windows_long_path(path: str, cwd: str, environ=None, reserve: int = LONG_PATH_RESERVE) -> str:
    r"""``path`` as Windows should open it, by ntpath's rules whatever the host: made absolute
    (relative to ``cwd``; a drive-relative ``D:x`` to that drive's current directory, which
    cmd keeps in the ``=D:`` variable, else its root; a rooted ``\\x`` to ``cwd``'s drive),
    normalised, and when it leaves fewer than ``reserve`` characters below MAX_PATH, in the
    extended form (``\\?\C:\...``, ``\\?\UNC\server\share\...``) that has no such limit.
    An extended or device path (``\\?\``, ``\\.\``) is left as written: it is not normalised."""
    import ntpath

    if path.startswith(("\\\\?\\", "\\\\.\\", "//?/", "//./")):
        return path
    text = path.replace("/", "\\")
    drive, rest = ntpath.splitdrive(text)
    cwd_drive = ntpath.splitdrive(cwd)[0]
    if drive and len(drive) == 2 and not rest.startswith("\\"):  # D:x
        if drive.upper() == cwd_drive.upper():
            base = cwd
        else:
            base = (environ or {}).get("=" + drive.upper()) or drive + "\\"
        text = ntpath.join(base, rest)
    elif not drive and text.startswith("\\"):  # \x: the current drive's root
        text = cwd_drive + text
    elif not drive:
        text = ntpath.join(cwd, text)
    text = ntpath.normpath(text)
    if len(text) + reserve < MAX_PATH:
        return text
    if text.startswith("\\\\"):
        return "\\\\?\\UNC\\" + text[2:]
    return "\\\\?\\" + text


def _windows_link(make, src, dst, unsupported: tuple[int, ...]) -> None:
    """``make(src, dst)`` (os.link or os.symlink), with "this cannot be done here" made typed: the
    Windows errors in ``unsupported`` (CPython maps them to EINVAL), or a refusal (PermissionError)."""
    try:
        make(src, dst)
    except FileExistsError:
        raise
    except OSError as err:
        if _winerror(err) in unsupported or isinstance(err, PermissionError):
            raise _links_unsupported(err) from None
        raise


def _links_unsupported(err: OSError) -> LinksUnsupported:
    out = LinksUnsupported(err.errno, err.strerror, err.filename, None, err.filename2)
    out.winerror = _winerror(err)  # kept for the message and callers (errno is EINVAL for 1 and 50)
    return out


def _winerror(err: BaseException) -> int | None:
    return getattr(err, "winerror", None)


def _retry_sharing(op, *args) -> None:
    """``op(*args)``, retried while another handle keeps the file (a sharing violation), for at most
    :data:`SHARING_RETRY_SECONDS`; then the last error is raised.  Readers hold files briefly (a
    waiting publisher reads the lock file, ``fetch`` copies one file), a debugger or antivirus scan
    a little longer; one held for good ends the wait with the OS's error, never a hang."""
    import time

    deadline = time.monotonic() + SHARING_RETRY_SECONDS
    delay = 0.005
    while True:
        try:
            op(*args)
            return
        except PermissionError as err:
            if _winerror(err) not in _SHARING_ERRORS or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


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


def real_paths(paths) -> list[str]:
    """``str(Path(p).resolve())`` of each of ``paths`` (absolute, links resolved), in order: on POSIX
    each directory they are in is resolved once (a publish records the real path of every file)."""
    return _impl.real_paths(paths)


def fsync_dir(directory: "str | os.PathLike[str]") -> None:
    """Make a rename in ``directory`` durable (nothing to do where the OS journals it, or cannot)."""
    _impl.fsync_dir(directory)


def pid_alive(pid: int) -> bool:
    """Does a process with this pid exist on this host (and is it not a zombie)?"""
    return _impl.pid_alive(pid)


def replace(src: "str | os.PathLike[str]", dst: "str | os.PathLike[str]") -> None:
    """``os.replace``; on Windows retried (boundedly) while another process has either file open."""
    _impl.replace(src, dst)


def unlink(path: "str | os.PathLike[str]", *, missing_ok: bool = False) -> None:
    """``os.unlink``; on Windows retried (boundedly) while another process has the file open."""
    try:
        _impl.unlink(path)
    except FileNotFoundError:
        if not missing_ok:
            raise


def long_path(path: "str | os.PathLike[str]") -> str:
    r"""The name to open a store or cache root by: on Windows absolute, and in the ``\\?\`` form
    when the files below it could pass MAX_PATH (:func:`windows_long_path`); elsewhere as given."""
    return _impl.long_path(os.fspath(path))


def may_be_program(st: os.stat_result) -> bool:
    """May a file with this stat be an extension-less ELF or Mach-O program (its x bits on POSIX;
    always on Windows, whose x bits only echo the extension)?  Its content decides the rest."""
    return _impl.may_be_program(st)


def console_colors(fd: int) -> bool:
    """Does the terminal on ``fd`` interpret ANSI colour sequences?  (On Windows: a console with
    virtual terminal processing, switched on here where the console allows it.)"""
    return _impl.console_colors(fd)


def link(src: "str | os.PathLike[str]", dst: "str | os.PathLike[str]") -> None:
    """A hard link ``dst`` to ``src``; FileExistsError when ``dst`` exists, :class:`LinksUnsupported`
    where the file system has none (FAT, SMB shares: Windows errors 1 and 50)."""
    _impl.link(src, dst)


def symlink(target: str, path: "str | os.PathLike[str]") -> None:
    """A symbolic link ``path`` -> ``target``; :class:`LinksUnsupported` where this account may not
    make one (Windows without Developer Mode: error 1314) or the file system has none."""
    _impl.symlink(target, path)


def dir_lock(directory: "str | os.PathLike[str]", name: str):
    """``with dir_lock(d, name):`` -- exclusive among processes on this host that lock ``d``.

    ``name``: a file in ``d`` the Windows implementation locks (it cannot lock a
    directory); callers pick one their listings skip.
    """
    return _impl.dir_lock(directory, name)
