"""``store verify [--repair]``: check a store end to end and bring it back to
consistency after an interrupted publish or delete.

Runs under the store lock (a publisher half-way through its locked section
would otherwise look inconsistent).  What is checked, and what ``--repair``
does about it:

======================================  ===========================================
finding                                 repair
======================================  ===========================================
temp file of a dead writer              removed (live writers' temp files are left)
stale lock-break marker                 removed
torn / unparsable server.txt line       dropped
torn / unparsable history.txt line      dropped
uncommitted transaction (``<id>``       rolled back: file removed, its refs.ptr lines
file, no server.txt line, no history)   dropped (data then unreferenced is removed)
live transaction without history line   history line added (copy of the server line)
server.txt lost a line history has      server line restored from history.txt
``<id>.deleted`` still in server.txt    server line dropped, ``del`` record added
deleted transaction without ``del``     ``del`` record added (new id)
``<id>`` deleted in history, not renamed  renamed to ``<id>.deleted``
lastid.txt missing / behind             set to the highest id in use
refs.ptr line: bad, uncommitted or      dropped
deleted id, or a transaction that
does not list this file
live transaction file lacks refs.ptr    line added (kind from the file's content,
line (e.g. written by PyPI symstore)    Y/N from the stored form)
stored file no live transaction         removed (with refs.ptr and empty dirs):
references                              it belongs to a publish that never
                                        committed or to a deleted transaction
empty index / name directory            removed
pingme.txt missing                      created
stored file's identity != its INDEX     reported only (never deleted: repair
or unreadable, data missing for a       never throws away data a live
live transaction, hostile line in a     transaction references)
transaction file
======================================  ===========================================

"Never lose complete data": nothing a committed, live transaction refers to
is ever removed; what is removed is temp files and files of publishes that
never committed.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from symtool import platform
from symtool.errors import FormatError, StoreError, UnsafeNameError
from symtool.fsutil import TMP_PREFIX
from symtool.ids import check_file_name, parse_index
from symtool.store import admin as adm
from symtool.store.layout import (ADMIN_DIR, COMPRESSED, DEBUGINFOD_ROOT, INDEX2, PINGME, PLAIN, POINTER, REFS, form_file_name, is_two_tier,
                                  read_file_ptr)
from symtool.store.lock import (BREAK_NAME, broken_lock, LOCK_NAME, StoreLock, held_by_live_writer, owner_tag,
                                remove_broken_lock, temp_owner_dead)


ADMIN_KNOWN = {adm.LASTID, adm.SERVER, adm.HISTORY, LOCK_NAME}


@dataclass
class Finding:
    kind: str
    path: str
    message: str
    repaired: bool = False

    def to_json(self) -> dict:
        return {"kind": self.kind, "path": self.path, "message": self.message, "repaired": self.repaired}


@dataclass
class VerifyReport:
    store: str
    findings: list[Finding] = field(default_factory=list)
    checked_files: int = 0
    live_transactions: int = 0
    in_progress: int = 0  # temp files of live writers
    busy: bool = False  # read-only check: a live writer held the lock throughout

    @property
    def unresolved(self) -> list[Finding]:
        return [f for f in self.findings if not f.repaired]

    def to_json(self) -> dict:
        return {"store": self.store, "ok": not self.unresolved, "checked_files": self.checked_files,
                "live_transactions": self.live_transactions, "in_progress": self.in_progress, "busy": self.busy,
                "findings": [f.to_json() for f in self.findings]}


class _Verifier:
    def __init__(self, store: Path, repair: bool):
        self.store = store
        self.repair = repair
        self.report = VerifyReport(str(store))
        self.prefix = f"{TMP_PREFIX}{owner_tag()}-"
        self.admin = adm.Admin(store, self.prefix)
        self.two_tier = is_two_tier(store)

    def find(self, kind: str, path: Path | str, message: str, fix=None) -> None:
        f = Finding(kind, str(path), message)
        if self.repair and fix is not None:
            fix()
            f.repaired = True
        self.report.findings.append(f)

    def rel(self, p: Path) -> str:
        with contextlib.suppress(ValueError):
            return p.relative_to(self.store).as_posix()
        return str(p)

    # -- temp files ---------------------------------------------------------
    def temp_file(self, p: Path) -> None:
        try:
            mtime = p.stat().st_mtime
        except FileNotFoundError:
            return
        if not temp_owner_dead(p.name, mtime):
            self.report.in_progress += 1
            return
        self.find("temp-file", self.rel(p), "temp file of an interrupted write",
                  lambda: _unlink(p))

    # -- 000Admin -----------------------------------------------------------
    def run(self) -> VerifyReport:
        store, admin = self.store, self.admin
        if not (store / PINGME).is_file():
            self.find("pingme-missing", PINGME, "pingme.txt is missing (debuggers use it to recognise a store)",
                      lambda: adm.atomic_write_bytes(store / PINGME, b""))
        for p in sorted(admin.dir.iterdir()):
            if p.name.startswith(TMP_PREFIX):
                self.temp_file(p)
            elif p.name == BREAK_NAME:
                self.find("stale-lock", f"{ADMIN_DIR}/{p.name}", "leftover lock-break marker", lambda p=p: _unlink(p))

        server_raw = admin.iter_server()
        server: dict[str, adm.AdminLine] = {}
        server_keep: list[str] = []
        dirty_server = False
        for ln in server_raw:
            rec = adm.parse_admin_line(ln)
            if rec is None or rec.op != "add" or rec.id in server:
                self.find("server-line", f"{ADMIN_DIR}/{adm.SERVER}", f"bad or duplicate line {ln[:80]!r}")
                dirty_server = True
                continue
            server[rec.id] = rec
            server_keep.append(ln)
        hist_raw = admin.iter_history()
        hist_keep: list[str] = []
        hist_add: dict[str, adm.AdminLine] = {}
        hist_del: dict[str, str] = {}  # deleted id -> del id
        ids_used: set[int] = set()
        dirty_hist = False
        for ln in hist_raw:
            rec = adm.parse_admin_line(ln)
            if rec is None:
                self.find("history-line", f"{ADMIN_DIR}/{adm.HISTORY}", f"unparsable line {ln[:80]!r}")
                dirty_hist = True
                continue
            hist_keep.append(ln)
            ids_used.add(int(rec.id))
            if rec.op == "add":
                hist_add.setdefault(rec.id, rec)
            else:
                hist_del[rec.deleted_id] = rec.id

        txn_files: set[str] = set()
        deleted_files: set[str] = set()
        for p in admin.dir.iterdir():
            if adm.ID_RE.match(p.name):
                txn_files.add(p.name)
            elif p.name.endswith(adm.DELETED_SUFFIX) and adm.ID_RE.match(p.name[:-len(adm.DELETED_SUFFIX)]):
                deleted_files.add(p.name[:-len(adm.DELETED_SUFFIX)])

        new_hist_lines: list[str] = []
        # Transactions on disk that server.txt does not list.
        for tid in sorted(txn_files - set(server)):
            path = admin.dir / tid
            if tid in hist_del:
                self.find("not-renamed", self.rel(path), f"transaction {tid} was deleted but its file not renamed",
                          lambda path=path: platform.replace(path, str(path) + adm.DELETED_SUFFIX))
                deleted_files.add(tid)
            elif tid in hist_add:
                rec = hist_add[tid]
                self.find("server-lost", f"{ADMIN_DIR}/{adm.SERVER}",
                          f"live transaction {tid} is missing from server.txt (restored from history.txt)")
                server[tid] = rec
                server_keep.append(rec.raw)
                dirty_server = True
            else:
                self.find("uncommitted", self.rel(path), f"transaction {tid} never committed (rolled back)",
                          lambda path=path: _unlink(path))
        txn_files = {t for t in txn_files if t in server}
        # Ids of rolled-back transactions were never handed out: lastid need not cover them.
        ids_used |= {int(i) for i in txn_files | deleted_files | set(server)}
        # Deleted transactions still listed, or without a del record.
        for tid in sorted(deleted_files):
            if tid in server:
                self.find("deleted-live", f"{ADMIN_DIR}/{adm.SERVER}",
                          f"deleted transaction {tid} is still in server.txt")
                del server[tid]
                server_keep = [ln for ln in server_keep if not ln.startswith(tid + ",")]
                dirty_server = True
            if tid not in hist_del:
                def add_del(tid=tid):
                    new_hist_lines.append(("del", tid))
                self.find("del-record", f"{ADMIN_DIR}/{adm.HISTORY}", f"deleted transaction {tid} has no del record",
                          add_del)
        for tid in sorted(set(server) - txn_files - deleted_files):
            self.find("txn-file-missing", f"{ADMIN_DIR}/{tid}", f"live transaction {tid} has no transaction file")
        for tid in sorted(set(server)):
            if tid not in hist_add:
                def add_hist(tid=tid):
                    new_hist_lines.append(("add", server[tid].raw))
                self.find("history-missing", f"{ADMIN_DIR}/{adm.HISTORY}", f"transaction {tid} has no history line",
                          add_hist)

        if self.repair and dirty_server:
            admin.rewrite_server(sorted(server_keep))
        if self.repair and dirty_hist:
            admin.rewrite_history(hist_keep)
        try:
            lastid = admin.read_lastid()
        except StoreError:
            lastid = -1
        top = max(ids_used, default=0)
        for op, val in new_hist_lines:
            if op == "add":
                admin.append_history(val)
            else:
                top += 1
                admin.append_history(adm.format_del_line(adm.format_id(top), val))
        if lastid < top:
            self.find("lastid", f"{ADMIN_DIR}/{adm.LASTID}",
                      f"lastid.txt says {lastid if lastid >= 0 else 'nothing readable'}, ids up to {top} are in use",
                      lambda: admin.write_lastid(top))

        # Entries of live transactions.
        live_keys: dict[tuple[str, str], list[tuple[str, adm.TxnEntry]]] = {}
        for tid in sorted(server):
            path = admin.dir / tid
            entries, problems = adm.read_txn_file(path)
            for prob in problems:
                self.find("txn-line", self.rel(path), prob)
            for e in entries:
                live_keys.setdefault(e.key, []).append((tid, e))
        self.report.live_transactions = len(server)
        self.walk_data(set(server), live_keys)
        return self.report

    # -- data -----------------------------------------------------------------
    def name_dirs(self):
        skip = {ADMIN_DIR.lower(), PINGME, INDEX2, DEBUGINFOD_ROOT}  # the debuginfod view: symlinks
        for top in sorted(self.store.iterdir()):
            if top.name.lower() in skip:
                continue
            if top.name.startswith(TMP_PREFIX):
                self.temp_file(top)
                continue
            if not top.is_dir() or top.is_symlink():
                continue
            if self.two_tier:
                for nd in sorted(top.iterdir()):
                    if nd.is_dir() and not nd.is_symlink():
                        yield nd
                    elif nd.name.startswith(TMP_PREFIX):
                        self.temp_file(nd)
            else:
                yield top

    def walk_data(self, live: set[str], live_keys: dict) -> None:
        seen: set[tuple[str, str]] = set()
        for name_dir in self.name_dirs():
            name = name_dir.name
            try:
                check_file_name(name)
            except UnsafeNameError:
                continue
            for idx in sorted(name_dir.iterdir()):
                if idx.name.startswith(TMP_PREFIX):
                    self.temp_file(idx)
                    continue
                if not idx.is_dir() or idx.is_symlink():
                    continue
                try:
                    parse_index(idx.name)
                except FormatError:
                    continue
                key = (name.lower(), idx.name.upper())
                seen.add(key)
                self.check_index_dir(idx, name, live, live_keys.get(key, []))
            if self.repair:
                with contextlib.suppress(OSError):
                    if not any(name_dir.iterdir()):
                        os.rmdir(name_dir)
                        if self.two_tier and not any(name_dir.parent.iterdir()):
                            os.rmdir(name_dir.parent)
        for key, refs in live_keys.items():
            if key not in seen:
                tid, e = refs[0]
                self.find("data-missing", f"{e.name}/{e.index}", f"transaction {tid} lists it, the store has no such file")

    def check_index_dir(self, idx: Path, name: str, live: set[str], listed: list) -> None:
        data: dict[str, Path] = {}
        for p in idx.iterdir():
            low = p.name.lower()
            if p.name.startswith(TMP_PREFIX):
                self.temp_file(p)
            elif low in self._known_names(name) and not _is_regular(p):
                # Never opened: a FIFO would hang verify (and the lock it holds), a symlink leads outside.
                self.find("not-regular", self.rel(p), f"{_what(p)} where a stored file belongs (never read)")
                if low == REFS.lower():
                    return
            else:
                # First match wins: a name ending in '_' is its own compressed name.
                for form in (PLAIN, COMPRESSED, POINTER):
                    if low == form_file_name(name, form).lower():
                        data.setdefault(form, p)
                        break
        lines = adm.read_refs(idx)
        listing_ids = {tid for tid, _ in listed}
        keep: list[str] = []
        dirty = False
        for ln in lines:
            ref = adm.parse_ref_line(ln)
            if ref is None:
                self.find("refs-line", self.rel(idx / REFS), f"unparsable line {ln[:80]!r}", _REWRITTEN)
                dirty = True
            elif ref.id not in live:
                self.find("refs-dead", self.rel(idx / REFS), f"reference to transaction {ref.id}, which is not live", _REWRITTEN)
                dirty = True
            elif ref.id not in listing_ids:
                self.find("refs-unlisted", self.rel(idx / REFS), f"transaction {ref.id} does not list this file", _REWRITTEN)
                dirty = True
            else:
                keep.append(ln)
        have = {adm.parse_ref_line(ln).id for ln in keep}
        if not data and not listed:
            if lines or any(idx.iterdir()):
                self.find("orphan", self.rel(idx), "no stored file and no live transaction",
                          lambda: self.remove_dir(idx, name))
            else:
                self.find("empty-dir", self.rel(idx), "empty index directory", lambda: self.remove_dir(idx, name))
            return
        if not listed:
            self.find("unreferenced", self.rel(idx), "stored file that no live transaction references "
                      "(a publish that never committed, or a deleted transaction)",
                      lambda: self.remove_dir(idx, name))
            return
        for form, p in data.items():
            self.check_identity(p, form, name, idx.name)
        if not data:
            self.find("data-missing", self.rel(idx), "live transactions reference it but no file is stored")
        missing = [(tid, e) for tid, e in listed if tid not in have]
        if missing:
            kind = self.kind_of(data)
            form = "pointer" if "pointer" in data and len(data) == 1 else ("compressed" if "plain" not in data and "compressed" in data else "plain")
            for tid, e in sorted(missing):
                ln = adm.format_ref_line(tid, "ptr" if form == "pointer" else "file", e.source, kind, form == "compressed")
                self.find("refs-missing", self.rel(idx / REFS), f"no refs.ptr line for transaction {tid}",
                          lambda ln=ln: keep.append(ln))
                dirty = True
        if self.repair and dirty:
            keep.sort()
            adm.write_refs(idx, keep, self.prefix)

    @staticmethod
    def _known_names(name: str) -> set[str]:
        return {form_file_name(name, f).lower() for f in (PLAIN, COMPRESSED, POINTER)} | {REFS.lower()}

    def kind_of(self, data: dict[str, Path]) -> str:
        from symtool.formats.detect import detect
        from symtool.store.identify import pdb_kind

        p = data.get("plain")
        if p is None:
            return "pri"
        with contextlib.suppress(OSError, FormatError):
            if detect(p) == "pe":
                return "bin"
            return pdb_kind(p)
        return "pri"

    def check_identity(self, p: Path, form: str, name: str, index: str) -> None:
        self.report.checked_files += 1
        if form == "plain":
            from symtool.formats.detect import read_identity

            try:
                info = read_identity(p)
            except (FormatError, OSError) as err:
                self.find("bad-file", self.rel(p), f"unreadable: {getattr(err, 'message', None) or err}")
                return
            from symtool.store.native import identity_matches

            if not identity_matches(info, name, index):
                self.find("identity", self.rel(p), f"file's own identity is {info.index}, stored under {index}")
        elif form == "compressed":
            from symtool.formats.cab import read_single_header

            try:
                with open(p, "rb") as f:
                    head = read_single_header(f)
            except (FormatError, OSError) as err:
                self.find("bad-file", self.rel(p), f"not a usable CAB: {getattr(err, 'message', None) or err}")
                return
            if head["name"].lower() != name.lower():
                self.find("identity", self.rel(p), f"CAB holds {head['name']!r}, expected {name!r}")
        else:
            try:
                target, _msg = read_file_ptr(p)
            except FormatError as err:
                self.find("bad-file", self.rel(p), err.message)
                return
            except OSError as err:
                self.find("bad-file", self.rel(p), str(err))
                return
            if not target:
                self.find("bad-file", self.rel(p), "file.ptr names no path")

    def remove_dir(self, idx: Path, name: str) -> None:
        from symtool.store.manage import DeleteReport, _Deleter

        d = _Deleter(self.store, DeleteReport())
        d.remove_entry(idx, name)
        for p in list(idx.iterdir()) if idx.is_dir() else []:
            if p.name.startswith(TMP_PREFIX) and temp_owner_dead(p.name, p.stat().st_mtime):
                _unlink(p)
        with contextlib.suppress(OSError):
            os.rmdir(idx)


def _REWRITTEN() -> None:
    """The fix of a bad refs.ptr line: done once per file, after all its lines are judged
    (refs.ptr rewritten without it, or removed with an unreferenced entry)."""


def _is_regular(p: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(p).st_mode)
    except OSError:
        return False


def _what(p: Path) -> str:
    from symtool.fsutil import kind_of

    try:
        return kind_of(os.lstat(p).st_mode)
    except OSError:
        return "something unreadable"


def _unlink(p: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        platform.unlink(p)


READ_ONLY_TRIES = 5  # read-only verify: runs while a live writer held the lock, before saying so


def verify_store(store: Path, repair: bool = False) -> VerifyReport:
    """Check (and with ``repair`` fix) a local store; see the module docstring.

    Only ``repair`` takes the lock (and so needs write access).  A read-only
    check reads without it: when a live writer held the lock during the run,
    its half-done work could look like problems, so the check is run again
    (a few times), and the report says ``busy`` if a writer never let go.
    """
    if not store.is_dir():
        raise StoreError("store directory not found", store)
    if not (store / ADMIN_DIR).is_dir():
        raise StoreError("not a symbol store (no 000Admin directory)", store)
    if not repair:
        for attempt in range(READ_ONLY_TRIES):
            busy = held_by_live_writer(store)
            report = _Verifier(store, False).run()
            busy = busy or held_by_live_writer(store)
            if not busy:
                break
            time.sleep(0.1 * (attempt + 1))
        else:
            report.busy = True
        what = broken_lock(store)
        if what is not None:
            report.findings.insert(0, Finding("bad-lock", f"{ADMIN_DIR}/{LOCK_NAME}",
                                              f"{what} in place of the lock file: it blocks every publisher"))
        return report
    broken = remove_broken_lock(store)
    with StoreLock(store):
        report = _Verifier(store, True).run()
        # A publish killed after its debuginfod links, before its commit: rolled back above, its links dangle.
        from symtool.store.native import unlink_dangling

        for gone in unlink_dangling(store):
            report.findings.append(Finding("debuginfod-link", gone.relative_to(store).as_posix(),
                                           "debuginfod view of an entry that is gone (removed)", repaired=True))
    if broken is not None:
        report.findings.insert(0, Finding("bad-lock", f"{ADMIN_DIR}/{LOCK_NAME}",
                                          f"{broken} in place of the lock file (removed)", repaired=True))
    return report
