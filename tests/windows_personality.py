"""A Windows personality for the test suite: Linux's CPython made to look like Windows' (issue 21).

symtool's users run it on Windows, where CPython lacks or changes calls that
POSIX code takes for granted.  :func:`windows_personality` takes them away
from ``os`` the way Windows' CPython does, and switches
:mod:`symtool.platform` to its Windows implementation, so a command run
in-process under it exercises the Windows code paths here:

* ``os.pread`` is gone (Windows has it from 3.14 only);
* ``os.set_blocking`` works on pipes only and raises OSError for anything
  else (3.12 and later), or is gone (3.10, 3.11) -- ``semantics``;
* ``O_NOFOLLOW``, ``O_NONBLOCK`` are gone, and so are ``copy_file_range``,
  ``sendfile`` and ``posix_fadvise``;
* ``import fcntl`` fails, and the platform layer's ``msvcrt.locking`` is there (on flock);
* ``os.open`` of a directory raises PermissionError (EACCES), as on Windows;
* a file that is open (in this process, or in any process registered in the
  directory named by ``$SYMTOOL_TEST_OPEN_FILES``) cannot be replaced,
  renamed or unlinked: PermissionError with ``winerror`` 32, the sharing
  violation Windows gives when a handle lacks FILE_SHARE_DELETE (stricter
  than Windows, where symtool's own readers share delete: every open file
  blocks here, so the retries are exercised);
* with ``links=False``: ``os.symlink`` fails with WinError 1314 (no
  Developer Mode) and ``os.link`` with WinError 50 (an SMB share).

What it cannot take away: modules that imported fcntl before the switch keep
it (none of symtool's may: tests/test_architecture.py), and the Windows-only
calls are not there to run: ``msvcrt.locking`` is emulated on flock, process
liveness is the POSIX answer, console modes and ``CreateFileW`` are not used.
"""

from __future__ import annotations

import errno
try:
    import fcntl as _real_fcntl  # taken before any personality hides it (msvcrt's emulation needs it)
except ImportError:  # Windows itself: no personality needed, and none can be made
    _real_fcntl = None
import os
import stat
import sys

_real_set_blocking = os.set_blocking  # likewise: personalities may be applied one inside another

SEMANTICS = ("3.12", "3.11")  # set_blocking: pipes only (3.12+), or absent (3.10, 3.11)

_GONE = ("pread", "O_NOFOLLOW", "O_NONBLOCK", "copy_file_range", "sendfile", "posix_fadvise")


def _pipes_only(set_blocking):
    def windows_set_blocking(fd: int, blocking: bool) -> None:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            # Windows' 3.12+: SetNamedPipeHandleState, which fails on anything but a pipe.
            raise OSError(errno.EINVAL, "Invalid argument (set_blocking works on pipes only)")
        set_blocking(fd, blocking)

    return windows_set_blocking


def _no_directories(real_open):
    def windows_open(path, flags, mode=0o777, *, dir_fd=None):
        fd = real_open(path, flags, mode, dir_fd=dir_fd)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return fd

    return windows_open


OPEN_FILES_ENV = "SYMTOOL_TEST_OPEN_FILES"


def _open_files(pids) -> set[tuple[int, int]]:
    """(st_dev, st_ino) of every file open in ``pids`` (through /proc: it sees ``open()``, ``os.open``
    and mmap alike, whoever made them)."""
    out = set()
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                st = os.stat(f"{fd_dir}/{name}")
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                out.add((st.st_dev, st.st_ino))
    return out


def _processes_to_watch() -> list[str]:
    pids = ["self"]
    registry = os.environ.get(OPEN_FILES_ENV)
    if registry:
        try:
            pids += [p for p in os.listdir(registry) if p.isdigit() and int(p) != os.getpid()]
        except OSError:
            pass
    return pids


def register_open_files(registry) -> None:
    """Files this process holds open block other personality processes' renames (``$SYMTOOL_TEST_OPEN_FILES``)."""
    os.makedirs(registry, exist_ok=True)
    open(os.path.join(registry, str(os.getpid())), "w").close()


def sharing_violation(path) -> PermissionError:
    err = PermissionError(errno.EACCES, "The process cannot access the file because it is being used by "
                          "another process", os.fspath(path))
    err.winerror = 32  # ERROR_SHARING_VIOLATION
    return err


def _windows_error(cls, code: int, winerror: int, text: str, path) -> OSError:
    err = cls(code, text, os.fspath(path))
    err.winerror = winerror
    return err


def _refuse_open(real, paths_of):
    def windows_call(*args, **kwargs):
        watched = None
        for path, dir_fd in paths_of(args, kwargs):
            try:
                st = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
            except (OSError, TypeError, ValueError):
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if watched is None:
                watched = _open_files(_processes_to_watch())
            if (st.st_dev, st.st_ino) in watched:
                raise sharing_violation(path)
        return real(*args, **kwargs)

    return windows_call


def _two_paths(args, kwargs):
    return [(args[0], kwargs.get("src_dir_fd")), (args[1], kwargs.get("dst_dir_fd"))]


def _one_path(args, kwargs):
    return [(args[0], kwargs.get("dir_fd"))]


def _no_links(monkeypatch) -> None:
    def symlink(src, dst, target_is_directory=False, *, dir_fd=None):
        raise _windows_error(OSError, errno.EPERM, 1314, "A required privilege is not held by the client", dst)

    def link(src, dst, *, src_dir_fd=None, dst_dir_fd=None, follow_symlinks=True):
        # CPython maps ERROR_NOT_SUPPORTED to EINVAL: not a PermissionError.
        raise _windows_error(OSError, errno.EINVAL, 50, "The request is not supported", dst)

    monkeypatch.setattr(os, "symlink", symlink)
    monkeypatch.setattr(os, "link", link)


def _msvcrt_module():
    """``msvcrt.locking`` as Windows has it (a lock on bytes of an open file, per handle), built on
    flock, which is per open file as well: the Windows store lock's code runs unchanged."""
    import types

    fcntl = _real_fcntl

    module = types.ModuleType("msvcrt")
    module.LK_UNLCK, module.LK_LOCK, module.LK_NBLCK, module.LK_RLCK, module.LK_NBRLCK = 0, 1, 2, 3, 4

    def locking(fd: int, mode: int, nbytes: int) -> None:
        if mode == module.LK_UNLCK:
            fcntl.flock(fd, fcntl.LOCK_UN)
        elif mode in (module.LK_NBLCK, module.LK_NBRLCK):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise PermissionError(errno.EACCES, "Permission denied") from None
        else:
            fcntl.flock(fd, fcntl.LOCK_EX)

    module.locking = locking
    return module


def windows_personality(monkeypatch, semantics: str = "3.12", *, links: bool = True) -> None:
    """Make this process look like Windows' CPython of ``semantics`` until ``monkeypatch`` is undone.

    ``links=False``: no symlink privilege and no hard links (an SMB share, no Developer Mode)."""
    assert semantics in SEMANTICS, semantics
    for name in _GONE:
        monkeypatch.delattr(os, name, raising=False)
    if semantics == "3.11":
        monkeypatch.delattr(os, "set_blocking", raising=False)
    else:
        monkeypatch.setattr(os, "set_blocking", _pipes_only(_real_set_blocking), raising=False)
    monkeypatch.setattr(os, "open", _no_directories(os.open))
    import shutil

    # Decided when shutil was imported, from calls Windows lacks: its Windows choices instead.
    monkeypatch.setattr(shutil, "_USE_CP_SENDFILE", False)
    monkeypatch.setattr(shutil, "_use_fd_functions", False)  # rmtree by names, no directory descriptors
    for name in ("replace", "rename"):
        monkeypatch.setattr(os, name, _refuse_open(getattr(os, name), _two_paths))
    for name in ("unlink", "remove"):
        monkeypatch.setattr(os, name, _refuse_open(getattr(os, name), _one_path))
    if not links:
        _no_links(monkeypatch)
    monkeypatch.setitem(sys.modules, "fcntl", None)  # None in sys.modules: `import fcntl` raises ImportError
    try:
        from symtool import platform
    except ImportError:  # code from before the platform layer: only the os changes apply
        return
    monkeypatch.setattr(platform, "_impl", platform._Windows)
    # kernel32's OpenProcess is not here: liveness as the POSIX code finds it (the same answer).
    monkeypatch.setattr(platform._Windows, "pid_alive", staticmethod(platform._Posix.pid_alive))
    # Not in sys.modules: the standard library takes an importable msvcrt for "this is Windows".
    fake_msvcrt = _msvcrt_module()
    monkeypatch.setattr(platform._Windows, "msvcrt", staticmethod(lambda: fake_msvcrt), raising=False)


class _Patcher:
    """The part of pytest's MonkeyPatch used here, never undone: for a whole child process (it
    need not import pytest, which would slow every ``python -m symtool`` a test starts)."""

    def setattr(self, obj, name, value, raising=True):
        setattr(obj, name, value)

    def delattr(self, obj, name, raising=True):
        if hasattr(obj, name) or raising:
            delattr(obj, name)

    def setitem(self, mapping, key, value):
        mapping[key] = value


def activate(semantics: str, *, links: bool = True) -> None:
    """The personality for the rest of this process (child processes: tests/personality_site)."""
    windows_personality(_Patcher(), semantics, links=links)


if "pytest" in sys.modules:  # imported by a test module: the fixture too
    import pytest

    @pytest.fixture(params=SEMANTICS, ids=lambda s: f"windows-py{s}")
    def windows(request, monkeypatch):
        """Each test using it runs twice, under 3.12's and 3.11's semantics; the value is the version."""
        windows_personality(monkeypatch, request.param)
        return request.param
