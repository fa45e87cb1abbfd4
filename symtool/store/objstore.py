"""Symbol stores on object storage (``s3://``, ``azblob://``): symstore.exe's
layout and 000Admin records, kept consistent without a lock.

Object storage has no lock and no rename, but it has conditional writes
(:mod:`symtool.store.backends`).  A publish:

1. **Probe** (once per process and store): a create-only write twice to the
   same key must fail the second time, and a compare-and-swap with a wrong
   etag must fail.  A backend that ignores conditions is refused.
2. **Payloads**, create-only, several at a time.  Each carries ``symtoolsize``
   and ``symtoolsample`` (sha256 of its first and last MiB, the "same bytes"
   rule of :mod:`symtool.store.publish`) and ``symtoolkind`` (pri/pub/bin) in
   its metadata.  An existing object with the same size and sample is kept
   (``present``); one with other bytes is replaced by compare-and-swap.
3. **Claim**: the next id is taken by a create-only write of
   ``000Admin/<id>``, starting after the last id in history.txt.  The object
   holds symstore.exe's transaction file byte for byte; its metadata hold the
   server/history line (``symtoolline``, base64) and the refs.ptr kind and
   form of every entry (``symtoolrefs``).  The claim is the commit point:
   from here on anyone can finish the transaction.
4. **Roll forward** (any publisher, delete, or ``store verify --repair``):
   every claim after history.txt's last id, in id order, gets its refs.ptr
   lines, its server.txt line, its history.txt line, then lastid.txt -- each
   by compare-and-swap, each skipped when the line for that id is there.
   History is written last, so a line in history.txt means every earlier
   step of that id is done.  Ids above history's last one are dense (each
   claim starts at last+1 and steps over existing objects), so the claims
   to finish are found by reading ``<last+1>``, ``<last+2>``... until one is
   missing.

``lastid.txt`` is written (10 digits, no newline) for symbolicator and
symstore.exe, but never trusted.  A delete is a claim too (an empty
``000Admin/<id>`` whose metadata name the deleted id): rolling it forward
renames ``<id>`` to ``<id>.deleted``, drops its refs.ptr lines, appends the
``del`` line to history.txt, then drops its server.txt line, and removes the
claim object.  Payloads that no live transaction references stay until
``store verify --repair`` removes them after a grace period
(:data:`GRACE_SECONDS`, ``SYMTOOL_STORE_GRACE``): a publisher that found a
payload present must not lose it to a concurrent cleanup.

A claim whose id turns out to be in history.txt already with another line (a
publisher that stalled while the id was used and deleted) is withdrawn and
taken again.
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import shutil
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from symtool import platform
from symtool.budgets import exceeded, limit
from symtool.errors import FormatError, NotFoundError, StoreError, UnsafeNameError, UsageError
from symtool.store import admin as adm
from symtool.store.backends.base import Backend
from symtool.store.items import PublishItem, publish_set_digest, sample_hash
from symtool.store.layout import (ADMIN_DIR, COMPRESSED, INDEX2, PINGME, PLAIN, POINTER, REFS, form_file_name,
                                  key_dir)

META_SIZE = "symtoolsize"
META_SAMPLE = "symtoolsample"
META_KIND = "symtoolkind"
META_LINE = "symtoolline"
META_REFS = "symtoolrefs"
META_DEL = "symtooldel"
META_SET = "symtoolset"  # publish_set_digest of an add transaction (publish --skip-published)
PROBE_PREFIX = f"{ADMIN_DIR}/symtool-probe-"

GRACE_SECONDS = 24 * 3600
MAX_CAS_ATTEMPTS = 400
MAX_CLAIM_STEPS = 10_000
KEY_CASES = ("exact", "lower")

_KIND_CODE = {"pri": "r", "pub": "u", "bin": "b", "typ": "t"}
_CODE_KIND = {v: k for k, v in _KIND_CODE.items()}
_FORM_CODE = {PLAIN: "P", COMPRESSED: "C", POINTER: "R"}
_CODE_FORM = {v: k for k, v in _FORM_CODE.items()}
# S3 allows 2 KiB of user metadata: past this many entries the refs codes are left out
# (rolling forward then reads each payload's metadata).
MAX_REFS_META = 800


def grace_seconds(environ: dict | None = None) -> float:
    env = os.environ if environ is None else environ
    try:
        return float(env.get("SYMTOOL_STORE_GRACE", GRACE_SECONDS))
    except ValueError:
        return GRACE_SECONDS


def _b64(line: str) -> str:
    """A record line (admin.py's form: latin-1 chars = bytes) for object metadata."""
    return base64.b64encode(adm.record_bytes(line)).decode("ascii")


def _unb64(text: str) -> str:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True).decode("latin-1")
    except (ValueError, UnicodeError):
        return ""


def _admin(name: str) -> str:
    return f"{ADMIN_DIR}/{name}"


def _backoff(attempt: int) -> None:
    """Full-jitter exponential backoff after a lost compare-and-swap."""
    time.sleep(random.uniform(0, min(0.2, 0.004 * 2 ** min(attempt, 6))))


@dataclass
class Claim:
    """One ``000Admin/<id>`` object after history.txt's last id."""

    id: str
    line: str  # the server/history line ("" when the metadata lack it)
    entries: list[adm.TxnEntry] = field(default_factory=list)
    refs: str = ""  # two characters per entry: kind code, form code
    deleted_id: str = ""  # a del claim: the id it deletes

    @property
    def is_del(self) -> bool:
        return bool(self.deleted_id)


@dataclass
class History:
    records: dict[str, adm.AdminLine]  # by id (first wins), in the file's order
    last: int  # highest id with a record
    ends_open: bool = False  # the object's last byte is no line end (symstore leaves one line so)

    @property
    def deleted(self) -> set[str]:
        return {r.deleted_id for r in self.records.values() if r.op == "del"}

    def live(self) -> list[str]:
        gone = self.deleted
        return sorted(i for i, r in self.records.items() if r.op == "add" and i not in gone)


def _same_lines(have: Iterator[str], want: list[str]) -> bool:
    """Whether the streamed ``have`` is exactly ``want`` (stops at the first difference)."""
    n = 0
    for ln in have:
        if n >= len(want) or ln != want[n]:
            return False
        n += 1
    return n == len(want)


def parse_history(data: bytes | None) -> History:
    import io

    return parse_history_stream(io.BytesIO(data or b""))


def parse_history_stream(f: BinaryIO) -> History:
    """history.txt streamed line by line (admin.iter_stream_lines: a line over 1 MiB is no record
    and is skipped): only the records are kept, never the text."""
    records: dict[str, adm.AdminLine] = {}
    last = 0
    for ln in adm.iter_stream_lines(f, what=adm.HISTORY):
        rec = adm.parse_admin_line(ln)
        if rec is None:
            continue
        records.setdefault(rec.id, rec)
        last = max(last, int(rec.id))
    return History(records, last, _ends_open(f))


def _ends_open(f: BinaryIO) -> bool:
    end = f.seek(0, os.SEEK_END)
    if end == 0:
        return False
    f.seek(end - 1)
    return f.read(1) != b"\n"


@dataclass
class _AdminCopy:
    """A temp copy of an admin object as one read returned it (see ObjectStore._admin_copy)."""

    file: BinaryIO
    etag: str
    size: int
    in_use: bool = False  # being read: a nested read of the same object downloads its own
    parsed: "History | None" = None  # history.txt: its records, parsed once


class ObjectStore:
    """A symbol store on a :class:`~symtool.store.backends.Backend`."""

    def __init__(self, backend: Backend, key_case: str = "exact"):
        if key_case not in KEY_CASES:
            raise UsageError(f"--key-case must be one of {', '.join(KEY_CASES)}")
        self.backend = backend
        self.key_case = key_case
        self._probed = False
        self._pingme = False
        self._created_refs: set[str] = set()  # refs.ptr keys of payloads this process created
        self._two_tier: bool | None = None
        self._samples: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sample_hash
        # name -> the last temp copy of that admin object read (see _admin_copy).
        self._admin_copies: dict[str, _AdminCopy] = {}

    @property
    def display(self) -> str:
        return self.backend.display

    # -- keys -----------------------------------------------------------------------------

    def two_tier(self) -> bool:
        if self._two_tier is None:
            self._two_tier = self.backend.head(INDEX2) is not None
        return self._two_tier

    def spell(self, name: str, index: str) -> tuple[str, str]:
        return (name.lower(), index.lower()) if self.key_case == "lower" else (name, index)

    def entry_dir(self, name: str, index: str) -> str:
        name, index = self.spell(name, index)
        return key_dir(name, index, self.two_tier())

    def payload_key(self, name: str, index: str, form: str) -> str:
        return f"{self.entry_dir(name, index)}/{form_file_name(self.spell(name, index)[0], form)}"

    def refs_key(self, name: str, index: str) -> str:
        return f"{self.entry_dir(name, index)}/{REFS}"

    # -- compare-and-swap -------------------------------------------------------------------

    def update(self, key: str, change, likely_missing: bool = False) -> bool:
        """Apply ``change(old bytes or None) -> new bytes or None`` by compare-and-swap until it
        sticks; None or unchanged bytes: nothing to do.  True when this call wrote.

        ``likely_missing``: try a create-only write first, without reading (the refs.ptr
        of a payload this process just created)."""
        if likely_missing:
            new = change(None)
            if new is not None and self.backend.put(key, new, if_none_match=True) is not None:
                return True
        for attempt in range(MAX_CAS_ATTEMPTS):
            blob = self.backend.get(key)
            old = blob.data if blob is not None else None
            new = change(old)
            if new is None or new == old:
                return False
            if blob is None:
                ok = self.backend.put(key, new, if_none_match=True)
            else:
                ok = self.backend.put(key, new, if_match=blob.etag)
            if ok is not None:
                return True
            _backoff(attempt)
        raise StoreError(f"gave up updating {key} after {MAX_CAS_ATTEMPTS} concurrent changes", self.display)

    # -- capability probe -------------------------------------------------------------------

    def probe(self) -> None:
        """Refuse a backend that ignores create-only or compare-and-swap conditions."""
        if self._probed:
            return
        key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        try:
            first = self.backend.put(key, b"1", if_none_match=True)
            second = self.backend.put(key, b"2", if_none_match=True)
            wrong = self.backend.put(key, b"3", if_match='"symtool-not-an-etag"') if first else None
        finally:
            self.backend.delete(key)
        if first is None or second is not None or wrong is not None:
            raise StoreError("this storage ignores conditional writes (If-None-Match / If-Match), so "
                             "concurrent publishers could overwrite each other's records; refusing to write. "
                             "Use a service or release that supports them (e.g. not a versioned bucket on a "
                             "service without conditional writes, SeaweedFS 3.80 or newer)", self.display)
        self._probed = True

    # -- reading -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _admin_copy(self, name: str) -> Iterator[tuple[BinaryIO | None, str | None]]:
        """A local temp copy of the admin object ``name`` and the etag of those bytes; (None, None)
        when absent.

        history.txt and server.txt grow by a line per publish and are anyone's to write: they are
        streamed into a temp file (checked against SYMTOOL_MAX_ADMIN_OBJECT from the size the
        server declares, and again while copying) and read from there line by line, as the local
        store reads its own; never held in memory whole.

        The copy is kept for the next read of the same object in this process: a publish reads
        history.txt five times (claim, the claim's check, roll-forward, the server.txt rewrite,
        the history rewrite), and a 300 MB one cost 2-3 s a download.  Kept copies are used only
        while a HEAD still gives their etag -- the same identity every compare-and-swap here
        relies on (If-Match) -- so a read sees the object as it is now, as a download would,
        and a rewrite from it is conditional on that etag as before."""
        kept = self._admin_copies.get(name)
        if kept is not None and not kept.in_use:
            info = self.backend.head(_admin(name))
            if info is not None and info.etag is not None and info.etag == kept.etag and info.size == kept.size:
                kept.in_use = True
                try:
                    kept.file.seek(0)
                    yield kept.file, kept.etag
                finally:
                    kept.in_use = False
                return
            self._admin_copies.pop(name, None)
            kept.file.close()
        got = self.backend.open_read_info(_admin(name))
        if got is None:
            yield None, None
            return
        stream, info = got
        cap = limit("ADMIN_OBJECT")
        what = f"{ADMIN_DIR}/{name}"
        tmp = tempfile.TemporaryFile(prefix="symtool-admin-")
        try:
            with contextlib.closing(stream):
                if info.size > cap:
                    raise exceeded("ADMIN_OBJECT", f"{what} of {info.size} bytes", self.display)
                copied = 0
                while True:
                    chunk = stream.read(1 << 20)
                    if not chunk:
                        break
                    copied += len(chunk)
                    if copied > cap:
                        raise exceeded("ADMIN_OBJECT", f"{what} (more bytes than its declared size)", self.display)
                    tmp.write(chunk)
        except BaseException:
            tmp.close()
            raise
        # Kept only when the etag names exactly these bytes: a copy of another length than the
        # read declared is not kept (a HEAD could not tell it from the object).
        keep = info.etag is not None and copied == info.size and name not in self._admin_copies
        entry = _AdminCopy(tmp, info.etag, copied, in_use=True)
        if keep:
            self._admin_copies[name] = entry
        try:
            tmp.seek(0)
            yield tmp, info.etag
        finally:
            entry.in_use = False
            if not keep:
                tmp.close()

    def history(self) -> History:
        """history.txt's records (parsed once per version read: see _admin_copy)."""
        with self._admin_copy(adm.HISTORY) as (f, _etag):
            if f is None:
                return History({}, 0)
            kept = self._admin_copies.get(adm.HISTORY)
            if kept is not None and kept.file is f:
                if kept.parsed is None:
                    kept.parsed = parse_history_stream(f)
                return kept.parsed
            return parse_history_stream(f)

    def iter_server(self) -> Iterator[str]:
        """server.txt's lines, streamed from a temp copy."""
        with self._admin_copy(adm.SERVER) as (f, _etag):
            if f is not None:
                yield from adm.iter_stream_lines(f, what=adm.SERVER)

    def server_lines(self) -> list[str]:
        return list(self.iter_server())

    def _rewrite_admin(self, name: str, change) -> bool:
        """Compare-and-swap of a large admin object without holding it: ``change(old file or None,
        out file) -> bool`` writes the new content to ``out`` (True) or declines (False); the
        result is uploaded from its temp file on the condition that the old etag still holds."""
        key = _admin(name)
        for attempt in range(MAX_CAS_ATTEMPTS):
            with self._admin_copy(name) as (old, etag), \
                    tempfile.NamedTemporaryFile(prefix="symtool-admin-new-") as out:
                if not change(old, out):
                    return False
                out.flush()
                if old is None:
                    ok = self.backend.put(key, Path(out.name), if_none_match=True)
                else:
                    ok = self.backend.put(key, Path(out.name), if_match=etag)
            if ok is not None:
                return True
            _backoff(attempt)
        raise StoreError(f"gave up updating {key} after {MAX_CAS_ATTEMPTS} concurrent changes", self.display)

    def read_claim(self, n: int) -> Claim | None:
        blob = self.backend.get(_admin(adm.format_id(n)))
        if blob is None:
            return None
        return self._parse_claim(adm.format_id(n), blob.data, blob.metadata)

    @staticmethod
    def _parse_claim(txn_id: str, data: bytes, meta: dict) -> Claim:
        meta = {k.lower(): v for k, v in (meta or {}).items()}
        line = _unb64(meta.get(META_LINE, ""))
        deleted = meta.get(META_DEL, "")
        entries = []
        for ln in adm.split_lines(data):
            try:
                entries.append(adm.parse_entry(ln))
            except (FormatError, UnsafeNameError):
                continue
        return Claim(txn_id, line, entries, meta.get(META_REFS, ""), deleted if adm.ID_RE.match(deleted) else "")

    def entries_of(self, txn_id: str) -> list[adm.TxnEntry]:
        for name in (txn_id, txn_id + adm.DELETED_SUFFIX):
            blob = self.backend.get(_admin(name))
            if blob is not None:
                return self._parse_claim(txn_id, blob.data, {}).entries
        return []

    # -- rolling forward ----------------------------------------------------------------------

    def pending(self, hist: History | None = None) -> list[Claim]:
        hist = hist or self.history()
        out = []
        n = hist.last + 1
        while True:
            c = self.read_claim(n)
            if c is None:
                return out
            out.append(c)
            n += 1

    def _refs_of(self, c: Claim) -> list[tuple[adm.TxnEntry, str, str]]:
        """(entry, kind, form) for every entry of an add claim."""
        out = []
        codes = c.refs if len(c.refs) == 2 * len(c.entries) else ""
        for i, e in enumerate(c.entries):
            if codes:
                kind = _CODE_KIND.get(codes[2 * i], "pri")
                form = _CODE_FORM.get(codes[2 * i + 1], PLAIN)
            else:
                kind, form = self._kind_form(e)
            out.append((e, kind, form))
        return out

    def _kind_form(self, e: adm.TxnEntry) -> tuple[str, str]:
        for form in (PLAIN, COMPRESSED):
            info = self.backend.head(self.payload_key(e.name, e.index, form))
            if info is not None:
                meta = {k.lower(): v for k, v in info.metadata.items()}
                kind = meta.get(META_KIND) or ("pri" if e.name.lower().endswith(".pdb") else "bin")
                return kind, form
        return ("pri" if e.name.lower().endswith(".pdb") else "bin"), PLAIN

    def _ref_lines(self, c: Claim) -> list[tuple[str, str]]:
        """(refs.ptr key, line) for every entry of an add claim."""
        rec = adm.parse_admin_line(c.line)
        ref = rec.ref if rec is not None else "file"
        return [(self.refs_key(e.name, e.index),
                 adm.format_ref_line(c.id, "ptr" if form == POINTER else ref, e.source, kind, form == COMPRESSED))
                for e, kind, form in self._refs_of(c)]

    def _fix_refs(self, add: dict[str, list[tuple[str, str]]], drop: dict[str, set[str]]) -> None:
        """One compare-and-swap per refs.ptr: append ``add[key]`` lines ((id, line), in id
        order) whose id has no line yet, drop the lines of the ids in ``drop[key]``."""
        def fix(key: str) -> None:
            gone = drop.get(key, set())

            def change(old):
                if old is None and not add.get(key):
                    return None
                lines = adm.split_lines(old or b"")
                keep = [ln for ln in lines if (r := adm.parse_ref_line(ln)) is None or r.id not in gone]
                have = {r.id for ln in keep if (r := adm.parse_ref_line(ln)) is not None}
                for txn, line in add.get(key, []):
                    if txn not in have and txn not in gone:
                        keep.append(line)
                        have.add(txn)
                return adm.refs_bytes(keep) if keep != lines or old is None else None

            self.update(key, change, likely_missing=key in self._created_refs)

        keys = sorted(set(add) | set(drop))
        if len(keys) > 1:
            with ThreadPoolExecutor(max_workers=min(8, len(keys))) as pool:
                list(pool.map(fix, keys))
        elif keys:
            fix(keys[0])

    def _rename_deleted(self, txn_id: str) -> None:
        blob = self.backend.get(_admin(txn_id))
        if blob is None:
            return
        self.backend.put(_admin(txn_id + adm.DELETED_SUFFIX), blob.data, metadata=blob.metadata, if_none_match=True)
        self.backend.delete(_admin(txn_id))

    def _fix_server(self, extra: list[Claim]) -> None:
        """server.txt: add the lines of ``extra`` add claims, drop every deleted id
        (history.txt read *after* server.txt, see the module docstring)."""
        def change(old, out) -> bool:
            hist = self.history()
            gone = hist.deleted | {c.deleted_id for c in extra if c.is_del}
            have = set()
            changed = False
            kept = 0
            for ln in (adm.iter_stream_lines(old, what=adm.SERVER) if old is not None else ()):
                rec = adm.parse_admin_line(ln)
                if rec is not None and rec.id in gone:
                    changed = True
                    continue
                if rec is not None:
                    have.add(rec.id)
                out.write(adm.server_bytes([ln]))
                kept += 1
            for c in extra:
                if not c.is_del and c.line and c.id not in have and c.id not in gone:
                    out.write(adm.server_bytes([c.line]))
                    have.add(c.id)
                    changed = True
                    kept += 1
            return changed or (old is None and kept > 0)

        self._rewrite_admin(adm.SERVER, change)

    def roll_forward(self) -> list[str]:
        """Finish every claimed transaction (see the module docstring); the ids finished."""
        hist = self.history()
        claims = self.pending(hist)
        if not claims:
            return []
        add: dict[str, list[tuple[str, str]]] = {}
        drop: dict[str, set[str]] = {}
        for c in claims:
            if c.is_del:
                for e in self.entries_of(c.deleted_id):
                    drop.setdefault(self.refs_key(e.name, e.index), set()).add(c.deleted_id)
                self._rename_deleted(c.deleted_id)
            else:
                for key, line in self._ref_lines(c):
                    add.setdefault(key, []).append((c.id, line))
        self._fix_refs(add, drop)
        self._fix_server(claims)

        def change(old, out) -> bool:
            h = parse_history_stream(old) if old is not None else History({}, 0)
            add = [c for c in claims if c.id not in h.records and int(c.id) > h.last]
            if not add:
                return False
            new = [c.line or adm.format_del_line(c.id, c.deleted_id) for c in add]
            if old is None:
                out.write(adm.history_bytes(new))
                return True
            # The old bytes as they are, then the new lines: what history_bytes(old + new) writes.
            old.seek(0)
            shutil.copyfileobj(old, out, 1 << 20)
            out.write((adm.CRLF.encode() if h.ends_open else b"") + adm.server_bytes(new))
            return True

        wrote = self._rewrite_admin(adm.HISTORY, change)
        if any(c.is_del for c in claims):
            self._fix_server([])
            for c in claims:
                if c.is_del:
                    self.backend.delete(_admin(c.id))
        if wrote:  # else whoever wrote those history lines moves lastid.txt past them
            top = max(int(c.id) for c in claims)
            self.update(_admin(adm.LASTID), lambda old: self._lastid(old, top))
        return [c.id for c in claims]

    @staticmethod
    def _lastid(old: bytes | None, top: int) -> bytes | None:
        text = (old or b"").decode("ascii", "replace").strip()
        if text.isdigit() and int(text) >= top:
            return None
        return adm.format_id(top).encode("ascii")

    def ensure_pingme(self) -> None:
        if not self._pingme and self.backend.head(PINGME) is None:
            self.backend.put(PINGME, b"", if_none_match=True)
        self._pingme = True

    # -- publishing ---------------------------------------------------------------------------

    def upload(self, item: PublishItem, form: str, force: bool = False, sample: str | None = None) -> str:
        """Store one payload create-only; "added", "present", or "refused" (other bytes under
        this key and not ``force``).  ``sample``: the file's sample_hash, when known."""
        size = item.size or item.path.stat().st_size
        sample = sample or sample_hash(item.path, size)
        key = self.payload_key(item.name, item.index, form)
        meta = {META_SIZE: str(size), META_SAMPLE: sample, META_KIND: item.kind}

        def same(info) -> bool:
            m = {k.lower(): v for k, v in (info.metadata or {}).items()}
            return m.get(META_SIZE) == str(size) and m.get(META_SAMPLE) == sample

        info = self.backend.head(key)
        if info is not None and same(info):
            return "present"
        if info is not None and not force:
            return "refused"
        body = item.path
        tmp = None
        try:
            if form == COMPRESSED:
                import tempfile

                from symtool.formats.cab import compress_to_cab

                fd, tmp = tempfile.mkstemp(prefix="symtool-cab-")
                with os.fdopen(fd, "wb") as out:
                    compress_to_cab(item.path, out, item.name)
                body = Path(tmp)
            for attempt in range(20):
                if info is None:
                    if self.backend.put(key, body, metadata=meta, if_none_match=True) is not None:
                        return "added"
                else:  # same key, other bytes: replace (a PDB before and after source indexing)
                    if self.backend.put(key, body, metadata=meta, if_match=info.etag) is not None:
                        return "added"
                info = self.backend.head(key)
                if info is not None and same(info):
                    return "present"
                if info is not None and not force:
                    return "refused"
                _backoff(attempt)
            raise StoreError("payload kept changing under concurrent writers", self.backend.url(key))
        finally:
            if tmp is not None:
                platform.unlink(tmp)

    def published_as(self, digest: str, product: str, version: str, comment: str) -> str | None:
        """The newest live add transaction with this product, version and comment, if its
        claim records the publish set ``digest``: two requests, whatever the file count."""
        hist = self.history()
        for txn_id in reversed(hist.live()):
            rec = hist.records[txn_id]
            if (rec.product, rec.version, rec.comment) != (product, version, comment):
                continue
            info = self.backend.head(_admin(txn_id))
            meta = {k.lower(): v for k, v in ((info.metadata or {}) if info else {}).items()}
            return txn_id if meta.get(META_SET) == digest else None
        return None

    def _forms_and_digest(self, items: list[PublishItem], compress: bool, product: str, version: str,
                          comment: str) -> tuple[dict[int, str], dict[int, str], str]:
        from symtool.formats.cab import MAX_CAB_INPUT

        forms = {id(i): (COMPRESSED if compress and i.size <= MAX_CAB_INPUT else PLAIN) for i in items}
        sizes, samples = {}, {}
        for i in items:
            st = i.path.stat()
            sizes[id(i)] = i.size or st.st_size
            key = (str(i.path), sizes[id(i)], st.st_mtime_ns)  # find_published then publish: read once
            if key not in self._samples:
                self._samples[key] = sample_hash(i.path, sizes[id(i)])
            samples[id(i)] = self._samples[key]
        digest = publish_set_digest([(i.name, i.index, forms[id(i)], sizes[id(i)], samples[id(i)]) for i in items],
                                    product, version, comment)
        return forms, samples, digest

    def find_published(self, items: list[PublishItem], *, product: str = "", version: str = "", comment: str = "",
                       compress: bool = False) -> tuple[str, list[tuple[PublishItem, str, str]]] | None:
        """``publish --skip-published``: (id, [(item, "present", form)]) of the newest live
        transaction of this product, version and comment when it holds exactly these files
        (same keys, forms, sizes and sampled bytes, by the digest its claim records), else None."""
        forms, _samples, digest = self._forms_and_digest(items, compress, product, version, comment)
        txn_id = self.published_as(digest, product, version, comment)
        return None if txn_id is None else (txn_id, [(i, "present", forms[id(i)]) for i in items])

    def publish(self, items: list[PublishItem], *, product: str = "", version: str = "", comment: str = "",
                compress: bool = False, dry_run: bool = False, force: bool = False
                ) -> tuple[str | None, list[tuple[PublishItem, str, str]]]:
        """Publish ``items``; (transaction id, [(item, status, form)]).  A key stored with other
        bytes is "refused" unless ``force`` (then replaced by compare-and-swap); refused items
        are left out of the transaction, and no transaction is made when nothing is left.
        The claim records the set's digest for a later ``find_published``."""
        forms, samples, digest = self._forms_and_digest(items, compress, product, version, comment)
        if dry_run:
            out = []
            for item in items:
                info = self.backend.head(self.payload_key(item.name, item.index, forms[id(item)]))
                out.append((item, "present" if info is not None else "would-add", forms[id(item)]))
            return None, out
        self.probe()
        with ThreadPoolExecutor(max_workers=min(8, max(1, len(items)))) as pool:
            statuses = list(pool.map(lambda i: self.upload(i, forms[id(i)], force, samples[id(i)]), items))
        results = [(i, s, forms[id(i)]) for i, s in zip(items, statuses)]
        self._created_refs = {self.refs_key(i.name, i.index) for i, s in zip(items, statuses) if s == "added"}
        items = [i for i, s in zip(items, statuses) if s != "refused"]
        statuses = [s for s in statuses if s != "refused"]
        if not items:
            return None, results
        entries = [adm.TxnEntry(*self.spell(i.name, i.index), adm.to_record(str(i.path.resolve()))) for i in items]
        line_text = adm.format_add_line("{ID}", "file", time.time(), product, version, comment)
        refs = "".join(_KIND_CODE.get(i.kind, "r") + _FORM_CODE[forms[id(i)]] for i in items)
        data = adm.txn_file_bytes(entries)
        # The line carries its own id: filled in once the id is known.
        meta = {META_REFS: refs} if len(items) <= MAX_REFS_META else {}
        if len(items) == len(results):  # the digest describes the whole set only when nothing was refused
            meta[META_SET] = digest
        txn_id = self.claim(data, line_text, meta)
        self.roll_forward()
        self.ensure_pingme()
        # A repair racing with us may have removed a payload we found present: put it back.
        for item, status in zip(items, statuses):
            if status == "present" and self.backend.head(self.payload_key(item.name, item.index,
                                                                          forms[id(item)])) is None:
                self.upload(item, forms[id(item)], force, samples[id(item)])
        self.copy_debuginfod_views([(i, forms[id(i)]) for i in items])
        return txn_id, results

    def copy_debuginfod_views(self, entries: list[tuple[PublishItem, str]]) -> list[str]:
        """The debuginfod view of committed ELF entries: a copy of each payload at
        ``debuginfod/buildid/<id>/{executable,debuginfo,dwp}`` (object storage has no
        symlinks; S3 copies server-side), so ``DEBUGINFOD_URLS=<public URL>/debuginfod``
        serves gdb and debuginfod-find.  Returns the view keys written."""
        from symtool.store.native import debuginfod_view_key

        todo = []
        for item, form in entries:
            view = debuginfod_view_key(item.name, item.index)
            if view is None or form != PLAIN:
                continue
            size = item.size or item.path.stat().st_size
            info = self.backend.head(view)
            if info is None or info.size != size:
                todo.append((self.payload_key(item.name, item.index, PLAIN), view))
        for src, view in todo:
            self.backend.copy(src, view)
        return [view for _src, view in todo]

    def claim(self, data: bytes, line_template: str, extra_meta: dict) -> str:
        """Take the next id by a create-only write of ``000Admin/<id>`` (``data``; the line,
        ``line_template`` with ``{ID}`` filled in, and ``extra_meta`` in its metadata), starting
        after history.txt's last id.  A claim of an id history.txt already holds otherwise
        (we stalled while it was used) is withdrawn and taken again."""
        for _round in range(100):
            n = self.history().last + 1
            for _step in range(MAX_CLAIM_STEPS):
                txn_id = adm.format_id(n)
                line = line_template.replace("{ID}", txn_id, 1)
                meta = {META_LINE: _b64(line), **extra_meta}
                if self.backend.put(_admin(txn_id), data, metadata=meta, if_none_match=True):
                    break
                n += 1
            else:
                raise StoreError(f"no free transaction id after {MAX_CLAIM_STEPS} tries", self.display)
            rec = self.history().records.get(txn_id)
            if rec is None or rec.raw == line:
                return txn_id
            self.backend.delete(_admin(txn_id))
        raise StoreError("could not claim a transaction id", self.display)

    # -- administration -------------------------------------------------------------------------

    def require(self) -> None:
        if next(iter(self.backend.list("")), None) is None:
            raise StoreError("no symbol store here (nothing under this prefix)", self.display)

    def live(self) -> dict[str, adm.AdminLine]:
        out: dict[str, adm.AdminLine] = {}
        for line in self.server_lines():
            rec = adm.parse_admin_line(line)
            if rec is not None and rec.op == "add" and rec.id not in out:
                out[rec.id] = rec
        return out

    def list_transactions(self, include_deleted: bool = False) -> list[dict]:
        from symtool.store.manage import record_json

        self.require()
        if not include_deleted:
            return [record_json(r) for r in self.live().values()]
        hist = self.history()
        deleted_by = {r.deleted_id: r.id for r in hist.records.values() if r.op == "del"}
        out = []
        for rec in hist.records.values():
            if rec.op == "add":
                d = record_json(rec)
                d["deleted_by"] = deleted_by.get(rec.id)
                out.append(d)
        return out

    def show_transaction(self, txn_id: str) -> dict:
        from symtool.store.manage import record_json

        self.require()
        txn_id = adm.normalize_id(txn_id)
        rec = self.live().get(txn_id)
        state = "live"
        if rec is None:
            state = "deleted"
            r = self.history().records.get(txn_id)
            rec = r if r is not None and r.op == "add" else None
        entries = self.entries_of(txn_id)
        if rec is None and not entries:
            raise NotFoundError(f"no transaction {txn_id}", self.display)
        files = []
        for e in entries:
            form = next((f for f in (PLAIN, COMPRESSED)
                         if self.backend.head(self.payload_key(e.name, e.index, f)) is not None), None)
            files.append({"name": e.name, "index": e.index, "key": f"{e.name}/{e.index}/{e.name}",
                          "source": e.source, "stored_as": form})
        out = record_json(rec) if rec else {"id": txn_id, "op": "add"}
        out.update({"state": state, "files": files, "problems": []})
        return out

    def delete(self, ids: list[str], dry_run: bool = False):
        """``symstore del`` for each id: a del claim, rolled forward at once.  Payloads stay
        until ``store verify --repair`` (grace period)."""
        from symtool.store.manage import DeleteReport

        self.require()
        ids = [adm.normalize_id(i) for i in ids]
        report = DeleteReport(dry_run=dry_run)
        self.roll_forward()
        live = self.live()
        for tid in ids:
            if tid not in live:
                if tid in self.history().deleted:
                    raise NotFoundError(f"transaction {tid} is already deleted", self.display)
                raise NotFoundError(f"no live transaction {tid} (see `symtool store list`)", self.display)
        if dry_run:
            report.deleted = ids
            return report
        self.probe()
        for tid in ids:
            del_id = self.claim(b"", adm.format_del_line("{ID}", tid), {META_DEL: tid})
            self.roll_forward()
            report.deleted.append(tid)
            report.del_ids.append(del_id)
            report.kept.extend(f"{e.name}/{e.index}/{e.name}" for e in self.entries_of(tid))
        return report

    def prune(self, keep_last: int | None, older_than_days: float | None, dry_run: bool = False):
        from symtool.store.manage import DeleteReport, prune_selection

        if (keep_last is None) == (older_than_days is None):
            raise UsageError("prune needs exactly one of --keep-last N or --older-than DAYS")
        self.roll_forward()
        live = self.live()
        doomed = prune_selection(live, keep_last, older_than_days)
        if dry_run or not doomed:
            return DeleteReport(deleted=doomed, dry_run=dry_run)
        return self.delete(doomed)

    # -- verify / repair ----------------------------------------------------------------------

    def verify(self, repair: bool = False, environ: dict | None = None):
        """Check the store; with ``repair`` roll forward, fix records, and remove what no live
        transaction references once it is older than the grace period."""
        from symtool.store.native import debuginfod_view_key
        from symtool.store.repair import Finding, VerifyReport

        report = VerifyReport(self.display)
        grace = grace_seconds(environ)
        now = time.time()
        self.require()

        def find(kind, path, message, fixed):
            report.findings.append(Finding(kind, path, message, fixed))

        pend = self.pending()
        if pend:
            if repair:
                self.probe()
                self.roll_forward()
            find("unfinished-transaction", f"{ADMIN_DIR}/{pend[0].id}",
                 f"{len(pend)} claimed transaction(s) not yet in history.txt", repair)
        hist = self.history()
        live_ids = hist.live()
        # server.txt: exactly the live adds, in id order
        want_server = [hist.records[i].raw for i in live_ids]
        if not _same_lines(self.iter_server(), want_server):
            if repair:
                self._rewrite_admin(adm.SERVER, self._server_from)
            find("server-txt", f"{ADMIN_DIR}/{adm.SERVER}", "server.txt does not list exactly the live transactions",
                 repair)
        # lastid.txt
        blob = self.backend.get(_admin(adm.LASTID))
        text = blob.data.decode("ascii", "replace") if blob else ""
        if hist.last and (not text.isdigit() or int(text) < hist.last or len(text) != 10):
            if repair:
                self.update(_admin(adm.LASTID), lambda old: adm.format_id(max(hist.last, int(old) if (old or b"").isdigit() else 0)).encode("ascii"))
            find("lastid", f"{ADMIN_DIR}/{adm.LASTID}", f"lastid.txt {text[:12]!r} is behind {adm.format_id(hist.last)}",
                 repair)
        objects = {o.key: o for o in self.backend.list("")}
        referenced: set[str] = set()  # entry dirs of live transactions
        views: dict[str, str] = {}  # debuginfod view key -> the live payload it copies
        live_set = set(live_ids)
        # transaction objects
        for tid in live_ids:
            key = _admin(tid)
            if key not in objects:
                find("missing-transaction-file", key, "live transaction has no transaction file", False)
                continue
            c = self.read_claim(int(tid))
            c.line = c.line or hist.records[tid].raw
            for e, kind, form in self._refs_of(c):
                d = self.entry_dir(e.name, e.index)
                referenced.add(d)
                report.checked_files += 1
                if not any(f"{d}/{form_file_name(self.spell(e.name, e.index)[0], f)}" in objects
                           for f in (PLAIN, COMPRESSED, POINTER)):
                    find("missing-data", d, f"transaction {tid} lists it; no data stored", False)
                view = debuginfod_view_key(e.name, e.index)
                if view is not None and form == PLAIN:
                    views[view] = self.payload_key(e.name, e.index, PLAIN)
                refs = self.backend.get(f"{d}/{REFS}")
                ids = {r.id for ln in adm.split_lines(refs.data if refs else b"")
                       if (r := adm.parse_ref_line(ln)) is not None}
                if tid not in ids:
                    if repair:
                        one = Claim(tid, c.line, [e], _KIND_CODE.get(kind, "r") + _FORM_CODE[form])
                        self._fix_refs({k: [(tid, ln)] for k, ln in self._ref_lines(one)}, {})
                    find("refs-missing-line", f"{d}/{REFS}", f"no line for live transaction {tid}", repair)
        report.live_transactions = len(live_ids)
        # refs.ptr lines of transactions that are not live
        for key in [k for k in objects if k.endswith("/" + REFS)]:
            blob = self.backend.get(key)
            if blob is None:
                continue
            lines = adm.split_lines(blob.data)
            bad = [ln for ln in lines if (r := adm.parse_ref_line(ln)) is None or r.id not in live_set]
            if bad:
                if repair:
                    self.update(key, lambda old: adm.refs_bytes(
                        [ln for ln in adm.split_lines(old or b"")
                         if (r := adm.parse_ref_line(ln)) is not None and r.id in live_set]) if old else None)
                find("refs-stale-line", key, f"{len(bad)} line(s) of no live transaction", repair)
        # 000Admin objects
        for key, o in objects.items():
            if not key.startswith(ADMIN_DIR + "/"):
                continue
            name = key[len(ADMIN_DIR) + 1:]
            old = o.modified is not None and now - o.modified > grace
            if name.startswith("symtool-probe-"):
                if old or repair:
                    if repair:
                        self.backend.delete(key)
                    find("probe-object", key, "left by an interrupted capability probe", repair)
            elif adm.ID_RE.match(name) and int(name) <= hist.last:
                rec = hist.records.get(name)
                if rec is not None and rec.op == "del" or name in hist.deleted:
                    if repair:
                        if rec is not None and rec.op == "del":
                            self.backend.delete(key)
                        else:
                            self._rename_deleted(name)
                    find("deleted-transaction-file", key, "deleted transaction not renamed / del claim left",
                         repair)
                elif rec is None and old:
                    if repair:
                        self.backend.delete(key)
                    find("withdrawn-claim", key, "claim of an id already used", repair)
        # the debuginfod view: a copy of each live ELF payload, of the same size
        for view, src in sorted(views.items()):
            if src in objects and (view not in objects or objects[view].size != objects[src].size):
                if repair:
                    self.backend.copy(src, view)
                find("debuginfod-view", view, "missing or stale copy of " + src, repair)
        # payloads no live transaction references (and view copies of them)
        for key, o in objects.items():
            if key.startswith(ADMIN_DIR + "/") or key in (PINGME, INDEX2) or "/" not in key or key in views:
                continue
            d = key.rsplit("/", 1)[0]
            if d in referenced:
                continue
            young = o.modified is None or now - o.modified < grace
            if young:
                report.in_progress += 1
                continue
            if repair:
                self.backend.delete(key)
            find("unreferenced-file", key, "no live transaction references it", repair)
        if PINGME not in objects and live_ids:
            if repair:
                self.ensure_pingme()
            find("pingme", PINGME, "pingme.txt missing", repair)
        return report

    def _server_from(self, old: BinaryIO | None, out: BinaryIO) -> bool:
        """server.txt made from history.txt's live adds (False: it already is that)."""
        hist = self.history()
        want = [hist.records[i].raw for i in hist.live()]
        if old is not None and _same_lines(adm.iter_stream_lines(old, what=adm.SERVER), want):
            return False
        out.write(adm.server_bytes(want))
        return True

    # -- reading symbols ----------------------------------------------------------------------------

    def locate(self, name: str, index: str):
        """The first of :func:`~symtool.store.layout.candidates` stored here: (candidate,
        object info), or None.  A ``file.ptr`` is returned as found (its target is read by the caller)."""
        from symtool.store.layout import candidates

        for cand in candidates(name, index, self.two_tier()):
            info = self.backend.head(cand.rel)
            if info is not None:
                return cand, info
        return None

    def download(self, key: str, dest: Path, limit: int | None = None, progress=None) -> int:
        """Stream object ``key`` into ``dest``; its size.  StoreError over ``limit`` bytes."""
        stream = self.backend.open_read(key)
        if stream is None:
            raise StoreError("vanished while being read", self.backend.url(key))
        done = 0
        try:
            with open(dest, "wb") as out:
                while True:
                    buf = stream.read(1 << 20)
                    if not buf:
                        break
                    done += len(buf)
                    if limit is not None and done > limit:
                        raise StoreError(f"over the size limit of {limit} bytes", self.backend.url(key))
                    out.write(buf)
                    if progress is not None:
                        progress(len(buf))
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        return done

    def init(self) -> bool:
        """``store init``: pingme.txt (the rest appears with the first publish)."""
        created = self.backend.head(PINGME) is None
        self.ensure_pingme()
        return created


def open_store(location: str, key_case: str = "exact", config: dict | None = None) -> ObjectStore:
    """The :class:`ObjectStore` at ``s3://…`` / ``azblob://…``; ``config`` defaults to
    ``[workspace.metadata.symtool]`` of the workspace around the current directory."""
    from symtool.store.backends import open_backend

    if config is None:
        from symtool.errors import ConfigError
        from symtool.settings import load_settings

        try:
            config = load_settings().raw
        except ConfigError:
            config = {}
    return ObjectStore(open_backend(location, config), key_case)
