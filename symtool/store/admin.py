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
package writes LF).  Everything read from these files is data someone else may
control: names go through :func:`symtool.ids.check_file_name` and indexes
through :func:`symtool.ids.parse_index` before they become paths.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from symtool.errors import FormatError, StoreError, UnsafeNameError
from symtool.fsutil import TMP_PREFIX, atomic_write_bytes, fsync_dir  # noqa: F401 (TMP_PREFIX re-exported)
from symtool.ids import check_file_name, parse_index
from symtool.store.layout import ADMIN_DIR, REFS

LASTID = "lastid.txt"
SERVER = "server.txt"
HISTORY = "history.txt"
DELETED_SUFFIX = ".deleted"
CRLF = "\r\n"

ID_RE = re.compile(r"^\d{10}$")
_ADD_RE = re.compile(
    r'^(\d{10}),add,(file|ptr),(\d\d/\d\d/\d\d\d\d),(\d\d:\d\d:\d\d),"([^"]*)","([^"]*)","([^"]*)",'
)
_DEL_RE = re.compile(r"^(\d{10}),del,(\d{10})\s*$")
# The closing quote is optional: the PyPI symstore package (0.3.x) omits it.
_ENTRY_RE = re.compile(r'^"([^"\\]+)\\([^"\\]+)","([^"]*)"?\s*$')
_REF_RE = re.compile(r'^(\d{10}),(file|ptr),"([^"]*)",(pri|pub|bin|[a-z]*),([^,]*),([YN]),([^,]*),(.*)$')


def format_id(n: int) -> str:
    if n < 0 or n > 9_999_999_999:
        raise StoreError(f"transaction id {n} out of range")
    return f"{n:010d}"


def normalize_id(text: str) -> str:
    """A transaction id from a user: digits only, zero-padded to 10."""
    text = text.strip()
    if not text.isdigit() or len(text) > 10 or int(text) == 0:
        raise FormatError(f"not a transaction id: {text!r} (want up to 10 digits, e.g. 0000000042)")
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
            f'"{product}","{version}","{comment}",')


def format_del_line(del_id: str, deleted_id: str) -> str:
    return f"{del_id},del,{deleted_id}"


def server_bytes(lines: list[str]) -> bytes:
    """server.txt: every line CRLF-terminated."""
    return "".join(ln + CRLF for ln in lines).encode("utf-8")


def history_bytes(lines: list[str]) -> bytes:
    """history.txt as symstore.exe leaves it: one line unterminated, more lines each CRLF-terminated."""
    if len(lines) == 1:
        return lines[0].encode("utf-8")
    return "".join(ln + CRLF for ln in lines).encode("utf-8")


def split_lines(data: bytes) -> list[str]:
    """Lines of an admin file (CRLF or LF), empty ones dropped; undecodable bytes replaced."""
    text = data.decode("utf-8", "replace")
    return [ln.rstrip("\r") for ln in text.split("\n") if ln.strip("\r\n \t")]


def read_lines(path: Path) -> list[str]:
    try:
        return split_lines(path.read_bytes())
    except FileNotFoundError:
        return []


# -- transaction files --------------------------------------------------------


@dataclass(frozen=True)
class TxnEntry:
    name: str
    index: str
    source: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.name.lower(), self.index.upper())


def format_entry(name: str, index: str, source: str) -> str:
    return f'"{name}\\{index}","{clean_source(source)}"'


def parse_entry(line: str) -> TxnEntry:
    """One transaction-file line; FormatError / UnsafeNameError when malformed or hostile."""
    m = _ENTRY_RE.match(line)
    if not m:
        raise FormatError(f"malformed transaction line {line[:120]!r}")
    name, index, source = m[1], m[2], m[3]
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
    return "".join(format_entry(e.name, e.index, e.source) + CRLF for e in entries).encode("utf-8")


# -- refs.ptr -----------------------------------------------------------------


@dataclass(frozen=True)
class RefLine:
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
    return f'{txn_id},{ref},"{clean_source(source)}",{kind},,{"Y" if compressed else "N"},,'


def refs_bytes(lines: list[str]) -> bytes:
    return CRLF.join(lines).encode("utf-8")


def write_refs(index_dir: Path, lines: list[str], prefix: str = TMP_PREFIX) -> None:
    """Replace refs.ptr atomically (removed when no line is left)."""
    path = index_dir / REFS
    if not lines:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    _atomic_bytes(path, refs_bytes(lines), prefix)


def add_ref(index_dir: Path, line: str, prefix: str = TMP_PREFIX) -> None:
    """Append a refs.ptr line (atomic rewrite: a crash leaves the old or the new file)."""
    lines = read_lines(index_dir / REFS)
    lines.append(line)
    write_refs(index_dir, lines, prefix)


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

    def ensure(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    # lastid
    def read_lastid(self) -> int:
        try:
            text = (self.dir / LASTID).read_bytes().decode("ascii", "replace").strip()
        except FileNotFoundError:
            return 0
        if not text.isdigit():
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
    def server_lines(self) -> list[str]:
        return read_lines(self.dir / SERVER)

    def history_lines(self) -> list[str]:
        return read_lines(self.dir / HISTORY)

    def live(self) -> dict[str, AdminLine]:
        """Live add transactions from server.txt, by id (first line wins)."""
        out: dict[str, AdminLine] = {}
        for line in self.server_lines():
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

    def rewrite_server(self, lines: list[str]) -> None:
        _atomic_bytes(self.dir / SERVER, server_bytes(lines), self.tmp_prefix)

    def rewrite_history(self, lines: list[str]) -> None:
        _atomic_bytes(self.dir / HISTORY, history_bytes(lines), self.tmp_prefix)

    def _append(self, path: Path, line: str, terminate: bool | None) -> None:
        """Append one line in a single write (O_APPEND), after the previous line's
        terminator if it lacks one.  Short appends under the lock: a SIGKILL leaves
        the line whole or absent in practice; verify --repair drops a torn one."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0), 0o666)  # the umask decides, as for any new file
        try:
            size = os.fstat(fd).st_size
            prefix = b""
            if size:
                os.lseek(fd, size - 1, os.SEEK_SET)
                if os.read(fd, 1) != b"\n":
                    prefix = b"\r\n"
            data = prefix + line.encode("utf-8")
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
            fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o666)
            os.close(fd)
            os.utime(p)
        except OSError:
            pass


def init_store(store: Path, two_tier: bool = False) -> bool:
    """Create the skeleton of a store (idempotent); returns True if anything was created."""
    from symtool.store.layout import INDEX2, PINGME

    created = False
    if store.exists() and not store.is_dir():
        raise StoreError("exists and is not a directory", store)
    if not store.exists():
        store.mkdir(parents=True)
        created = True
    admin = store / ADMIN_DIR
    if not admin.is_dir():
        admin.mkdir()
        created = True
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
