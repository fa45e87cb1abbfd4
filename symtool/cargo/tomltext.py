"""Where things are in a TOML text: line numbers of keys and tables.

``tomllib`` and ``tomlkit`` do not report positions, but a finding must say
``Cargo.toml:12``.  This is a small, forgiving lexer over TOML text that
records every table header and every key (with its full dotted path and
line).  It runs only on text that ``tomllib`` already accepted, and on
anything it does not understand it stops early instead of failing, so the
worst case is a source without a line number.  Stdlib only.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

BOM = "\ufeff"
_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SIMPLE_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


@dataclass(frozen=True)
class Entry:
    """A table header (``kind`` "table"/"array") or a key/value (``kind`` "key")."""

    kind: str
    path: tuple[str, ...]  # full dotted path from the document root
    line: int  # 1-based
    start: int  # offset of the header / key
    end: int  # offset just after the header's ``]`` / the value
    value: int = -1  # offset of the value (keys only)
    inline: bool = False  # a key inside an inline table (``{ ... }``): no line of its own


class _Stop(Exception):
    pass


class _Lexer:
    def __init__(self, text: str):
        self.text = text
        self.n = len(text)
        self.pos = 0
        self.entries: list[Entry] = []
        self._newlines = [i for i, ch in enumerate(text) if ch == "\n"]

    def line_of(self, offset: int) -> int:
        return bisect.bisect_left(self._newlines, offset) + 1

    def peek(self, k: int = 0) -> str:
        i = self.pos + k
        return self.text[i] if i < self.n else ""

    def skip_ws(self) -> None:
        while self.pos < self.n and self.text[self.pos] in " \t":
            self.pos += 1

    def skip_ws_nl_comments(self) -> None:
        while self.pos < self.n:
            ch = self.text[self.pos]
            if ch in " \t\r\n":
                self.pos += 1
            elif ch == "#":
                self.skip_to_eol()
            else:
                return

    def skip_to_eol(self) -> None:
        nl = self.text.find("\n", self.pos)
        self.pos = self.n if nl < 0 else nl + 1

    # -- keys -------------------------------------------------------------
    def key(self) -> tuple[str, ...]:
        parts = []
        while True:
            self.skip_ws()
            ch = self.peek()
            if ch == '"':
                parts.append(self.basic_string())
            elif ch == "'":
                parts.append(self.literal_string())
            elif ch and ch in _BARE:
                start = self.pos
                while self.pos < self.n and self.text[self.pos] in _BARE:
                    self.pos += 1
                parts.append(self.text[start:self.pos])
            else:
                raise _Stop
            self.skip_ws()
            if self.peek() == ".":
                self.pos += 1
                continue
            return tuple(parts)

    def basic_string(self) -> str:
        self.pos += 1  # opening quote
        out = []
        while self.pos < self.n:
            ch = self.text[self.pos]
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch == "\n":
                raise _Stop
            if ch == "\\":
                esc = self.peek(1)
                if esc in _SIMPLE_ESCAPES:
                    out.append(_SIMPLE_ESCAPES[esc])
                    self.pos += 2
                elif esc in "uU":
                    width = 4 if esc == "u" else 8
                    digits = self.text[self.pos + 2:self.pos + 2 + width]
                    try:
                        out.append(chr(int(digits, 16)))
                    except ValueError:
                        raise _Stop from None
                    self.pos += 2 + width
                else:
                    raise _Stop
                continue
            out.append(ch)
            self.pos += 1
        raise _Stop

    def literal_string(self) -> str:
        end = self.text.find("'", self.pos + 1)
        nl = self.text.find("\n", self.pos + 1)
        if end < 0 or (0 <= nl < end):
            raise _Stop
        value = self.text[self.pos + 1:end]
        self.pos = end + 1
        return value

    # -- values -----------------------------------------------------------
    def multiline(self, quote: str) -> None:
        self.pos += 3
        while self.pos < self.n:
            if quote == '"' and self.text[self.pos] == "\\":
                self.pos += 2
                continue
            if self.text.startswith(quote * 3, self.pos):
                self.pos += 3
                extra = 0
                while extra < 2 and self.peek() == quote:  # """a"""" ends with a quote in the value
                    self.pos += 1
                    extra += 1
                return
            self.pos += 1
        raise _Stop

    def value(self, path: tuple[str, ...] | None) -> None:
        ch = self.peek()
        if self.text.startswith('"""', self.pos):
            self.multiline('"')
        elif self.text.startswith("'''", self.pos):
            self.multiline("'")
        elif ch == '"':
            self.basic_string()
        elif ch == "'":
            self.literal_string()
        elif ch == "[":
            self.pos += 1
            while True:
                self.skip_ws_nl_comments()
                if self.peek() == "]":
                    self.pos += 1
                    return
                if not self.peek():
                    raise _Stop
                self.value(None)  # keys inside arrays of inline tables are not addressable
                self.skip_ws_nl_comments()
                if self.peek() == ",":
                    self.pos += 1
        elif ch == "{":
            self.pos += 1
            while True:
                self.skip_ws()
                if self.peek() == "}":
                    self.pos += 1
                    return
                self.keyval(path, inline=True)
                self.skip_ws()
                if self.peek() == ",":
                    self.pos += 1
        elif ch:
            start = self.pos
            while self.pos < self.n and self.text[self.pos] not in ",]}#\r\n":
                self.pos += 1
            if self.pos == start:
                raise _Stop
        else:
            raise _Stop

    def keyval(self, table: tuple[str, ...] | None, inline: bool = False) -> None:
        start = self.pos
        key = self.key()
        path = None if table is None else table + key
        self.skip_ws()
        if self.peek() != "=":
            raise _Stop
        self.pos += 1
        self.skip_ws()
        value = self.pos
        self.value(path)
        if path is not None:
            self.entries.append(Entry("key", path, self.line_of(start), start, self.pos, value, inline))

    def run(self) -> list[Entry]:
        table: tuple[str, ...] = ()
        if self.text.startswith(BOM):
            self.pos = 1
        try:
            while True:
                self.skip_ws_nl_comments()
                if self.pos >= self.n:
                    break
                start = self.pos
                if self.peek() == "[":
                    array = self.peek(1) == "["
                    self.pos += 2 if array else 1
                    table = self.key()
                    close = "]]" if array else "]"
                    if not self.text.startswith(close, self.pos):
                        raise _Stop
                    self.pos += len(close)
                    self.entries.append(Entry("array" if array else "table", table, self.line_of(start), start, self.pos))
                else:
                    self.keyval(table)
                self.skip_ws()
                if self.peek() == "#":
                    self.skip_to_eol()
        except _Stop:
            pass
        return self.entries


def scan(text: str) -> list[Entry]:
    """Every header and key of ``text`` in document order (stops quietly at anything odd)."""
    return _Lexer(text).run()


def find_line(entries: list[Entry], keypath: tuple[str, ...]) -> int | None:
    """Line where ``keypath`` is written: the key itself, the inline table holding it, or its header."""
    best: Entry | None = None
    for entry in entries:
        if entry.kind == "key" and entry.path == keypath:
            return entry.line
        if entry.kind == "key" and keypath[:len(entry.path)] == entry.path:
            best = entry  # inside an inline table
        elif entry.kind == "table" and entry.path == keypath and best is None:
            best = entry
    return best.line if best else None


def newline_of(text: str) -> str:
    """The dominant line ending of ``text`` ("\\r\\n" or "\\n")."""
    crlf = text.count("\r\n")
    return "\r\n" if crlf and crlf >= text.count("\n") - crlf else "\n"
