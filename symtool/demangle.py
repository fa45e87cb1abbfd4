"""Readable names for mangled Rust symbols, in two spellings.

* :func:`demangle` is the name ``stack``, ``dumps`` and the readers show: rustc-demangle's
  spelling (legacy ``_ZN…17h<hash>E`` names without their hash, ``$LT$`` escapes resolved),
  LLVM's ``.llvm.N`` suffix dropped (it changes from build to build: the same function must
  give the same bucket), cut to :data:`MAX_DEMANGLED` characters with an ellipsis.
* :func:`demangle_llvm` is what llvm-symbolizer prints (``symtool symbolize``, whose output
  scripts swap with llvm-symbolizer's): LLVM demangles a Rust legacy name as Itanium C++ (the
  path's segments as they are, ``::h<hash>`` kept), a v0 name with its Rust demangler, and
  prints a suffix after a ``.`` as `` (.llvm.1234)``.  The whole name, not cut.

Procedure names in PDBs are already readable; the demangler reads ELF/Mach-O symbol tables,
DWARF linkage names and PDB public symbols.  Those procedure names are in rustc's MSVC form
(``enum$<core::option::Option<ref$<u32> > >::unwrap``): :func:`normalize_msvc_name` gives
their Rust spelling.

The names come from files anyone can craft: the demangler makes one pass over its input (no
regular expressions that can backtrack), refuses inputs longer than :data:`MAX_MANGLED`, and
its work and output are proportional to the input: a v0 name's backreferences (which can
nest, doubling the output at each level) may make its parse visit at most
:data:`V0_EXPANSION` nodes and identifier characters per character of the name (each prints
a bounded number of characters); a name beyond that comes back mangled.
"""

from __future__ import annotations

import functools

# Longer mangled names are returned as they are: real ones stay far below.
MAX_MANGLED = 64 * 1024
# demangle()'s names (stack, dumps) longer than this are cut, with an ellipsis.  Kept as it
# was when it was the only bound: dumps' bucket signatures are made of these names.
MAX_DEMANGLED = 1024
# Nodes parsed plus identifier characters printed, per character of a v0 name.  The test
# programs' real names need under 2 (a type spelled once and referred back to is the largest
# factor, also in the benchmark program); a hostile name that nests backreferences grows
# exponentially without a bound (a 60,000-character one is given up on in about 0.4 s).
V0_EXPANSION = 16
# Digits of one segment length: a segment of 10**6 characters cannot be real.
_MAX_LENGTH_DIGITS = 6

# Rust's legacy escapes inside a segment ($LT$ for <, ...); `$uXX$` is any
# code point in hex.
_ESCAPES = {"LT": "<", "GT": ">", "LP": "(", "RP": ")", "RF": "&", "BP": "*", "SP": "@", "C": ","}


def _segments(body: str, stop_at_e: bool = False) -> tuple[list[str], int] | None:
    """The length-prefixed segments of ``body`` and where they end (at its end, or with
    ``stop_at_e`` at the ``E`` after them), or None when it is not well formed."""
    parts: list[str] = []
    pos, end = 0, len(body)
    while pos < end:
        if stop_at_e and body[pos] == "E":
            return parts, pos
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
    return (None if stop_at_e else (parts, pos))


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


def _cut(readable: str) -> str:
    return readable if len(readable) <= MAX_DEMANGLED else readable[:MAX_DEMANGLED - 1] + "…"


def _unprefixed(name: str) -> str:
    """The name without the underscore Mach-O adds to every symbol (``__ZN``, ``__R``)."""
    return name[1:] if name.startswith(("__ZN", "__R")) else name


@functools.lru_cache(maxsize=8192)
def demangle(name: str) -> str:
    """Readable form of a Rust legacy-mangled name (``_ZN..17h<hash>E``) or v0 name (``_R...``,
    as LLVM's Rust demangler prints it: no crate disambiguators), without LLVM's ``.llvm.N``
    suffix, cut to :data:`MAX_DEMANGLED`; other names unchanged.  What stack rows, bucket
    signatures and the readers' frames show."""
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
    found = _segments(body)
    if not found or not found[0]:
        return name
    parts = found[0]
    if _is_hash(parts[-1]):
        parts.pop()
    if not parts:
        return name
    return _cut("::".join(_unescape(p) for p in parts))


@functools.lru_cache(maxsize=8192)
def demangle_llvm(name: str) -> str:
    """The name as llvm-symbolizer (LLVM 14 and 19) prints it, whole: a v0 name (``_R…``) by
    LLVM's Rust demangler; a Rust legacy name (``_ZN<segments>E``) as LLVM's Itanium demangler
    reads it, the segments joined by ``::`` as they are (``$LT$``, ``..`` and the ``h<hash>``
    segment kept); a suffix from a ``.`` on (``.llvm.1234``, ``.cold``) as `` (.llvm.1234)``.
    Mach-O's extra leading underscore is dropped, as llvm-symbolizer drops it.  Other names
    (C, and C++ beyond plain nested names, which symtool does not demangle) unchanged."""
    if len(name) > MAX_MANGLED:
        return name
    text = _unprefixed(name)
    if text.startswith("_R"):
        full = _v0_full(text)
        return name if full is None else full
    if not text.startswith("_ZN"):
        return name
    found = _segments(text[3:], stop_at_e=True)
    if not found or not found[0]:
        return name
    parts, end = found
    rest = text[3 + end + 1:]
    if rest and not rest.startswith("."):
        return name  # parameters or more: a C++ function (symtool does not demangle C++)
    readable = "::".join(parts)
    return f"{readable} ({rest})" if rest else readable


# -- Rust v0 mangling (RFC 2603) ------------------------------------------------------------

# Nesting (types in generic arguments in types...) beyond this is hostile.
_MAX_V0_DEPTH = 64
_BASIC = {"a": "i8", "b": "bool", "c": "char", "d": "f64", "e": "str", "f": "f32", "h": "u8", "i": "isize",
          "j": "usize", "l": "i32", "m": "u32", "n": "i128", "o": "u128", "s": "i16", "t": "u16", "u": "()",
          "v": "...", "x": "i64", "y": "u64", "z": "!", "p": "_"}


_BASE62 = {ch: value for value, ch in enumerate("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")}


class _V0Error(Exception):
    pass


class _V0:
    """A one-pass v0 demangler printing what LLVM's Rust demangler prints: paths (closures and
    shims as ``{closure#N}``), impls, generic arguments, every type (references with named
    lifetimes, ``for<'a>`` binders, ``dyn`` traits with associated-type bindings, ``fn``
    signatures) and integer / bool / char constants.  Crate disambiguators are not printed;
    Punycode identifiers (non-ASCII Rust identifiers) are decoded.

    As LLVM's does, it does not follow a backreference where nothing is printed (the impl
    path of an ``impl`` block, the instantiating crate).  Work is bounded in proportion to the
    name: ``budget`` counts nodes parsed and characters of identifiers printed (what a
    backreference expands to is counted again each time)."""

    def __init__(self, text: str):
        self.s = text
        self.pos = 0
        self.depth = 0
        self.bound = 0  # lifetimes bound by enclosing binders
        self.opened = False  # the last generic path was left open (for dyn-trait bindings)
        self.printing = True  # False inside what is parsed but not printed
        self.ident_start = 0  # where the last identifier's characters began
        self.budget = V0_EXPANSION * max(len(text), 16)

    def spend(self, amount: int) -> None:
        self.budget -= amount
        if self.budget < 0:
            raise _V0Error

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
        """``_`` is 0, else up to 16 base-62 digits and ``_``: their value plus one."""
        s, pos = self.s, self.pos
        if s.startswith("_", pos):
            self.pos = pos + 1
            return 0
        end = s.find("_", pos, pos + 17)
        digits = s[pos:end]
        if end < 0 or not (digits.isalnum() and digits.isascii()):
            raise _V0Error
        self.pos = end + 1
        value = 0
        for ch in digits:
            value = value * 62 + _BASE62[ch]
        return value + 1

    def opt_base62(self, tag: str) -> int:
        if self.s.startswith(tag, self.pos):
            self.pos += 1
            return self.base62() + 1
        return 0

    def decimal(self) -> int:
        s, start = self.s, self.pos
        if s.startswith("0", start):  # "0" is a number of its own: "00" is two
            self.pos = start + 1
            return 0
        pos, stop = start, min(len(s), start + 7)
        while pos < stop and "0" <= s[pos] <= "9":
            pos += 1
        if pos == start:
            raise _V0Error
        self.pos = pos
        return int(s[start:pos])

    def ident(self) -> str:
        """An undisambiguated identifier (``u`` first: Punycode, for non-ASCII ones)."""
        s, pos = self.s, self.pos
        punycode = s.startswith("u", pos)
        if punycode:
            pos += 1
        self.pos = pos
        length = self.decimal()
        pos = self.pos
        if s.startswith("_", pos):
            pos += 1
        if pos + length > len(s):
            raise _V0Error
        self.budget -= length
        if self.budget < 0:
            raise _V0Error
        self.ident_start = pos
        self.pos = pos + length
        out = s[pos:pos + length]
        return _punycode(out) if punycode else out

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_V0_DEPTH:
            raise _V0Error
        self.spend(1)

    def backref(self, fn):
        at = self.base62()
        if at + 2 >= self.pos - 1:  # must point backwards (offsets count from after "_R")
            raise _V0Error
        if not self.printing:
            return ""  # not followed where nothing is printed (as LLVM does)
        saved = self.pos
        self.pos = at + 2
        try:
            return fn()
        finally:
            self.pos = saved

    def unprinted_path(self) -> None:
        """A path that is parsed but not printed: an impl's path, the instantiating crate."""
        saved = self.printing
        self.printing = False
        try:
            self.path(False)
        finally:
            self.printing = saved

    def path(self, in_type: bool, leave_open: bool = False) -> str:
        # (enter() and next() written out: this is the demangler's busiest method.)
        self.depth += 1
        self.budget -= 1
        if self.depth > _MAX_V0_DEPTH or self.budget < 0:
            raise _V0Error
        try:
            pos = self.pos
            if pos >= len(self.s):
                raise _V0Error
            tag = self.s[pos]
            self.pos = pos + 1
            if tag == "N":
                ns = self.next()
                if not ns.isalpha():
                    raise _V0Error
                parent = self.path(in_type)
                disamb = self.opt_base62("s")
                name = self.ident()
                named = self.pos > self.ident_start  # LLVM asks whether the mangled form is empty
                if ns.isupper():
                    kind = {"C": "closure", "S": "shim"}.get(ns, ns)
                    return f"{parent}::{{{kind}{':' + name if named else ''}#{disamb}}}"
                return f"{parent}::{name}" if named else parent
            if tag == "M":
                self.opt_base62("s")
                self.unprinted_path()
                return f"<{self.type()}>"
            if tag == "X":
                self.opt_base62("s")
                self.unprinted_path()
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
            if tag == "C":
                self.opt_base62("s")
                return self.ident()
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
        self.spend(count)
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
        self.depth += 1
        self.budget -= 1
        if self.depth > _MAX_V0_DEPTH or self.budget < 0:
            raise _V0Error
        try:
            pos = self.pos
            ch = self.s[pos] if pos < len(self.s) else ""
            basic = _BASIC.get(ch)
            if basic is not None:
                self.pos = pos + 1
                return basic
            self.pos = pos + 1
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


# Punycode identifiers longer than this are hostile (decoding inserts each code point: the
# work grows with the square of the length).
_MAX_PUNYCODE = 1024


def _punycode(encoded: str) -> str:
    """A v0 Punycode identifier (RFC 3492, with ``_`` where the RFC writes ``-`` before the
    deltas) decoded; _V0Error when it is not one, or decodes to surrogates."""
    if len(encoded) > _MAX_PUNYCODE or not encoded.isascii():
        raise _V0Error
    basic, sep, deltas = encoded.rpartition("_")
    try:
        out = (f"{basic}-{deltas}" if sep else deltas).encode("ascii").decode("punycode")
    except (UnicodeError, ValueError, IndexError, OverflowError):
        raise _V0Error from None
    if any("\ud800" <= ch <= "\udfff" for ch in out):
        raise _V0Error
    return out


@functools.lru_cache(maxsize=8192)
def _v0_full(text: str) -> str | None:
    """The whole readable form of the v0 symbol ``text`` (``_R...``), with a suffix after a
    ``.`` as `` (.suffix)``, as LLVM prints it; None when it is not one this demangler reads
    (or exceeds its budget)."""
    dot = text.find(".")
    body = text if dot < 0 else text[:dot]
    p = _V0(body)
    p.pos = 2
    try:
        if p.peek().isdigit():
            p.decimal()  # encoding version
        out = p.path(False)
        if p.pos < len(body):
            p.unprinted_path()  # the instantiating crate
        if p.pos != len(body):
            return None
    except (_V0Error, ValueError, IndexError, RecursionError):
        return None
    return out if dot < 0 else f"{out} ({text[dot:]})"


def demangle_v0(name: str) -> str:
    """Readable form of a Rust v0 symbol (``_R...``), cut to :data:`MAX_DEMANGLED`; the name
    unchanged when it is not one this demangler reads."""
    if len(name) > MAX_MANGLED:
        return name
    full = _v0_full(_unprefixed(name))
    return name if full is None else _cut(full)


# -- rustc's MSVC-form names (CodeView procedure and inlinee names) -------------------------

# Longer names are returned as they are: the longest in the std crash corpus is under 500.
MAX_MSVC_NAME = 4096
# Nesting of generic argument lists and function-pointer parameter lists beyond this is hostile.
_MAX_MSVC_DEPTH = 64
# rustc's synthetic types written `kind$<...>` (for MSVC debuggers) and their Rust spelling.
_MSVC_POINTERS = {"ref": "&", "ref_mut": "&mut ", "ptr_const": "*const ", "ptr_mut": "*mut "}
_MSVC_TYPE_FORMS = frozenset(["slice", "slice2", "array", "tuple", "dyn", "enum", "enum2", "assoc",
                              *_MSVC_POINTERS])
# Names written `name$` that stand for rustc's `{name}` (vtables: S_GDATA32 records).
_MSVC_BRACED = frozenset(["vtable", "vtable_type"])
_DIGITS = frozenset("0123456789")  # str.isdigit() admits other scripts' digits too


class _MsvcNameError(Exception):
    """The name is not in rustc's MSVC form (or is malformed, or too deep)."""


def _msvc_tokens(name: str) -> list[str]:
    """Words (identifiers, possibly with one ``$``), integers and punctuation of an MSVC-form name.

    A space is allowed only where rustc writes one: after a comma (``enum$`` layout arguments,
    ``impl$<T, Trait>``), between two ``>`` (so MSVC's debugger does not read ``>>`` as a
    shift) and before the ``(*)`` of a C function-pointer type.  Any other space, or any character
    outside this grammar (``&``, ``[``, ``{``, ``'``, ``~``, ``@``...), means the name is not
    one of these: Rust-syntax names, C++ operators and decorated names are left alone."""
    tokens: list[str] = []
    pos, end = 0, len(name)
    while pos < end:
        ch = name[pos]
        if ch == " ":
            before = name[pos - 1] if pos > 0 else ""
            closes_two = before == ">" and name.startswith(">", pos + 1)
            if not (before == "," or closes_two or (before and name.startswith("(*)", pos + 1))):
                raise _MsvcNameError
            pos += 1
            continue
        start = pos
        if ch.isalpha() or ch == "_":
            pos += 1
            while pos < end and (name[pos].isalnum() or name[pos] in "_$"):
                pos += 1
            if name.count("$", start, pos) > 1:
                raise _MsvcNameError
        elif ch in _DIGITS or (ch == "-" and name[pos + 1:pos + 2] in _DIGITS):
            pos += 1
            while pos < end and name[pos] in _DIGITS:
                pos += 1
            if pos < end and (name[pos].isalnum() or name[pos] in "_$"):
                raise _MsvcNameError  # `5abc` is neither a number nor an identifier
        elif name.startswith("::", pos):
            pos += 2
        elif name.startswith("...", pos):  # C variadic parameter of a function pointer
            pos += 3
        elif ch in "<>,()*":
            pos += 1
        else:
            raise _MsvcNameError
        tokens.append(name[start:pos])
    return tokens


def _is_word(token: str) -> bool:
    return token[:1].isalpha() or token[:1] == "_"


def _is_number(token: str) -> bool:
    return token[:1] in _DIGITS or token[:1] == "-"


class _MsvcName:
    """Recursive descent over the token list of one name; every method returns Rust syntax.

    Types come back as ``(text, kind)``: kind ``"path"`` for a (possibly generic) path,
    ``"dyn+"`` for a ``dyn`` with several bounds (it needs parentheses under ``&``/``*``),
    ``"type"`` for anything else.  Each token is looked at a bounded number of times (no
    backtracking), so the work is linear in the length of the name times the nesting depth."""

    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.pos = 0

    def peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.tokens[index] if index < len(self.tokens) else ""

    def take(self) -> str:
        token = self.peek()
        if not token:
            raise _MsvcNameError
        self.pos += 1
        return token

    def expect(self, token: str) -> None:
        if self.take() != token:
            raise _MsvcNameError

    def name(self) -> str:
        """A whole name: a function/static path, whose qualifier may be a synthetic type
        (``enum$<Option<u32> >::unwrap``, ``impl$<T, Trait>::vtable$``), or a bare type."""
        if self.peek() == "impl$" and self.peek(1) == "<":
            text, kind = self.vtable_impl(), "path"
        else:
            text, kind = self.type(0)
        while self.peek() == "::":
            if kind != "path":
                raise _MsvcNameError  # rustc qualifies items only by paths and enums
            self.take()
            text += "::" + self.segment(0)[0]
        if self.pos != len(self.tokens):
            raise _MsvcNameError
        return text

    def vtable_impl(self) -> str:
        """``impl$<T, Trait>`` (``impl$<T, _>`` without a trait), the qualifier of a vtable's
        name, is what rustc otherwise writes ``<T as Trait>``."""
        self.pos += 2  # `impl$` and `<`
        self_type = self.type(1)[0]
        self.expect(",")
        trait, kind = self.type(1)
        if kind != "path":
            raise _MsvcNameError
        self.expect(">")
        return f"<{self_type} as {trait}>"

    def type(self, depth: int, binding_allowed: bool = False) -> tuple[str, str]:
        if depth > _MAX_MSVC_DEPTH:
            raise _MsvcNameError
        word = self.peek()
        if not _is_word(word):
            raise _MsvcNameError
        form, dollar, rest = word.partition("$")
        if dollar and not rest and form in _MSVC_TYPE_FORMS and self.peek(1) == "<":
            text, kind = self.type_form(form, depth, binding_allowed)
        elif word == "never$":
            self.take()
            text, kind = "!", "type"
        elif word == "str$":  # newer rustc; older writes `str`
            self.take()
            text, kind = "str", "path"
        elif word == "recursive_type$":  # rustc's placeholder for `fn() -> impl Trait` recursion
            self.take()
            text, kind = "<recursive_type>", "type"
        else:
            text, kind = self.path(depth)
        # C syntax for a function pointer, `R (*)(A,B)`: the return type came first.
        while self.peek() == "(" and self.peek(1) == "*" and self.peek(2) == ")" and self.peek(3) == "(":
            self.pos += 4
            params = self.fn_params(depth + 1)
            returns = "" if text == "void" else f" -> {text}"  # rustc writes `void` for `()`
            text, kind = f"fn({params}){returns}", "type"
        return text, kind

    def fn_params(self, depth: int) -> str:
        if depth > _MAX_MSVC_DEPTH:
            raise _MsvcNameError
        params: list[str] = []
        if self.peek() != ")":
            while True:
                if self.peek() == "...":
                    params.append(self.take())
                else:
                    params.append(self.type(depth)[0])
                if self.peek() != ",":
                    break
                self.take()
        self.expect(")")
        return ", ".join(params)

    def type_form(self, form: str, depth: int, binding_allowed: bool) -> tuple[str, str]:
        """``form$<...>``: one of rustc's synthetic generic types for MSVC debuggers."""
        self.pos += 2  # `form$` and `<`
        inner = depth + 1
        if form in _MSVC_POINTERS:
            pointee, kind = self.type(inner)
            self.expect(">")
            if kind == "dyn+":
                pointee = f"({pointee})"  # `&dyn A + B` would bind as `(&dyn A) + B`
            return _MSVC_POINTERS[form] + pointee, "type"
        if form in ("slice", "slice2"):  # newer rustc: `slice2$`, and `&[T]` is `ref$<slice2$<T> >`
            element = self.type(inner)[0]
            self.expect(">")
            return f"[{element}]", "type"
        if form == "array":
            element = self.type(inner)[0]
            self.expect(",")
            length = self.take()  # a number, or a const parameter's name
            if not (_is_number(length) or (_is_word(length) and "$" not in length)):
                raise _MsvcNameError
            self.expect(">")
            return f"[{element}; {length}]", "type"
        if form == "tuple":
            fields = [] if self.peek() == ">" else self.type_list(inner)
            self.expect(">")
            if len(fields) == 1:
                return f"({fields[0]},)", "type"
            return "(" + ", ".join(fields) + ")", "type"
        if form == "dyn":
            bounds = self.type_list(inner, paths_only=True)
            self.expect(">")
            return "dyn " + " + ".join(bounds), "dyn+" if len(bounds) > 1 else "type"
        if form in ("enum", "enum2"):
            # `enum$<E>`, `enum$<E, Variant>`, `enum$<E, min, max, DatafulVariant>` (older rustc,
            # such as 1.63: the layout, for natvis) and newer `enum2$<E>`: the enum `E` itself.
            enum, kind = self.type(inner)
            while form == "enum" and self.peek() == ",":
                self.take()
                layout = self.take()
                if not (_is_number(layout) or (_is_word(layout) and "$" not in layout)):
                    raise _MsvcNameError
            self.expect(">")
            return enum, kind
        return self.assoc(inner, binding_allowed)

    def assoc(self, depth: int, binding_allowed: bool) -> tuple[str, str]:
        """``assoc$<Name,T>``, an associated-type binding in a ``dyn`` trait's generic arguments
        (``dyn$<FnOnce<tuple$<>,assoc$<Output,i32> > >``), is ``Name = T``.  The form
        ``assoc$<Trait<...>,Name,T>`` (the trait first) is read too: ``Trait<..., Name = T>``."""
        first, first_kind = self.type(depth)
        self.expect(",")
        second = self.type(depth)[0]
        if self.peek() == ",":
            self.take()
            bound = self.type(depth)[0]
            self.expect(">")
            if first_kind != "path" or not second.isidentifier():
                raise _MsvcNameError
            binding = f"{second} = {bound}"
            if first.endswith(">"):
                return f"{first[:-1]}, {binding}>", "path"
            return f"{first}<{binding}>", "path"
        self.expect(">")
        if not binding_allowed or not first.isidentifier():
            raise _MsvcNameError
        return f"{first} = {second}", "type"

    def type_list(self, depth: int, paths_only: bool = False) -> list[str]:
        items: list[str] = []
        while True:
            text, kind = self.type(depth)
            if paths_only and kind != "path":
                raise _MsvcNameError
            items.append(text)
            if self.peek() != ",":
                return items
            self.take()

    def path(self, depth: int) -> tuple[str, str]:
        name, args = self.segment(depth)
        segments = [name]
        while self.peek() == "::":
            self.take()
            segments.append(self.segment(depth)[0])
        if len(segments) == 1 and args is None and name == "char32_t":
            return "char", "path"  # a Rust `char` seen through C++ eyes
        if len(segments) == 1 and args is not None and len(args) == 1 and name == f"slice<{args[0]}>":
            return f"[{args[0]}]", "type"  # rustc before `slice$<T>` wrote `slice<T>`
        return "::".join(segments), "path"

    def segment(self, depth: int) -> tuple[str, list[str] | None]:
        """One path segment with its generic arguments (as text, and the arguments apart)."""
        word = self.take()
        if not _is_word(word):
            raise _MsvcNameError
        name = _msvc_segment_name(word)
        if self.peek() != "<":
            return name, None
        self.take()
        if depth + 1 > _MAX_MSVC_DEPTH:
            raise _MsvcNameError
        args: list[str] = []
        while True:
            if _is_number(self.peek()):  # a const generic argument
                args.append(self.take())
            else:
                args.append(self.type(depth + 1, binding_allowed=True)[0])
            if self.peek() != ",":
                break
            self.take()
        self.expect(">")
        return f"{name}<{', '.join(args)}>", args


def _msvc_segment_name(word: str) -> str:
    """A path segment: an identifier, or rustc's MSVC spelling of an unnamed item.

    rustc writes ``label$N`` where it otherwise writes ``{label#N}`` (``closure$0``,
    ``closure_env$0``, ``impl$3``, ``async_fn_env$0``, ``extern$0``...), ``CONST$hash`` for
    ``{CONST#hash}`` and ``vtable$`` for ``{vtable}``.  Any other ``$`` (natvis's
    ``Discriminant$`` type, or not rustc's at all) leaves the whole name as it is."""
    label, dollar, suffix = word.partition("$")
    if not dollar:
        return word
    if not suffix and label in _MSVC_BRACED:
        return f"{{{label}}}"
    if suffix.isascii() and suffix.isdigit() and label.isascii() and label == label.lower():
        return f"{{{label}#{suffix}}}"
    if label == "CONST" and suffix and all(c in "0123456789abcdef" for c in suffix):
        return f"{{CONST#{suffix}}}"
    raise _MsvcNameError


@functools.lru_cache(maxsize=4096)
def normalize_msvc_name(name: str) -> str:
    """The Rust spelling of a name rustc wrote in MSVC form; any other name unchanged.

    For ``*-pc-windows-msvc`` targets rustc names functions, statics and types in the PDB
    (S_GPROC32, inlinees of S_INLINESITE in LF_FUNC_ID, vtable S_GDATA32, type records) in a
    C++-like form, because MSVC debuggers and natvis parse names as C++ expressions and
    choke on ``&``, ``[``, ``{``, ``#`` and ``>>``.  WinDbg and Visual Studio show these
    names as they are; this gives the name rustc writes for the same item everywhere else
    (DWARF debug info, v0 demangling):

    * ``ref$<T>`` → ``&T``, ``ref_mut$<T>`` → ``&mut T``, ``ptr_const$<T>`` → ``*const T``,
      ``ptr_mut$<T>`` → ``*mut T``; ``slice$<T>``, newer ``slice2$<T>`` and the oldest
      ``slice<T>`` → ``[T]``; ``array$<T,5>`` → ``[T; 5]``; ``tuple$<>`` → ``()``,
      ``tuple$<A>`` → ``(A,)``, ``tuple$<A,B>`` → ``(A, B)``; ``never$`` → ``!``;
      ``str$`` → ``str``; ``char32_t`` → ``char``;
    * ``dyn$<A,B>`` → ``dyn A + B`` (``&(dyn A + B)`` under a reference or pointer);
      ``assoc$<Output,T>`` among the trait's generic arguments → ``Output = T``, so
      ``dyn$<FnOnce<tuple$<>,assoc$<Output,i32> > >`` → ``dyn FnOnce<(), Output = i32>``;
      the form ``assoc$<Trait<...>,Output,T>`` → ``Trait<..., Output = T>`` is read too;
    * ``enum$<E>``, ``enum$<E, Variant>`` and ``enum$<E, 1, 18446744073709551615, Some>``
      (older rustc, such as 1.63, appends the layout for natvis), and newer ``enum2$<E>``
      → ``E``;
    * C function pointers ``R (*)(A,B)`` → ``fn(A, B) -> R``, ``void (*)()`` → ``fn()``;
    * unnamed items ``label$N`` → ``{label#N}``, the spelling rustc uses in DWARF for the
      same disambiguated item: ``closure$0`` → ``{closure#0}``, ``closure_env$3`` →
      ``{closure_env#3}``, ``impl$12`` → ``{impl#12}``, ``generator$0`` / ``coroutine$0``
      → ``{generator#0}`` / ``{coroutine#0}``, ``async_block$0`` → ``{async_block#0}``,
      ``async_fn$0`` → ``{async_fn#0}`` and its state machine ``async_fn_env$0`` →
      ``{async_fn_env#0}``, ``extern$0`` → ``{extern#0}``; ``CONST$hash`` → ``{CONST#hash}``;
    * vtables ``impl$<T, Trait>::vtable$`` → ``<T as Trait>::{vtable}`` (and
      ``vtable_type$`` → ``{vtable_type}``);
    * MSVC's space in ``> >`` goes, and generic arguments are separated by ``, ``.

    rustc 1.63 writes ``&str`` and ``&[T]`` without their reference (``str``, ``slice$<T>``);
    that ``&`` cannot be recovered.  A name the grammar does not cover entirely comes back
    unchanged: C names, C++ names beyond plain templates, names already in Rust syntax
    (``core::option::Option<T>::unwrap``, ``<T as Trait>::f``, ``{closure#0}``), the
    ``enum$<...>::Discriminant$`` types natvis reads, anything malformed, longer than
    :data:`MAX_MSVC_NAME` or nested deeper than 64.  A plain path or template that fits the
    grammar only gets the ``, `` spacing (rustc writes ``RawVec<u8,alloc::alloc::Global>``
    too, and a C++ ``vector<int,allocator<int> >`` cannot be told from it; its ``char32_t``
    would read ``char``).  Never raises; the result is a fixed point (normalizing it again
    changes nothing)."""
    if len(name) > MAX_MSVC_NAME:
        return name
    try:
        return _MsvcName(_msvc_tokens(name)).name()
    except (_MsvcNameError, RecursionError):
        return name


__all__ = ["demangle", "demangle_llvm", "demangle_v0", "normalize_msvc_name", "MAX_DEMANGLED", "MAX_MANGLED",
           "MAX_MSVC_NAME", "V0_EXPANSION"]
