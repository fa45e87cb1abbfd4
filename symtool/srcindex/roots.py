"""Which local files a PDB or a DWARF line table may make ``--sources`` copy into a store.

A line table names whatever path the compiler was told (``#line 1
"/proc/self/environ"``, a ``/home/u/.ssh/id_rsa``), and a store is often
readable by a whole company or the public: archiving every named file that
exists would publish the publisher's secrets.  So a file is archived only when,
with every symlink resolved, it lies inside an allowed root:

* the cargo workspace root (where the build ran),
* cargo's registry sources and git checkouts (``$CARGO_HOME/registry/src``,
  ``$CARGO_HOME/git/checkouts``),
* the toolchains' ``rust-src`` (``<sysroot>/lib/rustlib/src/rust``),
* directories given with ``--sources-root``;

and never under ``/proc``, ``/sys`` or ``/dev`` (even inside a root), never a
file that is not a regular file, never one over the SOURCE_FILE_SIZE budget.
The file is opened by its resolved path without following a symlink, and the
opened descriptor's own path is checked again, so a link swapped in between
cannot redirect the read.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

# Kernel views of the running system: "files" whose content is this process's
# environment, memory or devices.  Never source, even inside an allowed root.
NEVER = ("/proc", "/sys", "/dev")


@dataclass
class Local:
    """What reading a named source file gave: its bytes, or why not."""

    data: bytes | None = None
    refused: str | None = None  # archiving refused (it exists): the reason
    real: str | None = None  # the resolved path read


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _never(real: str) -> str | None:
    for top in NEVER:
        if _inside(real, top):
            return f"under {top}: never archived"
    return None


@dataclass
class SourceRoots:
    """The allow-list: (resolved directory, what it is)."""

    roots: list[tuple[str, str]] = field(default_factory=list)
    lazy_rust_src: bool = False  # ask rustc for its sysroot the first time a path is outside the others

    @classmethod
    def standard(cls, workspace: Path | None, cargo_home: Path | None, extra: list[Path] = (),
                 environ: Mapping[str, str] | None = None, rust_src: bool = True) -> "SourceRoots":
        env = os.environ if environ is None else environ
        out = cls()
        if workspace is not None:
            out.add(workspace, "the workspace")
        if cargo_home is not None:
            out.add(cargo_home / "registry" / "src", "cargo's registry")
            out.add(cargo_home / "git" / "checkouts", "cargo's git checkouts")
        for d in extra:
            out.add(Path(d), "--sources-root")
        if rust_src:
            rustup = Path(env.get("RUSTUP_HOME") or os.path.join(os.path.expanduser("~"), ".rustup"))
            for src in sorted(glob.glob(str(rustup / "toolchains" / "*" / "lib" / "rustlib" / "src" / "rust"))):
                out.add(Path(src), "a toolchain's rust-src")
            out.lazy_rust_src = True
        return out

    def add(self, directory: Path, what: str) -> None:
        real = os.path.realpath(directory)
        if os.path.isdir(real) and _never(real) is None and real != "/":
            self.roots.append((real, what))

    def _add_sysroot(self) -> None:
        import subprocess

        self.lazy_rust_src = False
        try:
            proc = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True, timeout=30,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return
        if proc.returncode == 0 and proc.stdout.strip():
            self.add(Path(proc.stdout.strip()) / "lib" / "rustlib" / "src" / "rust", "the toolchain's rust-src")

    def root_of(self, real: str) -> str | None:
        for root, _what in self.roots:
            if _inside(real, root):
                return root
        if self.lazy_rust_src:
            self._add_sysroot()
            return self.root_of(real)
        return None

    def describe(self) -> str:
        return "the workspace, cargo's registry and git checkouts, the toolchain's rust-src or a --sources-root"

    def read(self, path: str, max_size: int | None = None) -> Local:
        """The content of ``path`` when it may be archived, else why not (``refused``).

        A path that does not exist here (build-machine paths, ``/rustc/<commit>/``)
        gives ``Local()``: nothing read, nothing refused.
        """
        from symtool.budgets import limit

        cap = limit("SOURCE_FILE_SIZE") if max_size is None else max_size
        if not path or "\0" in path or not os.path.isabs(path):
            return Local()
        try:
            real = os.path.realpath(path, strict=True)
        except (OSError, ValueError):
            return Local()
        why = _never(real) or _never(os.path.abspath(path))
        if why:
            return Local(refused=why, real=real)
        root = self.root_of(real)
        if root is None:
            return Local(refused=f"outside {self.describe()} (resolved: {real})", real=real)
        from symtool import platform
        from symtool.fsutil import kind_of

        try:
            fd = platform.open_regular_fd(real, follow=False)  # never blocks on a FIFO, never through a link
        except platform.NotRegular as err:
            return Local(refused=f"{kind_of(err.mode)}, not a regular file", real=real)
        except OSError as err:
            return Local(refused=f"cannot be opened ({err.strerror})", real=real)
        try:
            st = os.fstat(fd)
            # The descriptor's own path: a component swapped for a symlink after realpath
            # would show here (Linux; elsewhere the no-follow open is the check).
            try:
                opened = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                opened = real
            if opened.startswith("/") and not _inside(opened, root):
                return Local(refused=f"changed while being read (now {opened})", real=real)
            if st.st_size > cap:
                return Local(refused=f"{st.st_size} bytes, over {cap} (SYMTOOL_MAX_SOURCE_FILE_SIZE)", real=real)
            with os.fdopen(fd, "rb") as f:
                fd = -1
                data = f.read(cap + 1)
            if len(data) > cap:
                return Local(refused=f"grew past {cap} bytes while being read", real=real)
            return Local(data=data, real=real)
        finally:
            if fd >= 0:
                os.close(fd)


def read_to_check(path: str, max_size: int | None = None) -> bytes | None:
    """The content of a local file only to compare it with a checksum (never stored).

    Still never a kernel view, a FIFO or device (a read could block or never end),
    or a file over the SOURCE_FILE_SIZE budget.
    """
    from symtool.budgets import limit
    from symtool.errors import NotRegularFileError
    from symtool.fsutil import open_regular

    cap = limit("SOURCE_FILE_SIZE") if max_size is None else max_size
    if not path or "\0" in path:
        return None
    try:
        real = os.path.realpath(path)
        if _never(real) or _never(os.path.abspath(path)):
            return None
        with open_regular(real) as f:
            if os.fstat(f.fileno()).st_size > cap:
                return None
            data = f.read(cap + 1)
    except (OSError, ValueError, NotRegularFileError):
        return None
    return data if len(data) <= cap else None
