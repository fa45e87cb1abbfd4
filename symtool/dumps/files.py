"""Which files are dumps, and when they were written (header time or ProcDump file name)."""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path
from typing import Iterable, Iterator

from symtool.errors import UsageError


# ProcDump: PROCESSNAME_EXCEPTIONCODE_YYMMDD_HHMMSS.dmp (the code part is absent for -ma dumps).
_PROCDUMP_RE = re.compile(
    r"^(?P<process>.+?)(?:_(?P<code>[0-9A-Fa-f]{8}))?_(?P<date>\d{6})_(?P<time>\d{6})(?:_\d+)?\.dmp$", re.I)


def parse_procdump_name(name: str) -> tuple[str, str | None, _dt.datetime] | None:
    """(process, exception code or None, local time) from a ProcDump file name."""
    m = _PROCDUMP_RE.match(name)
    if not m:
        return None
    try:
        when = _dt.datetime.strptime(m["date"] + m["time"], "%y%m%d%H%M%S")
    except ValueError:
        return None
    code = m["code"].upper() if m["code"] else None
    return m["process"], code, when


def dump_time(path: Path, header_timestamp: int | None) -> tuple[str | None, str | None]:
    """(ISO time, source): the header's TimeDateStamp (UTC), else the ProcDump name (local time)."""
    if header_timestamp:
        when = _dt.datetime.fromtimestamp(header_timestamp, _dt.timezone.utc).replace(tzinfo=None)
        return when.isoformat(), "header"
    parsed = parse_procdump_name(path.name)
    if parsed is not None:
        return parsed[2].isoformat(), "file name"
    return None, None


DUMP_SUFFIXES = (".dmp", ".mdmp")


def collect_dumps(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Dump files named on the command line, and ``*.dmp``/``*.mdmp`` under directories
    (recursively, sorted).  A path that does not exist is a UsageError."""
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = []
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in files:
                    # Regular files only: a FIFO named x.dmp would block the triage of the whole directory.
                    if f.lower().endswith(DUMP_SUFFIXES) and os.path.isfile(os.path.join(root, f)):
                        found.append(Path(root) / f)
            yield from sorted(found)
        elif p.exists():
            yield p
        else:
            raise UsageError("no such file or directory", p)


__all__ = ["collect_dumps", "dump_time", "parse_procdump_name", "DUMP_SUFFIXES"]
