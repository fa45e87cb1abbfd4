"""``store query``: is a key (or a file's keys) in a local store, and which transactions added it?

symstore.exe's ``query`` answers the first half.  The second comes from
000Admin: every transaction file (live ``<id>`` and ``<id>.deleted``) that lists
the key, with the transaction's record from server.txt (live) or history.txt
(deleted).  Keys are matched case-insensitively, as symsrv does; where the file
is looked up is :func:`symtool.store.layout.lookup` (the one lookup order).

Local stores only (directories and shares): an HTTP server keeps no 000Admin a
client could read, and object-storage stores are not queried here.
"""

from __future__ import annotations

import re
from pathlib import Path

from symtool.errors import FormatError, UnsafeNameError, UsageError
from symtool.ids import check_file_name
from symtool.store import admin as adm
from symtool.store.layout import ADMIN_DIR, find_ci, lookup
from symtool.store.manage import record_json

_TXN_FILE = re.compile(r"^(\d{10})(\.deleted)?$")


def parse_key(text: str) -> tuple[str, str]:
    """(name, index) of ``name/INDEX/name``, ``name/INDEX`` or ``name\\INDEX`` (UsageError otherwise)."""
    parts = [p for p in re.split(r"[/\\]", text.strip())]
    if len(parts) == 3 and parts[0].lower() == parts[2].lower() or len(parts) == 2:
        name, index = parts[0], parts[1]
        try:
            check_file_name(name)
        except UnsafeNameError as err:
            raise UsageError(f"not a store key: {err.message}") from None
        if name and index and re.fullmatch(r"[0-9A-Za-z._-]+", index):
            return name, index
    raise UsageError(f"not a store key (name/INDEX/name) nor an existing file: {text!r}")


def transactions_with(store: Path, name: str, index: str) -> list[dict]:
    """Every transaction whose file lists ``name``/``index``, oldest first (live and deleted)."""
    admin_dir = find_ci(store, ADMIN_DIR)
    if admin_dir is None or not admin_dir.is_dir():
        return []  # a store without history (a symsrv cache, an rsync'd tree): nothing to say
    admin = adm.Admin(store)
    records: dict[str, adm.AdminLine] = {}
    for line in admin.iter_history():
        rec = adm.parse_admin_line(line)
        if rec is not None and rec.op == "add":
            records[rec.id] = rec
    live = admin.live()
    records.update(live)
    want = (name.lower(), index.upper())
    out = []
    for entry in sorted(admin_dir.iterdir()):
        m = _TXN_FILE.match(entry.name)
        if not m or not entry.is_file():
            continue
        entries, _problems = adm.read_txn_file(entry)
        if not any(e.key == want for e in entries):
            continue
        txn_id = m[1]
        rec = records.get(txn_id)
        row = record_json(rec) if rec else {"id": txn_id, "op": "add", "ref": None, "date": None, "time": None,
                                            "timestamp": None, "product": None, "version": None, "comment": None}
        row["state"] = "live" if txn_id in live and not m[2] else "deleted"
        out.append(row)
    return out


def query_key(store: Path, name: str, index: str) -> dict:
    """What the store holds for one key: found, the form and file, the transactions that added it."""
    try:
        found = lookup(store, name, index)
    except (UnsafeNameError, FormatError):
        found = None  # a hostile layout under the key: reported as not found, never followed
    usable = found is not None and found.form != "message"
    return {
        "key": f"{name}/{index}/{name}",
        "name": name,
        "index": index,
        "found": usable,
        "stored_as": found.form if usable else None,
        "path": str(found.path) if usable else None,
        "target": found.target if usable else None,
        "messages": list(found.messages) if found else [],
        "transactions": transactions_with(store, name, index),
    }


__all__ = ["parse_key", "transactions_with", "query_key"]
