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

import functools

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
    """Readable form of a Rust legacy-mangled name (``_ZN..17h<hash>E``) or v0 name (``_R...``,
    as LLVM's Rust demangler prints it: no crate disambiguators); other names unchanged."""
    if len(name) > MAX_MANGLED:
        return name
    if ".llvm." in name:  # LLVM's suffix on promoted local symbols (rustc-demangle drops it)
        stripped = name[:name.index(".llvm.")]
        if stripped.startswith(("_ZN", "__ZN", "_R", "__R")):
            return demangle(stripped)
    if name.startswith("_R") or name.startswith("__R"):
        return demangle_v0(name)
    if not name.endswith("E"):
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


# -- Rust v0 mangling (RFC 2603) ------------------------------------------------------------

# Nesting (types in generic arguments in types...) beyond this is hostile.
_MAX_V0_DEPTH = 64
# Backreference expansions in one name (each may expand others: exponential without a bound).
_MAX_V0_BACKREFS = 4096
_BASIC = {"a": "i8", "b": "bool", "c": "char", "d": "f64", "e": "str", "f": "f32", "h": "u8", "i": "isize",
          "j": "usize", "l": "i32", "m": "u32", "n": "i128", "o": "u128", "s": "i16", "t": "u16", "u": "()",
          "v": "...", "x": "i64", "y": "u64", "z": "!", "p": "_"}


class _V0Error(Exception):
    pass


class _V0:
    """A one-pass v0 demangler printing what LLVM's Rust demangler prints: paths (closures and
    shims as ``{closure#N}``), impls, generic arguments, every type (references with named
    lifetimes, ``for<'a>`` binders, ``dyn`` traits with associated-type bindings, ``fn``
    signatures) and integer / bool / char constants.  Crate disambiguators are not printed.
    Punycode identifiers make demangle_v0 return the name unchanged."""

    def __init__(self, text: str):
        self.s = text
        self.pos = 0
        self.depth = 0
        self.bound = 0  # lifetimes bound by enclosing binders
        self.opened = False  # the last generic path was left open (for dyn-trait bindings)
        self.work = 0  # backref expansions: bounded, they can nest exponentially

    def peek(self) -> str:
        return self.s[self.pos] if self.pos < len(self.s) else ""

    def next(self) -> str:
        if self.pos >= len(self.s):
            raise _V0Error
        ch = self.s[self.pos]
        self.pos += 1
        return ch

    def eat(self, ch: str) -> bool:
        if self.peek() == ch:
            self.pos += 1
            return True
        return False

    def base62(self) -> int:
        if self.eat("_"):
            return 0
        value = 0
        for _ in range(16):
            ch = self.next()
            if ch == "_":
                return value + 1
            if "0" <= ch <= "9":
                d = ord(ch) - 48
            elif "a" <= ch <= "z":
                d = ord(ch) - 87
            elif "A" <= ch <= "Z":
                d = ord(ch) - 29
            else:
                raise _V0Error
            value = value * 62 + d
        raise _V0Error

    def opt_base62(self, tag: str) -> int:
        return self.base62() + 1 if self.eat(tag) else 0

    def decimal(self) -> int:
        start = self.pos
        if self.peek() == "0":  # "0" is a number of its own: "00" is two
            self.pos += 1
            return 0
        while "0" <= self.peek() <= "9" and self.pos - start < 7:
            self.pos += 1
        if self.pos == start:
            raise _V0Error
        return int(self.s[start:self.pos])

    def ident(self) -> str:
        """An undisambiguated identifier."""
        if self.eat("u"):
            raise _V0Error  # punycode
        length = self.decimal()
        self.eat("_")
        if self.pos + length > len(self.s):
            raise _V0Error
        out = self.s[self.pos:self.pos + length]
        self.pos += length
        return out

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_V0_DEPTH:
            raise _V0Error

    def backref(self, fn):
        at = self.base62()
        if at + 2 >= self.pos - 1:  # must point backwards (offsets count from after "_R")
            raise _V0Error
        self.work += 1
        if self.work > _MAX_V0_BACKREFS:
            raise _V0Error
        saved = self.pos
        self.pos = at + 2
        try:
            return fn()
        finally:
            self.pos = saved

    def path(self, in_type: bool, leave_open: bool = False) -> str:
        self.enter()
        try:
            tag = self.next()
            if tag == "C":
                self.opt_base62("s")
                return self.ident()
            if tag == "N":
                ns = self.next()
                if not ns.isalpha():
                    raise _V0Error
                parent = self.path(in_type)
                disamb = self.opt_base62("s")
                name = self.ident()
                if ns.isupper():
                    kind = {"C": "closure", "S": "shim"}.get(ns, ns)
                    return f"{parent}::{{{kind}{':' + name if name else ''}#{disamb}}}"
                return f"{parent}::{name}" if name else parent
            if tag == "M":
                self.opt_base62("s")
                self.path(in_type)  # impl path: not printed
                return f"<{self.type()}>"
            if tag == "X":
                self.opt_base62("s")
                self.path(in_type)
                ty = self.type()
                return f"<{ty} as {self.path(True)}>"
            if tag == "Y":
                ty = self.type()
                return f"<{ty} as {self.path(True)}>"
            if tag == "I":
                base = self.path(in_type)
                args = []
                while not self.eat("E"):
                    args.append(self.generic_arg())
                sep = "" if in_type else "::"
                self.opened = leave_open
                return f"{base}{sep}<{', '.join(args)}" + ("" if leave_open else ">")
            if tag == "B":
                return self.backref(lambda: self.path(in_type, leave_open))
            raise _V0Error
        finally:
            self.depth -= 1

    def lifetime(self, index: int) -> str:
        if index == 0:
            return "'_"
        if index > self.bound:
            raise _V0Error
        depth = self.bound - index
        return f"'{chr(97 + depth)}" if depth < 26 else f"'_{depth}"

    def binder(self) -> str:
        """An optional ``G`` binder: opens its lifetimes (the caller restores ``bound``)."""
        if not self.eat("G"):
            return ""
        count = self.base62() + 1
        if count > 1024:
            raise _V0Error
        names = []
        for _ in range(count):
            self.bound += 1
            names.append(self.lifetime(1))
        return f"for<{', '.join(names)}> "

    def generic_arg(self) -> str:
        if self.eat("L"):
            return self.lifetime(self.base62())
        if self.eat("K"):
            return self.const()
        return self.type()

    def type(self) -> str:
        self.enter()
        try:
            ch = self.peek()
            if ch in _BASIC:
                self.pos += 1
                return _BASIC[ch]
            self.pos += 1
            if ch == "A":
                ty = self.type()
                return f"[{ty}; {self.const()}]"
            if ch == "S":
                return f"[{self.type()}]"
            if ch == "T":
                items = []
                while not self.eat("E"):
                    items.append(self.type())
                return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
            if ch in "RQ":
                out = "&"
                if self.eat("L"):
                    index = self.base62()
                    if index:
                        out += self.lifetime(index) + " "
                return out + ("mut " if ch == "Q" else "") + self.type()
            if ch in "PO":
                return ("*const " if ch == "P" else "*mut ") + self.type()
            if ch == "F":
                return self.fn_sig()
            if ch == "D":
                return self.dyn_bounds()
            if ch == "B":
                return self.backref(self.type)
            self.pos -= 1
            return self.path(True)
        finally:
            self.depth -= 1

    def fn_sig(self) -> str:
        saved = self.bound
        try:
            out = self.binder()
            if self.eat("U"):
                out += "unsafe "
            if self.eat("K"):
                abi = "C" if self.eat("C") else self.ident().replace("_", "-")
                out += f'extern "{abi}" '
            args = []
            while not self.eat("E"):
                args.append(self.type())
            out += "fn(" + ", ".join(args) + ")"
            ret = self.type()
            return out if ret == "()" else f"{out} -> {ret}"
        finally:
            self.bound = saved

    def dyn_bounds(self) -> str:
        saved = self.bound
        try:
            out = "dyn " + self.binder()
            traits = []
            while not self.eat("E"):
                self.opened = False
                trait = self.path(True, leave_open=True)
                is_open = self.opened
                while self.eat("p"):
                    trait += ", " if is_open else "<"
                    is_open = True
                    name = self.ident()
                    trait += f"{name} = {self.type()}"
                if is_open:
                    trait += ">"
                traits.append(trait)
            out += " + ".join(traits)
        finally:
            self.bound = saved
        lifetime = self.base62() if self.eat("L") else 0
        if lifetime:
            out += " + " + self.lifetime(lifetime)
        return out

    def const(self) -> str:
        if self.eat("p"):
            return "_"
        if self.eat("B"):
            return self.backref(self.const)
        ty = self.next()
        if ty not in "abcdhijlmnostxy":
            raise _V0Error
        negative = self.eat("n")
        start = self.pos
        while self.peek() and self.peek() != "_" and self.pos - start < 32:
            self.pos += 1
        digits = self.s[start:self.pos]
        if not self.eat("_"):
            raise _V0Error
        value = int(digits, 16) if digits else 0
        if ty == "b":
            return "true" if value == 1 else "false" if value == 0 else str(value)
        if ty == "c":
            return repr(chr(value)) if value < 0x110000 else str(value)
        return f"-{value}" if negative else str(value)


@functools.lru_cache(maxsize=8192)
def demangle_v0(name: str) -> str:
    """Readable form of a Rust v0 symbol (``_R...``); the name unchanged when it is not one
    this demangler reads."""
    text = name[1:] if name.startswith("__R") else name
    p = _V0(text)
    p.pos = 2
    try:
        if p.peek().isdigit():
            p.decimal()  # encoding version
        out = p.path(False)
        if p.peek() not in ("", "."):
            p.path(False)  # the instantiating crate: not printed
        if p.peek() == ".":
            out += f" ({text[p.pos:]})"  # a vendor suffix (".0"), printed as LLVM does
        elif p.pos != len(text):
            return name
    except (_V0Error, ValueError, IndexError, RecursionError):
        return name
    if len(out) > MAX_DEMANGLED:
        out = out[:MAX_DEMANGLED - 1] + "…"
    return out


__all__ = ["demangle", "demangle_v0", "MAX_DEMANGLED", "MAX_MANGLED"]
