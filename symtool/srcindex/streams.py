"""The texts written into the PDB: ``srcsrv`` (VERSION=2) and Source Link JSON.

srcsrv (Microsoft's "Language specification" for source server): CRLF line
ends, each entry ``path*target`` in the source files section, and
``SRCSRVTRG=%var2%`` with no ``SRCSRVCMD``: the debugger fetches ``var2``
over HTTP itself (or opens it as a path).  ``%`` starts a variable in srcsrv,
so a literal ``%`` (percent-encoded URLs) is written ``%%``.  ``*`` separates
fields and cannot be escaped: paths or targets holding one are left out.

Reading (``symtool stack``'s source URLs) takes any indexer's text, as
srcsrv.dll does: ``%name%`` variables of the variables section and
``%var1%``..``%var10%`` (the entry's fields) expand recursively, with the
functions ``%fnvar%(x)``, ``%fnbksl%(x)`` and ``%fnfile%(x)``; the target of
an entry is its expanded ``SRCSRVTRG``.  Names only the debugger knows
(``%targ%``, its local source cache) are left as written.  Hostile text is
bounded: stream size, fields per entry, expansion depth, steps and length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_STREAM_TEXT = 32 << 20  # bytes of a srcsrv or sourcelink stream read (real ones: a few MB)
MAX_FIELDS = 10  # var1..var10
MAX_EXPANSION = 8192  # characters of one expanded target
MAX_DEPTH = 16  # nested variables / function calls
MAX_STEPS = 20000  # variables and functions expanded for one target
MAX_DOCUMENTS = 1 << 20  # Source Link documents kept

SRCSRV_INI = "SRCSRV: ini ------------------------------------------------"
SRCSRV_VARIABLES = "SRCSRV: variables ------------------------------------------"
SRCSRV_FILES = "SRCSRV: source files ---------------------------------------"
SRCSRV_END = "SRCSRV: end ------------------------------------------------"


def srcsrv_escape(text: str) -> str:
    return text.replace("%", "%%")


def representable(path: str, target: str) -> bool:
    return not any(c in s for s in (path, target) for c in "*\r\n\0")


def srcsrv_text(entries: list[tuple[str, str]], tool: str = "symtool") -> str:
    lines = [SRCSRV_INI, "VERSION=2", "INDEXVERSION=2", "VERCTRL=http", SRCSRV_VARIABLES,
             f"SRCSRV_INDEXER={tool}", "SRCSRVTRG=%var2%", SRCSRV_FILES]
    for path, target in entries:
        lines.append(f"{srcsrv_escape(path)}*{srcsrv_escape(target)}")
    lines.append(SRCSRV_END)
    return "\r\n".join(lines) + "\r\n"


def sourcelink_text(entries: list[tuple[str, str]]) -> str:
    docs = {path: url for path, url in entries if url.startswith(("http://", "https://"))}
    import json  # (only writing Source Link needs it: readers of this module load no JSON encoder)

    return json.dumps({"documents": docs}, indent=2, ensure_ascii=False)


def decode_stream_text(raw: bytes) -> str:
    """UTF-8 (with or without BOM) or, failing that, the ANSI code page pdbstr writes in."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


class _Unexpandable(Exception):
    """A target whose expansion is cyclic or too large: no URL."""


_NAME = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")
_FUNCTIONS = {
    "fnbksl": lambda s: s.replace("/", "\\"),
    "fnfile": lambda s: re.split(r"[/\\]", s)[-1],
}


def _is_windows_path(path: str) -> bool:
    return "\\" in path or bool(re.match(r"^[A-Za-z]:", path))


@dataclass
class SrcsrvIndex:
    """A parsed srcsrv text: its variables and its entries, by path."""

    variables: dict[str, str] = field(default_factory=dict)  # lower-case name -> raw value
    entries: dict[str, tuple[str, ...]] = field(default_factory=dict)  # path as listed -> raw fields
    folded: dict[str, str] = field(default_factory=dict)  # lower-case Windows path -> path as listed
    version: str | None = None

    def fields_of(self, path: str) -> tuple[str, ...] | None:
        """The entry of ``path`` as the PDB records it (case-insensitive for Windows paths)."""
        found = self.entries.get(path)
        if found is None and _is_windows_path(path):
            listed = self.folded.get(path.lower())
            found = self.entries.get(listed) if listed is not None else None
        return found

    def target(self, path: str) -> str | None:
        """The expanded ``SRCSRVTRG`` of ``path``; None when unlisted, or no target can be made."""
        fields = self.fields_of(path)
        if fields is None or "srcsrvtrg" not in self.variables:
            return None
        try:
            out = self.expand(self.variables["srcsrvtrg"], fields)
        except _Unexpandable:
            return None
        return out or None

    def items(self) -> list[tuple[str, str | None]]:
        """(path, target) of every entry, in the text's order."""
        return [(p, self.target(p)) for p in self.entries]

    def expand(self, template: str, fields: tuple[str, ...]) -> str:
        from symtool.budgets import limit

        steps = [0]
        # Characters scanned (text between % signs, argument lists looked through for their
        # ")"): an unclosed "%fnfile%(" repeated made each step scan to the end of the text,
        # quadratic in its length (900 KB: minutes). Bounded per target by SRCSRV_SCAN.
        scan = [0, limit("SRCSRV_SCAN")]

        def scanned(n: int) -> None:
            scan[0] += n
            if scan[0] > scan[1]:
                raise _Unexpandable("too many characters scanned")

        def value(name: str, depth: int) -> str | None:
            if name.startswith("var") and name[3:].isdigit():
                k = int(name[3:])
                if not 1 <= k <= MAX_FIELDS:
                    return None
                return run(fields[k - 1], depth + 1) if k <= len(fields) else ""
            raw = self.variables.get(name)
            return None if raw is None else run(raw, depth + 1)

        def run(text: str, depth: int) -> str:
            if depth > MAX_DEPTH:
                raise _Unexpandable("too deep")
            out: list[str] = []
            size = 0
            i = 0
            while i < len(text):
                j = text.find("%", i)
                scanned((len(text) if j < 0 else j) - i + 1)
                if j < 0:
                    piece, i = text[i:], len(text)
                elif j > i:
                    piece, i = text[i:j], j
                elif text.startswith("%%", j):
                    piece, i = "%", j + 2
                else:
                    m = _NAME.match(text, j)
                    if m is None:
                        piece, i = "%", j + 1
                    else:
                        steps[0] += 1
                        if steps[0] > MAX_STEPS:
                            raise _Unexpandable("too many steps")
                        name = m.group(1).lower()
                        i = m.end()
                        fn = _FUNCTIONS.get(name) if name != "fnvar" else "fnvar"
                        close = _closing_paren(text, i, scanned) if fn is not None else -1
                        if close > 0:
                            arg = run(text[i + 1:close], depth + 1)
                            i = close + 1
                            if fn == "fnvar":
                                piece = value(arg.lower(), depth)
                                piece = "" if piece is None else piece
                            else:
                                piece = fn(arg)
                        else:
                            got = value(name, depth)
                            piece = m.group(0) if got is None else got  # %targ% & co: the debugger's
                size += len(piece)
                if size > MAX_EXPANSION:
                    raise _Unexpandable("too long")
                out.append(piece)
            return "".join(out)

        return run(template, 0)


_PARENS = re.compile(r"[()]")


def _closing_paren(text: str, at: int, scanned=None) -> int:
    """The index of the ``)`` closing the ``(`` at ``at``; -1 when there is none.

    ``scanned(n)`` is told how many characters were looked through (the caller's budget)."""
    if not text.startswith("(", at):
        return -1
    depth = 0
    for m in _PARENS.finditer(text, at):
        if m.group() == "(":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                if scanned is not None:
                    scanned(m.end() - at)
                return m.start()
    if scanned is not None:
        scanned(len(text) - at)
    return -1


def read_srcsrv(text: str) -> SrcsrvIndex:
    """Parse a srcsrv text (any indexer's): sections by their ``SRCSRV:`` lines, never raises."""
    out = SrcsrvIndex()
    section = None
    for line in text.replace("\r\n", "\n").split("\n"):
        line = line.rstrip("\r")
        if line.startswith("SRCSRV:"):
            words = line.split()
            section = words[1].lower() if len(words) > 1 else None
            if section == "end":
                break
            continue
        if not line:
            continue
        if section in ("ini", "variables"):
            name, sep, value = line.partition("=")
            if sep and name.strip():
                if section == "ini":
                    if name.strip().upper() == "VERSION":
                        out.version = value.strip()
                else:
                    out.variables.setdefault(name.strip().lower(), value)
        elif section == "source":
            fields = tuple(line.split("*", MAX_FIELDS)[:MAX_FIELDS])
            path = fields[0].replace("%%", "%")
            if path and path not in out.entries:
                out.entries[path] = fields
                out.folded.setdefault(path.lower(), path)
    return out


def parse_srcsrv(text: str) -> list[tuple[str, str]]:
    """The (path, target) entries of a srcsrv text that have a target (expanded SRCSRVTRG)."""
    return [(p, t) for p, t in read_srcsrv(text).items() if t is not None]


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold(path: str) -> str:
    """Either separator, any case; as long as ``path`` (a prefix's length slices the original)."""
    p = path.replace("\\", "/")
    low = p.lower()
    return low if len(low) == len(p) else p.translate(_ASCII_LOWER)


@dataclass
class SourceLink:
    """A parsed Source Link JSON: exact documents and ``prefix*`` wildcards, matched
    case-insensitively with either separator; the longest matching prefix wins."""

    exact: dict[str, str] = field(default_factory=dict)  # folded path -> URL
    prefixes: list[tuple[str, str]] = field(default_factory=list)  # (folded prefix, URL with one *), longest first
    documents: int = 0

    def url(self, path: str) -> str | None:
        folded = _fold(path)
        found = self.exact.get(folded)
        if found is not None:
            return found
        for prefix, url in self.prefixes:
            if folded.startswith(prefix):
                rest = path[len(prefix):].replace("\\", "/")
                return url.replace("*", rest, 1)
        return None


def read_sourcelink(text: str) -> SourceLink:
    """Parse a Source Link JSON; malformed text, or entries, are ignored (never raises)."""
    import json

    out = SourceLink()
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return out
    docs = doc.get("documents") if isinstance(doc, dict) else None
    if not isinstance(docs, dict):
        return out
    for key, url in list(docs.items())[:MAX_DOCUMENTS]:
        if not isinstance(key, str) or not isinstance(url, str) or not key:
            continue
        out.documents += 1
        if key.endswith("*"):
            if "*" in key[:-1] or url.count("*") != 1:
                continue
            out.prefixes.append((_fold(key[:-1]), url))
        elif "*" not in key:
            out.exact.setdefault(_fold(key), url)
    out.prefixes.sort(key=lambda p: -len(p[0]))
    return out
