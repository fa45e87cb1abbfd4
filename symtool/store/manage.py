"""Store administration: list, show, delete (symstore del /i ID), prune, init.

Deleting a transaction does what ``symstore del /i ID`` does:

1. a new id is taken for the ``del`` record and written to lastid.txt;
2. ``000Admin/<id>`` becomes ``<id>.deleted``;
3. its line leaves server.txt;
4. ``<del id>,del,<id>`` is appended to history.txt;
5. its lines leave the refs.ptr of every file it listed, and a file is
   removed only when no live transaction references it any more (neither a
   refs.ptr line with a live id, nor a live transaction file listing it --
   the latter covers stores written by tools that keep no refs.ptr).

Names come from the transaction file (which someone may have edited): each
goes through check_file_name/parse_index and every path is resolved and must
stay inside the store before anything is unlinked; only known file names
(the data file, its compressed form, file.ptr, refs.ptr) are removed and
directories only with rmdir (never recursively).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from symtool import platform
from symtool.errors import FormatError, NotFoundError, StoreError, UnsafeNameError, UsageError
from symtool.store import admin as adm
from symtool.store.layout import (ADMIN_DIR, COMPRESSED, PLAIN, POINTER, REFS, find_ci, find_entry_dir, form_file_name,
                                  inside, is_two_tier)
from symtool.store.lock import StoreLock, owner_tag


MAX_AGE_DAYS = 100_000  # ~270 years: any larger age (or inf, nan, 1e300) is no date


def require_store(store: Path) -> None:
    if not store.is_dir():
        raise StoreError("store directory not found", store)
    if not (store / ADMIN_DIR).is_dir():
        raise StoreError("not a symbol store (no 000Admin directory)", store)


def _when(rec: adm.AdminLine) -> datetime | None:
    try:
        return datetime.strptime(f"{rec.date} {rec.time}", "%m/%d/%Y %H:%M:%S")
    except ValueError:
        return None


def record_json(rec: adm.AdminLine) -> dict:
    when = _when(rec)
    return {"id": rec.id, "op": rec.op, "ref": rec.ref, "date": rec.date, "time": rec.time,
            "timestamp": when.isoformat() if when else None, "product": adm.from_record(rec.product),
            "version": adm.from_record(rec.version), "comment": adm.from_record(rec.comment)}


def list_transactions(store: Path, include_deleted: bool = False) -> list[dict]:
    require_store(store)
    admin = adm.Admin(store)
    live = admin.live()
    if not include_deleted:
        return [record_json(r) for r in live.values()]
    out = []
    deleted_by: dict[str, str] = {}
    for line in admin.iter_history():
        rec = adm.parse_admin_line(line)
        if rec is not None and rec.op == "del":
            deleted_by[rec.deleted_id] = rec.id
    for line in admin.iter_history():
        rec = adm.parse_admin_line(line)
        if rec is not None and rec.op == "add":
            d = record_json(rec)
            d["deleted_by"] = deleted_by.get(rec.id)
            out.append(d)
    return out


def show_transaction(store: Path, txn_id: str) -> dict:
    require_store(store)
    txn_id = adm.normalize_id(txn_id)
    admin = adm.Admin(store)
    live = admin.live()
    rec = live.get(txn_id)
    state = "live"
    if rec is None:
        for line in admin.iter_history():
            r = adm.parse_admin_line(line)
            if r is not None and r.op == "add" and r.id == txn_id:
                rec = r
        state = "deleted"
    path = admin.dir / txn_id
    if not path.is_file():
        path = admin.dir / (txn_id + adm.DELETED_SUFFIX)
    if rec is None and not path.is_file():
        raise NotFoundError(f"no transaction {txn_id}", store)
    entries, problems = adm.read_txn_file(path)
    two = is_two_tier(store)
    files = []
    for e in entries:
        form = None
        with contextlib.suppress(UnsafeNameError, FormatError):
            idx = find_entry_dir(store, e.name, e.index, two)
            if idx is not None:
                for f in (PLAIN, COMPRESSED, POINTER):
                    p = find_ci(idx, form_file_name(e.name, f))
                    if p is not None and p.is_file():
                        form = f
                        break
        files.append({"name": e.name, "index": e.index, "key": f"{e.name}/{e.index}/{e.name}",
                      "source": adm.from_record(e.source), "stored_as": form})
    out = record_json(rec) if rec else {"id": txn_id, "op": "add"}
    out.update({"state": state, "files": files, "problems": problems})
    return out


@dataclass
class DeleteReport:
    deleted: list[str] = field(default_factory=list)  # transaction ids
    del_ids: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # store-relative paths of removed files
    kept: list[str] = field(default_factory=list)  # keys still referenced
    problems: list[str] = field(default_factory=list)
    dry_run: bool = False  # nothing was changed: deleted/removed/kept say what would be

    def to_json(self) -> dict:
        return {"dry_run": self.dry_run, "deleted": self.deleted, "del_records": self.del_ids,
                "removed_files": self.removed, "still_referenced": self.kept, "problems": self.problems}


class _Deleter:
    """Deletes transactions of a store; call under the store lock.

    With ``dry_run`` it changes nothing and writes nothing (no lock needed):
    the report says what would be deleted, removed and kept, as if the
    transactions were deleted in the order given.
    """

    def __init__(self, store: Path, report: DeleteReport, dry_run: bool = False):
        self.store = store
        self.report = report
        self.dry_run = dry_run
        self._gone: set[str] = set()  # transactions deleted so far in a dry run
        self.prefix = f"{adm.TMP_PREFIX}{owner_tag()}-"
        self.admin = adm.Admin(store, self.prefix)
        self.two_tier = is_two_tier(store)
        self._live_keys: dict[tuple[str, str], set[str]] | None = None

    def live_keys(self, live: set[str]) -> dict[tuple[str, str], set[str]]:
        if self._live_keys is None:
            keys: dict[tuple[str, str], set[str]] = {}
            for tid in live:
                entries, _ = adm.read_txn_file(self.admin.dir / tid)
                for e in entries:
                    keys.setdefault(e.key, set()).add(tid)
            self._live_keys = keys
        return self._live_keys

    def delete(self, txn_id: str) -> None:
        admin = self.admin
        live = {tid: rec for tid, rec in admin.live().items() if tid not in self._gone}
        if txn_id not in live:
            if txn_id in self._gone or (admin.dir / (txn_id + adm.DELETED_SUFFIX)).exists():
                raise NotFoundError(f"transaction {txn_id} is already deleted", self.store)
            raise NotFoundError(f"no live transaction {txn_id} (see `symtool store list`)", self.store)
        path = admin.dir / txn_id
        entries, problems = adm.read_txn_file(path)
        self.report.problems.extend(f"{txn_id}: {p} (line skipped)" for p in problems)
        if self.dry_run:
            self._gone.add(txn_id)
        else:
            del_id = admin.next_id()
            admin.write_lastid(int(del_id))
            if path.exists():
                platform.replace(path, admin.dir / (txn_id + adm.DELETED_SUFFIX))
            admin.rewrite_server(ln for ln in admin.iter_server() if not ln.startswith(txn_id + ","))
            admin.append_history(adm.format_del_line(del_id, txn_id))
            self.report.del_ids.append(del_id)
        self.report.deleted.append(txn_id)
        live_ids = set(live) - {txn_id}
        if self._live_keys is not None:
            for ids in self._live_keys.values():
                ids.discard(txn_id)
        for e in entries:
            self._drop_reference(e, txn_id, live_ids)
        if not self.dry_run:
            admin.touch_pingme()

    def _drop_reference(self, e: adm.TxnEntry, txn_id: str, live_ids: set[str]) -> None:
        try:
            idx = find_entry_dir(self.store, e.name, e.index, self.two_tier)
        except (UnsafeNameError, FormatError) as err:
            self.report.problems.append(err.message)
            return
        if idx is None:
            return
        lines = adm.read_refs(idx)
        keep = []
        for ln in lines:
            ref = adm.parse_ref_line(ln)
            if ref is not None and (ref.id == txn_id or ref.id in self._gone):
                continue
            keep.append(ln)
        if keep != lines and not self.dry_run:
            adm.write_refs(idx, keep, self.prefix)
        still = [ln for ln in keep if adm.parse_ref_line(ln) is None or adm.parse_ref_line(ln).id in live_ids]
        key = f"{e.name}/{e.index}/{e.name}"
        if still or self.live_keys(live_ids).get(e.key):
            self.report.kept.append(key)
            return
        self.remove_entry(idx, e.name, refs_left=bool(keep))

    def remove_entry(self, idx: Path, name: str, refs_left: bool = True) -> None:
        """Remove the known files of one index dir, then the dirs if empty.

        ``refs_left``: False when refs.ptr lost its last line (write_refs removed it
        already; a dry run must not list it either).
        """
        for fname in (*(form_file_name(name, f) for f in (PLAIN, COMPRESSED, POINTER)), REFS):
            if fname == REFS and not refs_left:
                continue
            p = find_ci(idx, fname)
            if p is None or not os.path.lexists(p):
                continue
            if os.path.islink(p) or not p.is_file() or not inside(self.store, p):
                self.report.problems.append(f"{p}: not a regular file inside the store, left alone")
                continue
            if self.dry_run:
                self.report.removed.append(p.relative_to(self.store).as_posix())
                continue
            with contextlib.suppress(FileNotFoundError):
                platform.unlink(p)
                self.report.removed.append(p.relative_to(self.store).as_posix())
        for d in (idx, idx.parent, idx.parent.parent if self.two_tier else None):
            if self.dry_run:
                break
            if d is None or d == self.store or not inside(self.store, d):
                break
            try:
                os.rmdir(d)
            except OSError:
                break  # not empty (another index, a concurrent publisher's temp file): keep


def delete_transactions(store: Path, ids: list[str], dry_run: bool = False) -> DeleteReport:
    """Delete transactions ``ids`` in order (``symstore del``); ``dry_run``: only say what would go."""
    require_store(store)
    ids = [adm.normalize_id(i) for i in ids]
    report = DeleteReport(dry_run=dry_run)
    if dry_run:  # reads only: no lock, which would create its file
        d = _Deleter(store, report, dry_run=True)
        for tid in ids:
            d.delete(tid)
        return report
    with StoreLock(store):
        d = _Deleter(store, report)
        for tid in ids:
            d.delete(tid)
        _drop_dangling_debuginfod_links(store)
    return report


def _drop_dangling_debuginfod_links(store: Path) -> None:
    """The debuginfod view (symtool.store.native) links to entries: drop the links of deleted ones."""
    from symtool.store.native import unlink_dangling

    unlink_dangling(store)


def prune_selection(live: dict, keep_last: int | None, older_than_days: float | None) -> list[str]:
    """The live transaction ids ``prune`` deletes: all but the newest ``keep_last``, or those
    older than ``older_than_days`` (a record without a readable date is kept)."""
    ids = sorted(live)
    if keep_last is not None:
        return ids[:max(0, len(ids) - keep_last)]
    cutoff = datetime.fromtimestamp(time.time() - older_than_days * 86400)
    return [i for i in ids if (_when(live[i]) or cutoff) < cutoff]


def prune(store: Path, keep_last: int | None = None, older_than_days: float | None = None,
          dry_run: bool = False) -> DeleteReport:
    if (keep_last is None) == (older_than_days is None):
        raise UsageError("prune needs exactly one of --keep-last N or --older-than DAYS")
    if keep_last is not None and keep_last < 0 or older_than_days is not None and older_than_days < 0:
        raise UsageError("prune limits must not be negative")
    if older_than_days is not None and not (math.isfinite(older_than_days) and older_than_days <= MAX_AGE_DAYS):
        raise UsageError(f"--older-than takes a number of days from 0 to {MAX_AGE_DAYS}, not {older_than_days}")
    require_store(store)
    report = DeleteReport()
    with StoreLock(store):
        live = adm.Admin(store).live()
        doomed = prune_selection(live, keep_last, older_than_days)
        if dry_run:
            report.deleted = doomed
            return report
        d = _Deleter(store, report)
        for tid in doomed:
            d.delete(tid)
        _drop_dangling_debuginfod_links(store)
    return report
