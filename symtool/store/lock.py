"""The store lock: ``000Admin/symtool.lock``, created exclusively.

Why a lock file: it is the one primitive that works the same on local disks
and on SMB/NFS shares (``O_CREAT|O_EXCL`` is atomic on both), unlike
``flock``/``LockFileEx`` which SMB clients emulate unreliably.

The file holds ``pid host time token``.  A holder refreshes its mtime every
few seconds (heartbeat).  A lock is *stale* when its holder is gone:

* same host: the pid no longer exists (or is a zombie);
* another host: the mtime is older than ``SYMTOOL_LOCK_STALE`` seconds
  (default 120), i.e. the heartbeat stopped.

Breaking a stale lock is itself serialised by a second exclusively created
file (``symtool.lock.break``), and the lock is re-read under it, so two
waiters that both saw the same stale lock cannot both break it (the second
would otherwise remove the first one's fresh lock).  A break file older than
30 s is itself stale (its holder died in a ~millisecond window).
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
import time
from pathlib import Path

from symtool import platform
from symtool.errors import StoreError
from symtool.store.layout import ADMIN_DIR, LOCK_NAME

BREAK_NAME = "symtool.lock.break"
HEARTBEAT = 5.0
BREAK_STALE = 30.0


def host_name() -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in socket.gethostname())[:64] or "host"


def owner_tag() -> str:
    """``<host>-<pid>``: put in temp-file names so cleanup can tell live writers from dead ones."""
    return f"{host_name()}-{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """Does a process with this pid exist (and is it not a zombie)?"""
    return platform.pid_alive(pid)


def stale_after() -> float:
    try:
        return float(os.environ.get("SYMTOOL_LOCK_STALE", "120"))
    except ValueError:
        return 120.0


def parse_owner(text: str) -> tuple[int, str, float, str] | None:
    parts = text.split()
    if len(parts) < 4:
        return None
    try:
        return int(parts[0]), parts[1], float(parts[2]), parts[3]
    except ValueError:
        return None


def owner_is_dead(content: str, mtime: float, now: float | None = None, max_age: float | None = None) -> bool:
    """Is a lock (or temp file) with this owner record abandoned?"""
    now = time.time() if now is None else now
    max_age = stale_after() if max_age is None else max_age
    owner = parse_owner(content)
    if owner is not None and owner[1] == host_name():
        return not pid_alive(owner[0])
    return now - mtime > max_age


def temp_owner_dead(name: str, mtime: float) -> bool:
    """For ``.symtool-tmp-<host>-<pid>-xxxx`` names: is the writer gone?"""
    from symtool.fsutil import TMP_PREFIX

    rest = name[len(TMP_PREFIX):] if name.startswith(TMP_PREFIX) else ""
    host = host_name()
    if rest.startswith(host + "-"):
        pid_text = rest[len(host) + 1:].split("-", 1)[0]
        if pid_text.isdigit():
            return not pid_alive(int(pid_text))
    return time.time() - mtime > stale_after()


def _read(path: Path) -> tuple[str, float] | None:
    """The owner record and mtime of a lock file; None when absent or not a regular file (never blocks)."""
    from symtool.errors import NotRegularFileError
    from symtool.fsutil import open_regular

    try:
        with open_regular(path, follow=False) as f:
            content = f.read(512).decode("utf-8", "replace")
            mtime = os.fstat(f.fileno()).st_mtime
        return content, mtime
    except (OSError, NotRegularFileError):
        return None


def broken_lock(store: Path) -> str | None:
    """What is at the lock's path when it is no lock file (a directory, symlink, FIFO...), else None."""
    import stat

    from symtool.fsutil import kind_of

    try:
        mode = os.lstat(Path(store) / ADMIN_DIR / LOCK_NAME).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else kind_of(mode)


def remove_broken_lock(store: Path) -> str | None:
    """Remove a non-file at the lock's path (``store verify --repair``); returns what it was, or None.

    A directory is removed only when empty (rmdir, never recursively).
    """
    what = broken_lock(store)
    if what is None:
        return None
    path = Path(store) / ADMIN_DIR / LOCK_NAME
    try:
        if what == "a directory":
            os.rmdir(path)
        else:
            platform.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        raise StoreError(f"{LOCK_NAME} is {what} and cannot be removed ({err.strerror}): remove it by hand",
                         path) from None
    return what


def held_by_live_writer(store: Path) -> bool:
    """Is the store lock there and its holder alive (a write may be in progress)?"""
    seen = _read(Path(store) / ADMIN_DIR / LOCK_NAME)
    return seen is not None and not owner_is_dead(*seen)


def _create_exclusive(path: Path, content: str) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, content.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


class StoreLock:
    """``with StoreLock(store):`` -- exclusive access to 000Admin and refs.ptr files."""

    def __init__(self, store: Path, timeout: float | None = None):
        self.store = Path(store)
        self.path = self.store / ADMIN_DIR / LOCK_NAME
        self.break_path = self.store / ADMIN_DIR / BREAK_NAME
        if timeout is None:
            try:
                timeout = float(os.environ.get("SYMTOOL_LOCK_TIMEOUT", "600"))
            except ValueError:
                timeout = 600.0
        self.timeout = timeout
        self.token = os.urandom(8).hex()  # what secrets.token_hex(8) is, without its import
        self.content = ""
        self.broke_stale: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        delay = 0.002
        while True:
            self.content = f"{os.getpid()} {host_name()} {time.time():.3f} {self.token}\n"
            if _create_exclusive(self.path, self.content):
                break
            what = broken_lock(self.store)
            if what is not None:
                # No publisher can ever remove it: waiting for the timeout would only delay the error.
                raise StoreError(f"{LOCK_NAME} is {what}, not a lock file: run `symtool store verify --repair`",
                                 self.path)
            seen = _read(self.path)
            if seen is not None and owner_is_dead(*seen):
                self._break(seen[0])
                continue
            if time.monotonic() > deadline:
                holder = (seen[0].strip() if seen else "?")
                raise StoreError(f"store is locked by another publisher ({holder}); gave up after {self.timeout:.0f} s",
                                 self.path)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.1)
        self._thread = threading.Thread(target=self._heartbeat, name="symtool-lock-heartbeat", daemon=True)
        self._thread.start()

    def _break(self, judged_stale: str) -> None:
        """Remove a lock whose holder is gone, serialised by the break file."""
        if not _create_exclusive(self.break_path, f"{os.getpid()} {host_name()} {time.time():.3f} {self.token}\n"):
            seen = _read(self.break_path)
            if seen is not None and owner_is_dead(*seen, max_age=BREAK_STALE):
                # The breaker died inside its few-ms window; remove its marker if unchanged.
                again = _read(self.break_path)
                if again is not None and again[0] == seen[0]:
                    with contextlib.suppress(FileNotFoundError):
                        platform.unlink(self.break_path)
            time.sleep(0.005)
            return
        try:
            current = _read(self.path)
            if current is not None and current[0] == judged_stale and owner_is_dead(*current):
                with contextlib.suppress(FileNotFoundError):
                    platform.unlink(self.path)
                self.broke_stale.append(judged_stale.strip())
        finally:
            with contextlib.suppress(FileNotFoundError):
                platform.unlink(self.break_path)

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        seen = _read(self.path)
        # Only remove our own lock (never one a breaker replaced after judging us dead).
        if seen is not None and seen[0] == self.content:
            with contextlib.suppress(FileNotFoundError):
                platform.unlink(self.path)

    def __enter__(self) -> "StoreLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
