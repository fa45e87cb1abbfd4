"""The panic reader on synthetic memory (every field's check, every argument type, budgets,
fuzzing), and the loader relocations it reads image bytes through, against LLVM's readers."""

from __future__ import annotations

import re
import struct
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import need_tool
from symtool.dumps.panic import (UNKNOWN_ARGUMENT, PanicReader, ProcessMemory, escape_debug, find_panic,
                                 formatter_type, read_arguments, read_location)
from symtool.formats.rust_panic import LAYOUT_2018

BASE = 0x140000000
STACK = 0x11F000


class FakeImage:
    """An image: ``data`` at RVA 0, the first ``code`` bytes executable."""

    def __init__(self, data: bytes, code: int):
        self.data, self.code = data, code

    def read_loaded(self, rva: int, size: int, base: int) -> bytes | None:
        return self.data[rva:rva + size] if 0 <= rva and rva + size <= len(self.data) else None

    def is_code(self, rva: int) -> bool:
        return 0 <= rva < self.code


class Builder:
    """Lays out an image (code, then data) and a stack, and names code addresses."""

    def __init__(self):
        self.image = bytearray(0x1000)  # code: 0..0x1000
        self.stack = bytearray()
        self.names: dict[int, list[str]] = {}

    def data(self, blob: bytes) -> int:
        while len(self.image) % 8:
            self.image.append(0)
        at = len(self.image)
        self.image += blob
        return BASE + at

    def push(self, blob: bytes) -> int:
        while len(self.stack) % 8:
            self.stack.append(0)
        at = len(self.stack)
        self.stack += blob
        return STACK + at

    def string(self, text: str) -> tuple[int, int]:
        raw = text.encode()
        return self.data(raw), len(raw)

    def location(self, file: str, line: int, column: int) -> int:
        ptr, n = self.string(file)
        return self.data(struct.pack("<QQII", ptr, n, line, column))

    def formatter(self, *names: str) -> int:
        address = BASE + 0x10 * (len(self.names) + 1)
        self.names[address] = list(names)
        return address

    def arguments(self, pieces: list[str], args: list[tuple[int, int]], fmt: int = 0, n_fmt: int = 0,
                  on_stack: bool = True) -> int:
        table = b"".join(struct.pack("<QQ", *self.string(p)) for p in pieces)
        pieces_at = self.data(table) if pieces else BASE + 0x2000
        args_at = self.push(b"".join(struct.pack("<QQ", v, f) for v, f in args)) if args else BASE
        blob = struct.pack("<QQQQQQ", pieces_at, len(pieces), fmt, n_fmt, args_at, len(args))
        return self.push(blob) if on_stack else self.data(blob)

    def memory(self, budget: int = 1 << 20) -> ProcessMemory:
        stack = bytes(self.stack)

        def saved(address: int, size: int):
            if STACK <= address and address + size <= STACK + len(stack):
                return stack[address - STACK:address - STACK + size]
            return None

        return ProcessMemory(saved, [(BASE, len(self.image), FakeImage(bytes(self.image), 0x1000))], budget)

    def find(self, **kw):
        mem = self.memory(**kw)
        return find_panic(mem, bytes(self.stack), STACK, STACK, STACK + len(self.stack),
                          lambda a: self.names.get(a, []))


U32 = "_ZN4core3fmt3num3imp52_$LT$impl$u20$core..fmt..Display$u20$for$u20$u32$GT$3fmt17h7188dda9427e091fE"


def demangled(mangled: str) -> str:
    from symtool.demangle import demangle

    return demangle(mangled)


def test_location_and_message_are_found_through_pointers_on_the_stack():
    b = Builder()
    fmt_u32 = b.formatter(demangled(U32))
    value = b.push(struct.pack("<I", 42))
    args = b.arguments(["worker ", " failed"], [(value, fmt_u32)])
    loc = b.location("src/main.rs", 7, 9)
    b.push(struct.pack("<QQQ", 0xDEAD, args, loc))
    location, message = b.find()
    assert location == ("src/main.rs", 7, 9)
    assert message == "worker 42 failed"


@pytest.mark.parametrize("file,line,column", [("src/main.c", 7, 9), ("src/main.rs", 0, 9), ("src/main.rs", 7, 0),
                                              ("src/\nmain.rs", 7, 9), ("src/main.rs", 10 ** 8, 1)])
def test_implausible_locations_are_refused(file, line, column):
    b = Builder()
    loc = b.location(file, line, column)
    assert read_location(b.memory(), loc) is None


def test_a_location_on_the_stack_is_not_one():
    b = Builder()
    ptr, n = b.string("src/main.rs")
    at = b.push(struct.pack("<QQII", ptr, n, 3, 4))
    assert read_location(b.memory(), at) is None  # Location is a static: it lives in an image


def test_arguments_whose_counts_new_v1_would_refuse_are_refused():
    b = Builder()
    f = b.formatter(demangled(U32))
    v = b.push(struct.pack("<I", 1))
    three_pieces_one_arg = b.arguments(["a", "b", "c"], [(v, f)])
    assert read_arguments(b.memory(), three_pieces_one_arg) is None
    data_formatter = b.arguments(["a"], [(v, BASE + 0x3000)])  # a formatter that is not code
    assert read_arguments(b.memory(), data_formatter) is None


@pytest.mark.parametrize("type_name,raw,expected", [
    ("u8", b"\xff", "255"), ("i8", b"\xff", "-1"), ("u16", struct.pack("<H", 5432), "5432"),
    ("i64", struct.pack("<q", -7), "-7"), ("usize", struct.pack("<Q", 2 ** 64 - 1), str(2 ** 64 - 1)),
    ("u128", (2 ** 100).to_bytes(16, "little"), str(2 ** 100)), ("bool", b"\x01", "true"),
    ("bool", b"\x02", UNKNOWN_ARGUMENT), ("char", struct.pack("<I", 0x1F600), "\U0001F600"),
    ("char", struct.pack("<I", 0xD800), UNKNOWN_ARGUMENT),
])
def test_display_of_primitives(type_name, raw, expected):
    b = Builder()
    f = b.formatter(f"core::fmt::num::imp::<impl core::fmt::Display for {type_name}>::fmt")
    v = b.push(raw)
    at = b.arguments(["", ""], [(v, f)])
    mem = b.memory()
    assert PanicReader(mem, lambda a: b.names.get(a, [])).message(read_arguments(mem, at)) == expected


def test_str_through_a_reference_display_and_debug():
    b = Builder()
    text_ptr, n = b.string('say "hi"\n')
    fat = b.push(struct.pack("<QQ", text_ptr, n))  # a &str on the stack
    display = b.formatter("<&T as core::fmt::Display>::fmt", "core::fmt::impl$61::fmt<str>")
    debug = b.formatter("<&T as core::fmt::Debug>::fmt", "core::fmt::impl$59::fmt<str$>")
    args = b.arguments(["[", "] [", "]"], [(fat, display), (fat, debug)])
    mem = b.memory()
    msg = PanicReader(mem, lambda a: b.names.get(a, [])).message(read_arguments(mem, args))
    assert msg == '[say "hi"\n] ["say \\"hi\\"\\n"]'


def test_dyn_debug_is_followed_through_its_vtable():
    b = Builder()
    inner = b.formatter("core::fmt::num::<impl core::fmt::Debug for i32>::fmt")
    vtable = b.data(struct.pack("<QQQQ", 0, 4, 4, inner))
    value = b.push(struct.pack("<i", -5))
    obj = b.push(struct.pack("<QQ", value, vtable))  # &dyn Debug
    outer = b.formatter("<&T as core::fmt::Debug>::fmt", "core::fmt::impl$59::fmt<dyn$<core::fmt::Debug> >")
    args = b.arguments(["left: "], [(obj, outer)])
    mem = b.memory()
    assert PanicReader(mem, lambda a: b.names.get(a, [])).message(read_arguments(mem, args)) == "left: -5"


def test_nested_arguments_and_unknown_types():
    b = Builder()
    f_u32 = b.formatter(demangled(U32))
    v = b.push(struct.pack("<I", 3))
    inner = b.arguments(["state ", ""], [(v, f_u32)])
    nested = b.formatter("<core::fmt::Arguments as core::fmt::Display>::fmt")
    unknown = b.formatter("<core::num::error::ParseIntError as core::fmt::Debug>::fmt")
    outer = b.arguments(["unreachable: ", " / "], [(inner, nested), (v, unknown)])
    mem = b.memory()
    text = PanicReader(mem, lambda a: b.names.get(a, [])).message(read_arguments(mem, outer))
    assert text == "unreachable: state 3 / " + UNKNOWN_ARGUMENT


def test_format_specs_choose_argument_positions():
    b = Builder()
    f = b.formatter(demangled(U32))
    one, two = b.push(struct.pack("<I", 1)), b.push(struct.pack("<I", 2))
    specs = b.data(struct.pack("<Q", 1) + bytes(48) + struct.pack("<Q", 0) + bytes(48))
    args = b.arguments(["a=", " b="], [(one, f), (two, f)], fmt=specs, n_fmt=2)
    mem = b.memory()
    assert PanicReader(mem, lambda a: b.names.get(a, [])).message(read_arguments(mem, args)) == "a=2 b=1"


def test_self_referencing_arguments_stop_at_the_depth_cap():
    b = Builder()
    nested = b.formatter("<core::fmt::Arguments as core::fmt::Display>::fmt")
    # Arguments whose one argument is itself: the nesting cap ends it.
    pieces = b.data(struct.pack("<QQ", *b.string("x")))
    at = STACK + len(b.stack) + 16  # where the Arguments will be, after its args table
    args_table = b.push(struct.pack("<QQ", at, nested))
    blob_at = b.push(struct.pack("<QQQQQQ", pieces, 1, 0, 0, args_table, 1))
    assert blob_at == at
    location, message = b.find()
    assert message is not None and message.count("x") <= 8


@pytest.mark.parametrize("names,expected", [
    (["core::fmt::num::imp::<impl core::fmt::Display for u16>::fmt"], ("Display", "u16")),
    (["<&T as core::fmt::Display>::fmt", "core::fmt::impl$61::fmt<str>"], ("Display", "&str")),
    (["<&T as core::fmt::Debug>::fmt", "core::fmt::impl$59::fmt<dyn$<core::fmt::Debug> >"],
     ("Debug", "&dyn core::fmt::Debug")),
    (["<&T as core::fmt::Display>::fmt"], None),  # T unknown
    (["<bool as core::fmt::Display>::fmt"], ("Display", "bool")),
    (["<&str as core::fmt::Display>::fmt"], ("Display", "&str")),  # v0 names carry the type
    (["core::fmt::num::<impl core::fmt::LowerHex for i32>::fmt"], ("LowerHex", "i32")),
    (["my_crate::thing"], None),
])
def test_formatter_types_from_symbol_names(names, expected):
    assert formatter_type(names) == expected


def test_escape_debug_follows_rusts_rules():
    assert escape_debug("a\"b'c\\\t\r\n\0\x07é", '"') == "a\\\"b'c\\\\\\t\\r\\n\\0\\u{7}é"
    assert escape_debug("'", "'") == "\\'"


def test_budget_ends_the_search_without_a_traceback():
    b = Builder()
    loc = b.location("src/main.rs", 1, 1)
    for k in range(2000):  # distinct pointers into the image, each worth a read
        b.push(struct.pack("<Q", BASE + 0x100 + 8 * k))
    b.push(struct.pack("<Q", loc))
    location, message = b.find(budget=4096)
    assert location is None and message is None
    assert b.find()[0] == ("src/main.rs", 1, 1)  # with the default budget it is found


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image=st.binary(min_size=64, max_size=4096), stack=st.binary(min_size=8, max_size=4096),
       seed_pointers=st.lists(st.integers(min_value=0, max_value=4096), max_size=64))
def test_random_memory_never_raises(image, stack, seed_pointers):
    # Random bytes, with words pointing into the image sprinkled over the stack.
    stack = bytearray(stack)
    for k, p in enumerate(seed_pointers):
        at = (k * 8) % max(8, len(stack) - 8)
        struct.pack_into("<Q", stack, at, BASE + p)
    mem = ProcessMemory(lambda a, n: None, [(BASE, len(image), FakeImage(image, len(image) // 2))], 1 << 16)
    location, message = find_panic(mem, bytes(stack), STACK, STACK, STACK + len(stack),
                                   lambda a: ["<&T as core::fmt::Display>::fmt", "x::fmt<str>"])
    assert mem.budget >= 0
    assert location is None or location[0].endswith(".rs")
    assert message is None or len(message) <= 8200


# --- the loader relocations image bytes are read through, against LLVM -------------------------------------

def test_pe_base_relocations_match_llvm_readobj():
    from std_corpus import CorpusUnavailable, build_corpus
    from symtool.formats.pe_unwind import read_pe_unwind

    readobj = need_tool("llvm-readobj")
    try:
        exe = build_corpus() / "unwrap_none.exe"
    except CorpusUnavailable as err:
        pytest.skip(str(err))
    out = subprocess.run([readobj, "--coff-basereloc", str(exe)], capture_output=True, text=True, check=True).stdout
    expected = sorted((int(a, 16), 8 if t == "DIR64" else 4)
                      for t, a in re.findall(r"Type: (DIR64|HIGHLOW)\s+Address: 0x([0-9A-Fa-f]+)", out))
    image = read_pe_unwind(exe)
    assert expected and image._base_relocations() == expected
    # Loaded elsewhere (ASLR), each relocated word moves by the delta; the others do not.
    rva, width = expected[0]
    delta = 0x7FF600000000 - image.image_base
    plain = image.read_rva(rva - 8, 24)
    moved = image.read_loaded(rva - 8, 24, image.image_base + delta)
    assert struct.unpack_from("<Q", moved, 8)[0] == struct.unpack_from("<Q", plain, 8)[0] + delta
    assert moved[:8] == plain[:8] or (rva - 8, 8) in expected


def test_elf_relative_relocations_match_llvm_readelf(tmp_path):
    from symtool.formats.dwarf_cfi import read_elf_cfi

    rustc, readelf = need_tool("rustc"), need_tool("llvm-readelf")
    src = tmp_path / "p.rs"
    src.write_text('fn main() { let v: Vec<&str> = vec!["a"; std::env::args().count()]; '
                   'if v.len() > 9 { panic!("{}", v[9]) } }\n')
    subprocess.run([rustc, "-O", str(src), "-o", str(tmp_path / "p")], check=True, capture_output=True, timeout=300)
    out = subprocess.run([readelf, "-r", "--wide", str(tmp_path / "p")], capture_output=True, text=True,
                         check=True).stdout
    expected = sorted((int(off, 16), int(add, 16)) for off, add in
                      re.findall(r"^([0-9a-f]+)\s+[0-9a-f]+\s+R_X86_64_RELATIVE\s+([0-9a-f]+)", out, re.M))
    cfi = read_elf_cfi(tmp_path / "p")
    try:
        offsets, addends = cfi._relative_relocations()
        assert expected and list(zip(offsets, addends)) == expected
        off, add = expected[0]
        base = 0x555555554000
        word = cfi.read_loaded(off - cfi.load_bias, 8, base)
        assert struct.unpack("<Q", word)[0] == base + add - cfi.load_bias
    finally:
        cfi.close()


# --- rustc 1.93+'s byte-template Arguments -----------------------------------------------------------------

def _template_args(b: Builder, template: bytes, args: list[tuple[int, int]]) -> int:
    at = b.data(template)
    array = b.push(b"".join(struct.pack("<QQ", v, f) for v, f in args)) if args else 0
    return b.push(struct.pack("<QQ", at, array))


def test_template_pieces_placeholders_and_indexes():
    from symtool.formats.rust_panic import LAYOUT_TEMPLATE

    b = Builder()
    f = b.formatter(demangled(U32))
    one, two = b.push(struct.pack("<I", 1)), b.push(struct.pack("<I", 2))
    long_piece = "x" * 200
    # "a=" {1} " b=" {0 with flags, width and an explicit index} then a long (0x80) piece.
    template = (b"\x02a=" + b"\xC8\x01\x00" + b"\x03 b=" + b"\xC9\x00\x00\x00\x00\x00\x00" + b"\x80"
                + struct.pack("<H", len(long_piece)) + long_piece.encode() + b"\x00")
    at = _template_args(b, template, [(one, f), (two, f)])
    mem = b.memory()
    args = read_arguments(mem, at, LAYOUT_TEMPLATE)
    assert PanicReader(mem, lambda a: b.names.get(a, []), LAYOUT_TEMPLATE).message(args) == "a=2 b=1" + long_piece


def test_template_static_str_only_when_the_layout_is_known():
    from symtool.formats.rust_panic import LAYOUT_TEMPLATE

    b = Builder()
    ptr, n = b.string("config path must be set")
    at = b.push(struct.pack("<QQ", ptr, n << 1 | 1))
    mem = b.memory()
    assert read_arguments(mem, at, LAYOUT_TEMPLATE).parts == ["config path must be set"]
    assert read_arguments(mem, at, LAYOUT_TEMPLATE, static_str=False) is None


@pytest.mark.parametrize("template", [b"\x05ab", b"\x02ab\x90\x00", b"\xA0\x00", b"\x02\xff\xfe\x00",
                                      b"\xC8\xff\xff\x00"])
def test_broken_templates_are_refused(template):
    from symtool.formats.rust_panic import LAYOUT_TEMPLATE

    b = Builder()
    f = b.formatter(demangled(U32))
    v = b.push(struct.pack("<I", 1))
    at = _template_args(b, template, [(v, f)])
    assert read_arguments(b.memory(), at, LAYOUT_TEMPLATE) is None


@pytest.mark.parametrize("text,expected", [("rustc version 1.95.0 (59807616e 2026-04-14)", (1, 95)),
                                           ("clang LLVM (rustc version 1.63.0)", (1, 63)),
                                           ("GCC: (Debian 12.2.0-14) 12.2.0", None), ("rustc version x", None)])
def test_rustc_versions_and_the_layouts_they_choose(text, expected):
    from symtool.formats.rust_panic import LAYOUT_2018, LAYOUT_TEMPLATE, layouts_for, rustc_version

    assert rustc_version(text) == expected
    assert layouts_for((1, 63)) == (LAYOUT_2018,) and layouts_for((1, 95)) == (LAYOUT_TEMPLATE,)
    assert layouts_for(None) == (LAYOUT_2018, LAYOUT_TEMPLATE)
