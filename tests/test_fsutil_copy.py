"""fsutil.atomic_copy / copy_file_data: in-kernel copy with fallbacks, progress per chunk,
fsync before rename, nothing under the final name on failure."""

from __future__ import annotations

import errno
import os

import pytest

from symtool import fsutil
from symtool.fsutil import TMP_PREFIX, atomic_copy


def _src(tmp_path, size: int):
    data = os.urandom(size)
    p = tmp_path / "src.bin"
    p.write_bytes(data)
    return p, data


def _leftovers(d):
    return [p.name for p in d.iterdir() if p.name.startswith(TMP_PREFIX)]


@pytest.mark.parametrize("size", [0, 1, 4096, 3 * 65536 + 17])
def test_copy_bytes_and_progress(tmp_path, size):
    src, data = _src(tmp_path, size)
    seen: list[int] = []
    n = atomic_copy(src, tmp_path / "dst.bin", chunk=65536, progress=seen.append)
    assert n == size
    assert (tmp_path / "dst.bin").read_bytes() == data
    assert sum(seen) == size
    assert all(0 < c <= 65536 for c in seen)
    assert _leftovers(tmp_path) == []


def _failing_after(real, calls_ok: int, err: int):
    state = {"n": 0}

    def fn(*args):
        state["n"] += 1
        if state["n"] > calls_ok:
            raise OSError(err, os.strerror(err))
        return real(*args)

    return fn


@pytest.mark.skipif(not hasattr(os, "copy_file_range"), reason="optional: no copy_file_range on this OS")
def test_falls_back_mid_copy_to_sendfile_then_readwrite(tmp_path, monkeypatch):
    src, data = _src(tmp_path, 10 * 65536 + 5)
    # copy_file_range works for two chunks then "cannot" (as across filesystems on old kernels),
    # sendfile for two more, then read/write finishes: the result must still be exact.
    monkeypatch.setattr(os, "copy_file_range", _failing_after(os.copy_file_range, 2, errno.EXDEV))
    if hasattr(os, "sendfile"):
        monkeypatch.setattr(os, "sendfile", _failing_after(os.sendfile, 2, errno.EINVAL))
    seen: list[int] = []
    assert atomic_copy(src, tmp_path / "dst.bin", chunk=65536, progress=seen.append) == len(data)
    assert (tmp_path / "dst.bin").read_bytes() == data
    assert sum(seen) == len(data)


def test_readwrite_error_is_raised_and_nothing_appears(tmp_path, monkeypatch):
    src, _ = _src(tmp_path, 5 * 65536)
    for name in ("copy_file_range", "sendfile"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _failing_after(getattr(os, name), 0, errno.EOPNOTSUPP))
    monkeypatch.setattr(os, "write", _failing_after(os.write, 2, errno.ENOSPC))
    with pytest.raises(OSError) as info:
        atomic_copy(src, tmp_path / "dst.bin", chunk=65536)
    assert info.value.errno == errno.ENOSPC
    assert not (tmp_path / "dst.bin").exists()
    assert _leftovers(tmp_path) == []


def test_interrupted_copy_leaves_old_file_untouched(tmp_path):
    src, _ = _src(tmp_path, 4 * 65536)
    dst = tmp_path / "dst.bin"
    dst.write_bytes(b"old")

    def boom(n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_copy(src, dst, chunk=65536, progress=boom)
    assert dst.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_data_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    src, data = _src(tmp_path, 3 * 65536)
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        # Record only fsyncs of regular files (the temp file), not of the directory.
        import stat

        if stat.S_ISREG(os.fstat(fd).st_mode):
            events.append(f"fsync:{os.fstat(fd).st_size}")
        return real_fsync(fd)

    def replace(a, b):
        events.append("rename")
        return real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_copy(src, tmp_path / "dst.bin", chunk=65536)
    assert events == [f"fsync:{len(data)}", "rename"]


def test_atomic_fd_copies_by_descriptor_and_leaves_nothing_on_failure(tmp_path):
    # The descriptor writer publish uses: the bytes whole under the final name (cp's mode, the
    # umask given), or -- when the body fails -- the old file untouched and no temp file.
    src, data = _src(tmp_path, 2 * 65536 + 5)
    os.chmod(src, 0o666)
    dst = tmp_path / "dst.bin"
    fd_in = os.open(src, os.O_RDONLY)
    try:
        with fsutil.atomic_fd(dst, mode_like=src, umask=0o027) as out:
            assert fsutil.copy_fd_data(fd_in, out, chunk=65536, size=len(data)) == len(data)
    finally:
        os.close(fd_in)
    assert dst.read_bytes() == data
    assert os.stat(dst).st_mode & 0o777 == 0o640
    with pytest.raises(RuntimeError):
        with fsutil.atomic_fd(dst) as out:
            fsutil.write_all(out, b"half")
            raise RuntimeError("interrupted")
    assert dst.read_bytes() == data
    assert _leftovers(tmp_path) == []


def test_replace_false_refuses_existing(tmp_path):
    src, _ = _src(tmp_path, 1000)
    dst = tmp_path / "dst.bin"
    dst.write_bytes(b"winner")
    with pytest.raises(FileExistsError):
        atomic_copy(src, dst, replace=False)
    assert dst.read_bytes() == b"winner"
    assert _leftovers(tmp_path) == []


def test_writeback_starter_is_advisory(tmp_path):
    start = fsutil._writeback_starter()
    if start is None:
        pytest.skip("optional: no sync_file_range on this OS")
    p = tmp_path / "f"
    with open(p, "wb") as f:
        f.write(b"x" * 8192)
        f.flush()
        start(f.fileno(), 0, 8192)  # must not raise, must not change the data
    assert p.read_bytes() == b"x" * 8192


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="optional: no procfs")
def test_pseudo_file_without_size_is_copied(tmp_path):
    # st_size is 0; an in-kernel copy may report "nothing" for it: the fallback must copy the text.
    n = atomic_copy("/proc/self/status", tmp_path / "status")
    data = (tmp_path / "status").read_bytes()
    assert n == len(data) > 0
    assert data.startswith(b"Name:")


def test_in_kernel_copy_reporting_nothing_is_double_checked(tmp_path, monkeypatch):
    # Old kernels answer 0 ("end of file") for copy_file_range on some files: not to be trusted at offset 0.
    src, data = _src(tmp_path, 3 * 65536)
    for name in ("copy_file_range", "sendfile"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, lambda *a: 0)
    assert atomic_copy(src, tmp_path / "dst.bin", chunk=65536) == len(data)
    assert (tmp_path / "dst.bin").read_bytes() == data
