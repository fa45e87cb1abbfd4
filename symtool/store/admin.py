"""The records symstore.exe keeps in a store, read and written byte for byte.

Formats (from stores written by Microsoft's symstore.exe, see docs/store.md):

* ``000Admin/lastid.txt``: the last transaction id, 10 digits, no newline.
* ``000Admin/<id>``: one line per file of an add transaction,
  ``"bigage.pdb\\C9A61DDDD7E44353A668E39AC614A7EAa","C:\\src\\bigage.pdb"`` + CRLF.
  A deleted transaction's file is renamed ``<id>.deleted``.
* ``000Admin/server.txt``: the add line of every live transaction, each + CRLF:
  ``0000000001,add,file,09/06/2016,10:34:19,"product","version","comment",``.
* ``000Admin/history.txt``: every add and ``del`` line (``0000000105,del,0000000096``).
  symstore.exe writes the first line with no newline and every later one as
  CRLF-terminated, after making sure the previous line is terminated; we do the
  same (it is what the fixtures show byte for byte).
* ``<name>/<INDEX>/refs.ptr``: a line per transaction that stored the file,
  ``0000000001,file,"C:\\src\\bigage.pdb",pub,,N,,`` -- CRLF *between* lines,
  none after the last.

Readers accept LF or CRLF and a missing final newline (the PyPI ``symstore``
package writes LF).

Bytes, not text: symstore.exe writes these files in the ANSI code page
(cp1252 ``Caf\xe9``), symtool writes UTF-8.  Lines are held as latin-1
strings (one character per byte, :func:`to_record` for what we add), so a
line symtool did not write is written back byte for byte; :func:`from_record`
turns a field into text for display (UTF-8 when it is, else cp1252).

Hostile stores: every admin file and refs.ptr is opened without following a
final symlink and without blocking on a FIFO (:mod:`symtool.platform`), and
must be a regular file (a symlink would make publish append
to, or verify print, a file outside the store; a FIFO would hang the lock
holder); ``000Admin`` itself must be a real directory.  Files are read as a
stream of lines with a cap on each line (a 200 MB server.txt is not held
twice in memory), lastid.txt and refs.ptr have size caps.  Everything read from these files is data someone else may
control: names go through :func:`symtool.ids.check_file_name` and indexes
through :func:`symtool.ids.parse_index` before they become paths.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from symtool import platform
from symtool.errors import FormatError, NotRegularFileError, StoreError, UnsafeNameError
from symtool.fsutil import (TMP_PREFIX, atomic_write_bytes, fsync_dir,  # noqa: F401 (TMP_PREFIX re-exported)
                            open_regular, read_regular, require_real_dir)
from symtool.ids import check_file_name, parse_index
from symtool.store.layout import ADMIN_DIR, REFS

LASTID = "lastid.txt"
SERVER = "server.txt"
HISTORY = "history.txt"
DELETED_SUFFIX = ".deleted"
CRLF = "\r\n"

ID_RE = re.compile(r"^[0-9]{10}$")
MAX_LINE = 1 << 20  # longer lines are not records (symstore's longest are a few hundred bytes)
MAX_REFS_SIZE = 16 << 20  # refs.ptr: a line per transaction that stored one file
MAX_LASTID_SIZE = 64  # ten digits, maybe a newline
_ADD_RE = re.compile(
    r'^(\d{10}),add,(file|ptr),(\d\d/\d\d/\d\d\d\d),(\d\d:\d\d:\d\d),"([^"]*)","([^"]*)","([^"]*)",'
)
_DEL_RE = re.compile(r"^(\d{10}),del,(\d{10})\s*$")
# The closing quote is optional: the PyPI symstore package (0.3.x) omits it.
_ENTRY_RE = re.compile(r'^"([^"\\]+)\\([^"\\]+)","([^"]*)"?\s*$')
_REF_RE = re.compile(r'^(\d{10}),(file|ptr),"([^"]*)",(pri|pub|bin|[a-z]*),([^,]*),([YN]),([^,]*),(.*)$')


def to_record(text: str) -> str:
    """Text symtool writes -> the form lines are held in (its UTF-8 bytes, one latin-1 char each)."""
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def from_record(field: str) -> str:
    """A field as held (latin-1 chars = bytes) -> text: UTF-8 when it is, else the ANSI code page (cp1252)."""
    data = field.encode("latin-1")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def record_bytes(line: str) -> bytes:
    return line.encode("latin-1")


def format_id(n: int) -> str:
    if n < 0 or n > 9_999_999_999:
        raise StoreError(f"transaction id {n} out of range")
    return f"{n:010d}"


def normalize_id(text: str) -> str:
    """A transaction id from a user: digits only, zero-padded to 10."""
    text = text.strip()
    # ASCII digits only: str.isdigit() accepts '²' (int() then fails) and '١' (int() reads 1).
    if not text or len(text) > 10 or not all("0" <= c <= "9" for c in text) or int(text) == 0:
        raise FormatError(f"not a transaction id: {text[:20]!r} (want up to 10 digits, e.g. 0000000042)")
    return format_id(int(text))


def clean_field(value: str | None, what: str) -> str:
    """product/version/comment go between double quotes: no quotes, no line breaks."""
    value = value or ""
    if any(c in value for c in '"\r\n\0'):
        raise FormatError(f"{what} must not contain double quotes, line breaks or NUL: {value!r}")
    return value


def clean_source(path: str) -> str:
    """A source path as recorded (informational): keep it on one quoted line."""
    return "".join("'" if c == '"' else ("?" if ord(c) < 32 else c) for c in path)


# -- lines ------------------------------------------------------------------


@dataclass(frozen=True)
class AdminLine:
    """One line of server.txt or history.txt."""

    id: str
    op: str  # "add" or "del"
    ref: str = "file"  # "file" or "ptr" (add only)
    date: str = ""
    time: str = ""
    product: str = ""
    version: str = ""
    comment: str = ""
    deleted_id: str = ""  # del only
    raw: str = ""


def parse_admin_line(line: str) -> AdminLine | None:
    """Parse a server.txt/history.txt line; None if it is not a complete record."""
    m = _ADD_RE.match(line)
    if m:
        return AdminLine(m[1], "add", m[2], m[3], m[4], m[5], m[6], m[7], raw=line)
    m = _DEL_RE.match(line)
    if m:
        return AdminLine(m[1], "del", deleted_id=m[2], raw=line)
    return None


def format_add_line(txn_id: str, ref: str, when: float, product: str, version: str, comment: str) -> str:
    t = time.localtime(when)
    return (f"{txn_id},add,{ref},{time.strftime('%m/%d/%Y', t)},{time.strftime('%H:%M:%S', t)},"
            f'"{to_record(product)}","{to_record(version)}","{to_record(comment)}",')


def format_del_line(del_id: str, deleted_id: str) -> str:
    return f"{del_id},del,{deleted_id}"


def server_bytes(lines: list[str]) -> bytes:
    """server.txt: every line CRLF-terminated."""
    return record_bytes("".join(ln + CRLF for ln in lines))


def history_bytes(lines: list[str]) -> bytes:
    """history.txt as symstore.exe leaves it: one line unterminated, more lines each CRLF-terminated."""
    if len(lines) == 1:
        return record_bytes(lines[0])
    return record_bytes("".join(ln + CRLF for ln in lines))


def split_lines(data: bytes) -> list[str]:
    """Lines of an admin file (CRLF or LF) as latin-1 strings, empty ones dropped."""
    text = data.decode("latin-1")
    return [ln.rstrip("\r") for ln in text.split("\n") if ln.strip("\r\n \t")]


def iter_lines(path: Path, max_size: int | None = None) -> Iterator[str]:
    """The lines of an admin file, streamed (see :func:`split_lines`); nothing when it is absent.

    A symlink, FIFO, device or directory is refused (NotRegularFileError); a
    line over MAX_LINE bytes is skipped (it is no record); more than
    ``max_size`` bytes in all is a FormatError.
    """
    try:
        f = open_regular(path, follow=False, what=path.name)
    except FileNotFoundError:
        return
    with f:
        yield from iter_stream_lines(f, max_size, path.name, path)


def iter_stream_lines(f: BinaryIO, max_size: int | None = None, what: str = "admin file",
                      path: "str | os.PathLike[str] | None" = None) -> Iterator[str]:
    """:func:`iter_lines` on an open binary stream (a local file, or an object store's copy of one)."""
    total = 0
    while True:
        line = f.readline(MAX_LINE + 1)
        if not line:
            return
        total += len(line)
        if max_size is not None and total > max_size:
            raise FormatError(f"{what} is implausibly large (over {max_size} bytes)", path)
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # skip the rest of an overlong line
                line = f.readline(MAX_LINE)
                total += len(line)
            continue
        text = line.decode("latin-1").rstrip("\n").rstrip("\r")
        if text.strip("\r\n \t"):
            yield text


def read_lines(path: Path, max_size: int | None = None) -> list[str]:
    return list(iter_lines(path, max_size))


# -- transaction files --------------------------------------------------------


@dataclass(frozen=True)
class TxnEntry:
    """One line of a transaction file: a stored key and where it came from."""

    name: str  # text (a path component)
    index: str
    source: str  # as recorded (latin-1 chars = bytes): written back unchanged; from_record() to show it

    @property
    def key(self) -> tuple[str, str]:
        return (self.name.lower(), self.index.upper())


def format_entry(name: str, index: str, source: str) -> str:
    """A transaction-file line; ``source`` as recorded (:func:`to_record` for a new one)."""
    return f'"{to_record(name)}\\{index}","{clean_source(source)}"'


def parse_entry(line: str) -> TxnEntry:
    """One transaction-file line; FormatError / UnsafeNameError when malformed or hostile."""
    m = _ENTRY_RE.match(line)
    if not m:
        raise FormatError(f"malformed transaction line {line[:120]!r}")
    name, index, source = from_record(m[1]), m[2], m[3]
    check_file_name(name)
    parse_index(index)
    return TxnEntry(name, index, source)


def read_txn_file(path: Path) -> tuple[list[TxnEntry], list[str]]:
    """Entries of a transaction file and the problems of lines that were skipped."""
    entries: list[TxnEntry] = []
    problems: list[str] = []
    for line in read_lines(path):
        try:
            entries.append(parse_entry(line))
        except (FormatError, UnsafeNameError) as err:
            problems.append(err.message)
    return entries, problems


def txn_file_bytes(entries: list[TxnEntry]) -> bytes:
    return record_bytes("".join(format_entry(e.name, e.index, e.source) + CRLF for e in entries))


# -- refs.ptr -----------------------------------------------------------------


@dataclass(frozen=True)
class RefLine:
    """One line of a refs.ptr: a transaction that stored the file, and how."""

    id: str
    ref: str  # file / ptr
    source: str
    kind: str  # pri / pub / bin
    compressed: bool
    raw: str


def parse_ref_line(line: str) -> RefLine | None:
    m = _REF_RE.match(line)
    if not m:
        return None
    return RefLine(m[1], m[2], m[3], m[4], m[6] == "Y", line)


def format_ref_line(txn_id: str, ref: str, source: str, kind: str, compressed: bool) -> str:
    """A refs.ptr line; ``source`` as recorded (:func:`to_record` for a new one)."""
    return f'{txn_id},{ref},"{clean_source(source)}",{kind},,{"Y" if compressed else "N"},,'


def refs_bytes(lines: list[str]) -> bytes:
    return record_bytes(CRLF.join(lines))


def write_refs(index_dir: Path, lines: list[str], prefix: str = TMP_PREFIX) -> None:
    """Replace refs.ptr atomically (removed when no line is left)."""
    path = index_dir / REFS
    if not lines:
        try:
            platform.unlink(path)
        except FileNotFoundError:
            pass
        return
    _atomic_bytes(path, refs_bytes(lines), prefix)


def add_ref(index_dir: Path, line: str, prefix: str = TMP_PREFIX) -> None:
    """Append a refs.ptr line (atomic rewrite: a crash leaves the old or the new file)."""
    lines = read_refs(index_dir)
    lines.append(line)
    write_refs(index_dir, lines, prefix)


def append_ref(index_dir: Path, line: str, prefix: str = TMP_PREFIX, umask: int | None = None) -> None:
    """Add a refs.ptr line, under the store lock, fsynced; the directory's fsync is the caller's.

    An existing refs.ptr is rewritten whole (temp file, fsync, rename): its lines belong to
    committed transactions, and a crash must leave the old or the new file.  A missing one is
    created in place (O_EXCL, one file fewer to create and rename for each new key of a publish):
    every reader of refs.ptr holds the store lock (publish, delete, repair; a read-only verify
    retries while a live writer holds it), so none sees it half-written, and a crash can tear it
    only before its transaction commits -- ``store verify --repair`` then drops the line (it never
    parses: a ref line ends with its last field) with the rest of the uncommitted transaction.
    """
    from symtool.fsutil import atomic_fd, write_all, write_new_file

    try:
        # Created first, read only when it exists: a new key (most of a publish) has none to read.
        write_new_file(index_dir / REFS, refs_bytes([line]))
        return
    except FileExistsError:
        pass  # its lines (none, if empty) and this one, rewritten whole below
    lines = read_refs(index_dir)
    lines.append(line)
    with atomic_fd(index_dir / REFS, prefix=prefix, sync_dir=False, umask=umask) as fd:
        write_all(fd, refs_bytes(lines))


def read_refs(index_dir: Path) -> list[str]:
    """The lines of ``index_dir``'s refs.ptr (a regular file of at most MAX_REFS_SIZE bytes)."""
    return read_lines(index_dir / REFS, MAX_REFS_SIZE)


def _atomic_bytes(path: Path, data: bytes, prefix: str) -> None:
    from symtool.fsutil import atomic_writer

    with atomic_writer(path, "wb", prefix=prefix) as f:
        f.write(data)


# -- 000Admin -----------------------------------------------------------------


class Admin:
    """The 000Admin directory of a local store.  Mutating methods expect the store lock."""

    def __init__(self, store: Path, tmp_prefix: str = TMP_PREFIX):
        self.store = store
        self.dir = store / ADMIN_DIR
        self.tmp_prefix = tmp_prefix
        # A symlinked 000Admin would take every record (and the lock) outside the store.
        require_real_dir(self.dir, ADMIN_DIR)

    def ensure(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        require_real_dir(self.dir, ADMIN_DIR)

    # lastid
    def read_lastid(self) -> int:
        try:
            data = read_regular(self.dir / LASTID, MAX_LASTID_SIZE, what=LASTID)
        except FileNotFoundError:
            return 0
        except NotRegularFileError:
            raise
        except FormatError:  # too large to be ten digits
            data = b"?"
        text = data.decode("latin-1").strip()
        if not text or len(text) > 10 or not all("0" <= c <= "9" for c in text):
            raise StoreError(f"lastid.txt does not hold a transaction id ({text[:20]!r}); run `symtool store verify --repair`",
                             self.dir / LASTID)
        return int(text)

    def write_lastid(self, n: int) -> None:
        _atomic_bytes(self.dir / LASTID, format_id(n).encode("ascii"), self.tmp_prefix)

    def next_id(self) -> str:
        """The next unused id: lastid + 1, skipping ids whose transaction file exists
        (left by a publish that was killed before it wrote lastid.txt)."""
        n = self.read_lastid() + 1
        while (self.dir / format_id(n)).exists() or (self.dir / (format_id(n) + DELETED_SUFFIX)).exists():
            n += 1
        return format_id(n)

    def txn_path(self, txn_id: str) -> Path:
        if not ID_RE.match(txn_id):
            raise FormatError(f"not a transaction id: {txn_id!r}")
        return self.dir / txn_id

    # server.txt / history.txt
    def iter_server(self) -> Iterator[str]:
        """server.txt's lines, streamed (it grows by a line per publish, forever)."""
        return iter_lines(self.dir / SERVER)

    def server_lines(self) -> list[str]:
        return list(self.iter_server())

    def iter_history(self) -> Iterator[str]:
        return iter_lines(self.dir / HISTORY)

    def history_lines(self) -> list[str]:
        return list(self.iter_history())

    def live(self) -> dict[str, AdminLine]:
        """Live add transactions from server.txt, by id (first line wins)."""
        out: dict[str, AdminLine] = {}
        for line in self.iter_server():
            rec = parse_admin_line(line)
            if rec is not None and rec.op == "add" and rec.id not in out:
                out[rec.id] = rec
        return out

    def append_server(self, line: str) -> None:
        """server.txt: each line CRLF-terminated."""
        self._append(self.dir / SERVER, line, terminate=True)

    def append_history(self, line: str) -> None:
        """history.txt: the first line unterminated, later lines CRLF-terminated (symstore.exe)."""
        self._append(self.dir / HISTORY, line, terminate=None)

    def rewrite_server(self, lines: Iterable[str]) -> None:
        """Replace server.txt with ``lines`` (streamed: ``lines`` may read the old file)."""
        from symtool.fsutil import atomic_writer

        with atomic_writer(self.dir / SERVER, "wb", prefix=self.tmp_prefix) as f:
            for ln in lines:
                f.write(record_bytes(ln + CRLF))

    def rewrite_history(self, lines: list[str]) -> None:
        _atomic_bytes(self.dir / HISTORY, history_bytes(lines), self.tmp_prefix)

    def _append(self, path: Path, line: str, terminate: bool | None) -> None:
        """Append one line in a single write (O_APPEND), after the previous line's
        terminator if it lacks one.  Short appends under the lock: a SIGKILL leaves
        the line whole or absent in practice; verify --repair drops a torn one."""
        fd = _open_nofollow(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        try:
            size = os.fstat(fd).st_size
            prefix = b""
            if size:
                os.lseek(fd, size - 1, os.SEEK_SET)
                if os.read(fd, 1) != b"\n":
                    prefix = b"\r\n"
            data = prefix + record_bytes(line)
            if terminate or (terminate is None and size):
                data += b"\r\n"
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def touch_pingme(self) -> None:
        from symtool.store.layout import PINGME

        p = self.store / PINGME
        try:
            fd = _open_nofollow(p, os.O_WRONLY | os.O_CREAT)
        except (OSError, NotRegularFileError):
            return  # a symlink or FIFO (refused), or a read-only share: the marker is a courtesy
        try:
            os.utime(fd if os.utime in os.supports_fd else p)
        except OSError:
            pass
        finally:
            os.close(fd)


def _open_nofollow(path: Path, flags: int) -> int:
    """A descriptor of the regular file ``path`` (new files 0666 less the umask), never through a
    symlink and never blocked by a FIFO; NotRegularFileError for anything but a regular file."""
    from symtool.fsutil import not_regular_error

    try:
        return platform.open_no_follow(path, flags, 0o666)
    except platform.NotRegular as err:
        raise not_regular_error(err, path.name) from None


def init_store(store: Path, two_tier: bool = False) -> bool:
    """Create the skeleton of a store (idempotent); returns True if anything was created."""
    from symtool.store.layout import INDEX2, PINGME

    created = False
    if store.exists() and not store.is_dir():
        raise StoreError("exists and is not a directory", store)
    # Concurrent publishers may create the same new store: whoever loses the race to a mkdir
    # finds the directory made, which is what it wanted.
    if not store.exists():
        store.parent.mkdir(parents=True, exist_ok=True)
        try:
            store.mkdir()
            created = True
        except FileExistsError:
            pass
    admin = store / ADMIN_DIR
    require_real_dir(admin, ADMIN_DIR)
    if not admin.is_dir():
        try:
            admin.mkdir()
            created = True
        except FileExistsError:
            require_real_dir(admin, ADMIN_DIR)
    pingme = store / PINGME
    if not pingme.exists():
        atomic_write_bytes(pingme, b"")
        created = True
    if two_tier and not (store / INDEX2).exists():
        others = [p.name for p in store.iterdir() if p.name not in (ADMIN_DIR, PINGME, INDEX2)]
        if others:
            raise StoreError("is a one-tier store with files in it; cannot make it two-tier in place", store)
        atomic_write_bytes(store / INDEX2, b"")
        created = True
    fsync_dir(store)
    return created
