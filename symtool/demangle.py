"""Readable names for mangled Rust symbols.

Rust's legacy mangling (``_ZN`` + length-prefixed path segments + ``17h<hash>`` +
``E``, Itanium-like) is what PDB public symbols (S_PUB32) of Rust programs
carry.  Procedure names in PDBs are already readable; this is for the public
symbol that names an address no procedure record covers.

The names come from PDBs, which anyone can craft: the demangler makes one pass
over its input (no regular expressions that can backtrack), refuses inputs
longer than :data:`MAX_MANGLED` and caps its output at :data:`MAX_DEMANGLED`.
"""

from __future__ import annotations

# Longer mangled names are returned as they are: real ones stay far below.
MAX_MANGLED = 64 * 1024
# A readable name longer than this is cut, with an ellipsis.
MAX_DEMANGLED = 1024
# Digits of one segment length: a segment of 10**6 characters cannot be real.
_MAX_LENGTH_DIGITS = 6

# Rust's legacy escapes inside a segment ($LT$ for <, ...); `$uXX$` is any
# code point in hex.
_ESCAPES = {"LT": "<", "GT": ">", "LP": "(", "RP": ")", "RF": "&", "BP": "*", "SP": "@", "C": ","}


def _segments(body: str) -> list[str] | None:
    """The length-prefixed segments of ``body``, or None when it is not well formed."""
    parts: list[str] = []
    pos, end = 0, len(body)
    while pos < end:
        start = pos
        while pos < end and body[pos].isdigit() and body[pos].isascii() and pos - start < _MAX_LENGTH_DIGITS:
            pos += 1
        if pos == start or (pos < end and body[pos].isdigit()):
            return None
        length = int(body[start:pos])
        if length == 0 or pos + length > end:
            return None
        parts.append(body[pos:pos + length])
        pos += length
    return parts


def _unescape(segment: str) -> str:
    """One segment with ``$..$`` escapes and ``..`` (``::``) resolved, in one pass."""
    if segment.startswith("_$"):
        segment = segment[1:]
    out: list[str] = []
    i, end = 0, len(segment)
    while i < end:
        ch = segment[i]
        if ch == "$":
            close = segment.find("$", i + 1, i + 12)  # escapes are short: bounded search
            code = segment[i + 1:close] if close > 0 else ""
            if code in _ESCAPES:
                out.append(_ESCAPES[code])
                i = close + 1
                continue
            if code.startswith("u") and 1 < len(code) <= 7:
                try:
                    out.append(chr(int(code[1:], 16)))
                    i = close + 1
                    continue
                except ValueError:
                    pass
        elif ch == "." and segment.startswith("..", i):
            out.append("::")
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _is_hash(segment: str) -> bool:
    return len(segment) == 17 and segment[0] == "h" and all(c in "0123456789abcdef" for c in segment[1:])


def demangle(name: str) -> str:
    """Readable form of a Rust legacy-mangled name (``_ZN..17h<hash>E``); other names unchanged."""
    if len(name) > MAX_MANGLED or not name.endswith("E"):
        return name
    if name.startswith("_ZN"):
        body = name[3:-1]
    elif name.startswith("__ZN"):  # Mach-O adds an underscore
        body = name[4:-1]
    else:
        return name
    parts = _segments(body)
    if not parts:
        return name
    if _is_hash(parts[-1]):
        parts.pop()
    if not parts:
        return name
    readable = "::".join(_unescape(p) for p in parts)
    if len(readable) > MAX_DEMANGLED:
        readable = readable[:MAX_DEMANGLED - 1] + "…"
    return readable


__all__ = ["demangle", "MAX_DEMANGLED", "MAX_MANGLED"]
