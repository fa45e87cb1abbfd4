"""``symtool symbolize --obj FILE [ADDR...]``: function, file:line:column and inline frames of
addresses, printed as llvm-symbolizer prints them."""

from __future__ import annotations

import os
import sys

from symtool.commands.common import (FLAG, MULTIPLE, VALUE, apply_symbol_cache_option, parse_options, run_parsed,
                                     terminal_safe)
from symtool.formats.symbols import llvm_function

# An address from a log is often a whole run: this module imports neither typer nor the
# settings, store and dump machinery at import time.  `symtool symbolize ARGS` is parsed by
# :func:`fast_main` (symtool.main calls it before typer is imported) when every argument is
# one of OPTIONS in a form it takes whole; anything else (--help, an unknown option, a missing
# value) goes to the typer command of :func:`register`, whose options are declared from the same
# table and which runs the same :func:`run_symbolize`.

# The command's options: names (the first is the long name), the parameter they set, and their
# kind.  One table for both parsers (tests/test_symbolize_fast_path.py checks it against the
# parameters typer builds).
OPTIONS = (
    (("--obj", "-e", "--exe"), "obj", VALUE),
    (("--arch",), "arch", VALUE),
    (("--dwp",), "dwp", VALUE),
    (("--module",), "module", VALUE),
    (("--relative",), "relative", FLAG),
    (("--json",), "json_out", FLAG),
    (("--store", "-s"), "store", MULTIPLE),
    (("--build-dir", "-b"), "build_dir", MULTIPLE),
    (("--offline",), "offline", FLAG),
    (("--no-symbol-cache",), "no_symbol_cache", FLAG),
    (("--manifest-path",), "manifest_path", VALUE),
    (("--package", "-p"), "package", MULTIPLE),
    (("--profile",), "profile", VALUE),
    (("--target",), "target", MULTIPLE),
)
_NAMES = {dest: names for names, dest, _kind in OPTIONS}

EXAMPLES = """Examples:

  symtool symbolize --obj target/release/app 0x4a1c20 0x4a1d08

  grep -o '0x[0-9a-f]*' backtrace.txt | symtool symbolize --obj target/release/app

  symtool symbolize --obj app --dwp app.dwp --json 0x4a1c20

  symtool symbolize --obj app.exe --store ./symstore 0x140001234

  symtool symbolize --obj app.exe --relative 0x1234   (an RVA: offset from the image base)

  symtool symbolize --obj target/aarch64-apple-darwin/release/app 0x100003f20   (its dSYM)

  symtool symbolize --obj universal-app --arch x86_64 0x100003f20

  symtool symbolize --module app.pdb/3F2504E04F8911D39A0C0305E82C33011 --store ./symstore 0x1234

Replaces:  llvm-symbolizer --obj=FILE ADDR...  (the same text: for each address the
function and file:line:column of each inline frame, innermost first, then a blank
line; ?? and ??:0:0 where nothing is known), so scripts can swap one for the other.

Addresses come from the arguments, else one per line from stdin; 0x... is hex,
other numbers decimal.  They are the file's virtual addresses (ELF: as llvm-nm and
the linker map show them; PE: ImageBase + RVA), or offsets from the image base
with --relative.  A store key (--module) names a PDB or an ELF debug file in a
store: a PDB has no image base, so its addresses are RVAs.

ELF: split DWARF is read from the .dwp beside the binary (or --dwp), else from the
unpacked .dwo files its skeleton units name, read only from the binary's
directory tree and the --build-dir directories (their compilation directory
counts when it lies in one of them).
PE: the PDB is found by the image's CodeView record in the stores (--store,
SYMTOOL_STORE, Cargo.toml, _NT_SYMBOL_PATH) and the build directories, as
`symtool stack` finds it.

Exit code: 0 every address was answered (?? included), 2 bad usage or an
unreadable file or address.
"""


def parse_address(text: str) -> int:
    """An address as llvm-symbolizer reads one: 0x-prefixed hex, else decimal."""
    t = text.strip()
    try:
        value = int(t, 16) if t[:2] in ("0x", "0X") else int(t, 10)
    except ValueError:
        value = None
    if value is None or value < 0 or value >= 1 << 64:
        from symtool.errors import UsageError  # (not on the way of every address)

        if value is None:
            raise UsageError(f"not an address: {t[:40]!r} (hex with 0x, or decimal)") from None
        raise UsageError(f"not a 64-bit address: {t[:40]!r}")
    return value


def frame_lines(result) -> list[str]:
    """llvm-symbolizer's lines for one address: function, then file:line:column, per frame."""
    if result is None or not result.frames:
        return ["??", "??:0:0"]
    out = []
    for f in result.frames:
        out.append(llvm_function(f))
        out.append(f"{f.file or '??'}:{f.line or 0}:{f.column or 0}")
    return out


UNKNOWN_BLOCK = "".join(line + "\n" for line in frame_lines(None)) + "\n"  # an address nothing describes
MAX_MEMO = 1 << 16  # frames whose lines one run keeps made (then it starts again: bounded memory)
WRITE_CHUNK = 64  # addresses whose text is written at once (~50 KB for a Rust program's inline chains)


class TextBlocks:
    """llvm-symbolizer's text for answers: :func:`frame_lines` made terminal-safe, a blank line
    after each address.  A frame's two lines are made once per Frame object: a symbol cache
    file decodes each distinct frame once and its answers share them (a warm run of 10,000
    addresses has ~14,000 distinct frames among ~41,000), and formatting was most of that run's
    time.  Keyed by identity, the Frame kept beside its text so that its id is not reused.

    Also the renderer of ``render_many`` (symtool.formats.symcache.CacheFile): a symbol cache
    file words what it answers through :meth:`frame`, :attr:`unknown` and :attr:`end` itself,
    without making the answer objects."""

    unknown = UNKNOWN_BLOCK  # an address nothing describes
    end = "\n"  # the blank line after an address's frames
    join = "".join  # of an address's frame texts and end

    def __init__(self):
        self._frames: dict[int, tuple] = {}

    def frame(self, function: str, file: str | None, line: int | None, column: int | None) -> str:
        """One frame's two lines (``function``: the name llvm-symbolizer prints), terminal-safe:
        :func:`frame_lines`' lines (tests/test_symbolize_fast_path.py compares them)."""
        # (terminal_safe escapes character by character, and the line and column are digits: the
        # name and the path are made safe each alone, as the whole lines would be.)
        if not function.isprintable():
            function = terminal_safe(function)
        if not file:
            file = "??"
        elif not file.isprintable():
            file = terminal_safe(file)
        return f"{function}\n{file}:{line or 0}:{column or 0}\n"

    def block(self, result) -> str:
        if result is None or not result.frames:
            return self.unknown
        memo = self._frames
        parts = []
        for f in result.frames:
            known = memo.get(id(f))
            if known is not None and known[0] is f:
                parts.append(known[1])
                continue
            text = self.frame(llvm_function(f), f.file, f.line, f.column)
            if len(memo) >= MAX_MEMO:
                memo.clear()
            memo[id(f)] = (f, text)
            parts.append(text)
        parts.append(self.end)
        return self.join(parts)


class EncodedBlocks(TextBlocks):
    """:class:`TextBlocks`' text as bytes, encoded as the text stream it goes to would encode it
    (its encoding and error handler; used where that stream translates no newline): each
    distinct frame is encoded once, and the bytes go to the stream's binary buffer.  At 10,000
    addresses of a Rust program the text is ~8 MB: encoding it whole at each write cost ~1 us
    an address, a tenth of a warm run."""

    end = b"\n"
    join = b"".join

    def __init__(self, encoding: str, errors: str):
        super().__init__()
        self._codec = (encoding, errors)
        self.unknown = UNKNOWN_BLOCK.encode(encoding, errors)

    def frame(self, function: str, file: str | None, line: int | None, column: int | None) -> bytes:
        return super().frame(function, file, line, column).encode(*self._codec)


def address_json(address: int, rva: int, result) -> dict:
    frames = [] if result is None else [{"function": llvm_function(f), "file": f.file, "line": f.line,
                                         "column": f.column} for f in result.frames]
    return {"address": f"{address:#x}", "rva": f"{rva:#x}", "frames": frames,
            "symbol": result.symbol if result is not None else None,
            "symbol_offset": result.symbol_offset if result is not None else None,
            "module": result.module if result is not None else None}


def _stdin_batches():
    """Lists of addresses from stdin, each what one read returned: answered, then flushed, so a
    pipe that asks one address at a time gets its answer at once, and a file is not flushed
    per address."""
    import os

    fd = sys.stdin.fileno()
    pending = b""
    while True:
        chunk = os.read(fd, 1 << 16)
        data = pending + chunk
        cut = data.rfind(b"\n") + 1 if chunk else len(data)
        pending = data[cut:]
        # Decoded whole (a newline is never part of a UTF-8 sequence: the same text as line by line).
        batch = [parse_address(line) for line in data[:cut].decode("utf-8", "replace").split("\n") if line.strip()]
        if batch or not chunk:
            yield batch
        if not chunk:
            return


def _addresses(given: list[str]):
    """Batches of addresses: the arguments (every one checked before any output), or stdin's."""
    if given:
        return iter([[parse_address(a) for a in given]])
    return _stdin_batches()


def parse_fast(argv: list[str]) -> dict | None:
    """The parameters of ``symtool symbolize ARGV`` as typer would pass them, or None when typer
    must see ARGV (:func:`symtool.commands.common.parse_options`)."""
    return parse_options(argv, OPTIONS, "addresses")


def fast_main(argv: list[str]) -> int | None:
    """``symtool symbolize ARGV`` without the CLI framework; None when typer must take over."""
    return run_parsed(parse_fast(argv), run_symbolize, "json_out")


def run_symbolize(addresses: list[str] | None, obj: str | None, arch: str | None, dwp: str | None,
                  module: str | None, relative: bool, json_out: bool, store: list[str] | None,
                  build_dir: list[str] | None, offline: bool, no_symbol_cache: bool, manifest_path: str | None,
                  package: list[str] | None, profile: str | None, target: list[str] | None) -> None:
    """The command, for both parsers."""
    from pathlib import Path

    from symtool.commands.common import note, print_json_stream
    from symtool.errors import UsageError

    apply_symbol_cache_option(no_symbol_cache)
    if (obj is None) == (module is None):
        raise UsageError("give the object file (--obj FILE) or a store key (--module KEY), one of them")
    if dwp is not None and not Path(dwp).is_file():
        raise UsageError("no such file", dwp)
    given = list(addresses or [])
    batches = _addresses(given)
    if given:
        batches = iter(list(batches))  # bad arguments: exit 2 before the files are opened
    target_file, _files, locator, fetcher = _open(obj, module, dwp, store, build_dir, offline, manifest_path,
                                                  package, profile, target, arch)
    try:
        relative = relative or target_file.kind == "pdb"

        def answers(batch):
            base = 0 if relative else target_file.image_base
            return [(address, address - base, result)
                    for address, result in zip(batch, target_file.symbolize_many(batch, relative))]

        if json_out:
            # Answered whole before anything is written: a file that turns out malformed halfway
            # gives one error object, never half a document.
            entries = [address_json(a, r, res) for batch in batches for a, r, res in answers(batch)]
            print_json_stream([("object", target_file.path), ("debug_file", target_file.debug_path),
                               ("image_base", f"{target_file.image_base:#x}"), ("addresses", iter(entries)),
                               ("notes", list(target_file.notes))])
            return
        from itertools import chain

        out = sys.stdout
        binary = getattr(out, "buffer", None)
        if binary is not None and getattr(out, "encoding", None) and os.linesep == "\n":
            # Bytes the text stream would have written (no newline to translate), made once a frame.
            renderer = EncodedBlocks(out.encoding, out.errors or "strict")
            out.flush()
            join = b"".join
            for batch in batches:
                pieces = target_file.render_many(batch, renderer, relative)
                # Written WRITE_CHUNK addresses at a time: the text of 10,000 addresses is ~8 MB, and
                # joined whole it is fresh memory (page faults) at every batch.
                for k in range(0, len(pieces), WRITE_CHUNK):
                    binary.write(join(chain.from_iterable(pieces[k:k + WRITE_CHUNK])))
                binary.flush()
        else:
            renderer = TextBlocks()
            for batch in batches:
                out.write("".join(chain.from_iterable(target_file.render_many(batch, renderer, relative))))
                out.flush()
        for text in target_file.notes:
            note(text)
    finally:
        target_file.close()
        if locator is not None:
            locator.close()
        if fetcher is not None:
            fetcher.close()


HELP = """Print the function, file:line:column and inline frames of addresses in an ELF binary
(DWARF), a Mach-O binary (its dSYM), a PE image (its PDB) or a PDB, as llvm-symbolizer
prints them."""


def register(app) -> None:
    import typer

    from symtool.commands.common import handle_errors, no_symbol_cache_option
    from symtool.commands.workspace_opts import manifest_path_option, package_option, profile_option, target_option

    def symbolize(
        addresses: list[str] | None = typer.Argument(None, metavar="[ADDR]...",
                                                     help="Addresses (0x... hex or decimal); none: read stdin."),
        obj: str | None = typer.Option(None, *_NAMES["obj"], metavar="FILE",
                                       help="The ELF binary, Mach-O binary or dSYM, PE image or PDB the addresses "
                                            "are in."),
        arch: str | None = typer.Option(None, *_NAMES["arch"], metavar="ARCH",
                                        help="The slice of a universal Mach-O file (arm64, x86_64...)."),
        dwp: str | None = typer.Option(None, *_NAMES["dwp"], metavar="FILE",
                                       help="The ELF binary's .dwp (default: FILE.dwp beside it, if any)."),
        module: str | None = typer.Option(None, *_NAMES["module"], metavar="KEY",
                                          help="A debug file by store key NAME/INDEX instead of --obj."),
        relative: bool = typer.Option(False, *_NAMES["relative"],
                                      help="Addresses are offsets from the image base (RVAs)."),
        json_out: bool = typer.Option(False, *_NAMES["json_out"], help="Addresses and frames as JSON (stable keys)."),
        store: list[str] | None = typer.Option(None, *_NAMES["store"], metavar="S",
                                               help="Symbol store (directory or http(s) URL); repeatable."),
        build_dir: list[str] | None = typer.Option(None, *_NAMES["build_dir"], metavar="DIR",
                                                   help="Directory with PDBs, images or .dwo files; repeatable "
                                                        "(default: the workspace's build output)."),
        offline: bool = typer.Option(False, *_NAMES["offline"], help="Do not download from http(s) stores."),
        no_symbol_cache: bool = no_symbol_cache_option(),
        manifest_path: str | None = manifest_path_option(),
        package: list[str] | None = package_option(),
        profile: str | None = profile_option("every profile built"),
        target: list[str] | None = target_option(),
    ) -> None:
        run_symbolize(addresses, obj, arch, dwp, module, relative, json_out, store, build_dir, offline,
                      no_symbol_cache, manifest_path, package, profile, target)

    app.command(name="symbolize", help=HELP, epilog=EXAMPLES)(handle_errors(symbolize))


def _open(obj, module, dwp, store, build_dir, offline, manifest_path, package, profile, target, arch=None):
    """(Target, DebugFiles, locator, fetcher): the stores and build directories are looked at only
    when a PE image's PDB or a store key must be found."""
    from pathlib import Path

    from symtool.symbolize import open_target
    from symtool.formats.detect import ELF, detect

    build_dirs = list(build_dir or [])
    if obj is not None and Path(obj).is_file():
        try:
            if detect(obj) == ELF:
                return open_target(Path(obj), dwp=Path(dwp) if dwp else None, dwo_roots=build_dirs), None, None, None
        except OSError:
            pass
    # (The stores' files, not the stack machinery: symtool.dumps.stack and what it imports are
    # not needed to find one PDB or dSYM.)
    from symtool.dumps.locate import DebugFiles, SymbolLocator, check_build_dirs, check_stores, make_fetch
    from symtool.commands.workspace_opts import symbol_dirs
    from symtool.settings import resolve_cache, resolve_stores

    resolved = resolve_stores(store, use_nt_symbol_path=True)
    stores = resolved.stores
    check_stores(stores)
    check_build_dirs(build_dirs)
    cache, _source = resolve_cache(None, resolved)
    fetch, fetcher = make_fetch(stores, cache, offline)
    locals_ = ([cache] if fetch is not None and Path(cache).is_dir() else []) + stores
    dirs = build_dirs + symbol_dirs(manifest_path, package, profile, target)
    if obj is not None:
        dirs.insert(0, str(Path(obj).resolve().parent))  # the PDB beside the image, as debuggers look first
    locator = SymbolLocator(locals_, dirs)
    resolver = DebugFiles(locator, fetch=fetch)
    try:
        found = open_target(Path(obj) if obj else None, module_key=module, dwp=Path(dwp) if dwp else None,
                            resolver=resolver, dwo_roots=dirs, arch=arch)
    except BaseException:
        locator.close()
        if fetcher is not None:
            fetcher.close()
        raise
    return found, resolver, locator, fetcher


__all__ = ["OPTIONS", "register", "run_symbolize", "fast_main", "parse_fast", "frame_lines",
           "address_json", "parse_address"]
