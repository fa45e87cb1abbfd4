"""Crafted PDBs for the hostile suite (issue 22): a real PDB from clang -gcodeview + lld-link,
its streams taken apart and one structure made hostile, then written back as an MSF 7.00 file
with tests/builders/msf.py.

Layouts from LLVM's "The PDB File Format" pages (DBI stream, module info, file info), declared
here independently of symtool.formats.pdb (see tests/builders/__init__.py).
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from builders.msf import build_msf7
from conftest import need_tool

DBI = 3
DBI_HEADER_SIZE = 64
DBI_SIZES = struct.Struct("<iiiiiIii")  # at 24: ModInfo, SecContr, SecMap, SourceInfo, TypeServerMap, MFC, DbgHdr, EC
SUBSTREAM_ORDER = ("mod", "secc", "secm", "src", "tsm", "ec", "dbg")  # storage order
MODINFO = struct.Struct("<I28sHHIIIHHIII")  # 64 bytes, then two NUL-terminated names, 4-aligned
C13_SUBSECTION = struct.Struct("<II")
DEBUG_S_IGNORE = 0x80000000

C_SOURCE = "static int twice(int x) {\n  return 2 * x;\n}\nint main(void) {\n  return twice(21);\n}\n"


def build_real_pdb(where: Path) -> Path:
    """clang --target=x86_64-pc-windows-msvc -gcodeview + lld-link: a real PDB (one module with lines)."""
    need_tool("clang"), need_tool("lld-link")
    where.mkdir(parents=True, exist_ok=True)
    (where / "main.c").write_text(C_SOURCE)
    subprocess.run(["clang", "--target=x86_64-pc-windows-msvc", "-g", "-gcodeview", "-c", "main.c", "-o", "main.obj"],
                   check=True, capture_output=True, cwd=where)
    subprocess.run(["lld-link", "/debug", "/nodefaultlib", "/entry:main", "/subsystem:console", "/out:app.exe",
                    "/pdb:app.pdb", "main.obj"], check=True, capture_output=True, cwd=where)
    return where / "app.pdb"


def streams_of(pdb: Path) -> list[bytes | None]:
    """Every stream of an MSF 7.00 file (None for nil streams), by its own directory."""
    data = pdb.read_bytes()
    bs, _fpm, _nblocks, dir_bytes, _u = struct.unpack_from("<IIIII", data, 32)
    n_map = -(-(-(-dir_bytes // bs) * 4) // bs)
    map_blocks = struct.unpack_from(f"<{n_map}I", data, 52)
    dir_block_list = b"".join(data[b * bs:(b + 1) * bs] for b in map_blocks)
    n_dir = -(-dir_bytes // bs)
    dir_blocks = struct.unpack_from(f"<{n_dir}I", dir_block_list)
    directory = b"".join(data[b * bs:(b + 1) * bs] for b in dir_blocks)[:dir_bytes]
    (n,) = struct.unpack_from("<I", directory)
    sizes = struct.unpack_from(f"<{n}I", directory, 4)
    pos = 4 + 4 * n
    out: list[bytes | None] = []
    for size in sizes:
        if size == 0xFFFFFFFF:
            out.append(None)
            continue
        k = -(-size // bs)
        blocks = struct.unpack_from(f"<{k}I", directory, pos)
        pos += 4 * k
        out.append(b"".join(data[b * bs:(b + 1) * bs] for b in blocks)[:size])
    return out


def split_dbi(dbi: bytes) -> tuple[bytes, dict[str, bytes]]:
    sizes = DBI_SIZES.unpack_from(dbi, 24)
    named = dict(zip(("mod", "secc", "secm", "src", "tsm", "mfc", "dbg", "ec"), sizes))
    parts, pos = {}, DBI_HEADER_SIZE
    for name in SUBSTREAM_ORDER:
        parts[name] = dbi[pos:pos + named[name]]
        pos += named[name]
    return dbi[:DBI_HEADER_SIZE], parts


def join_dbi(header: bytes, parts: dict[str, bytes]) -> bytes:
    h = bytearray(header)
    mfc = DBI_SIZES.unpack_from(header, 24)[5]
    DBI_SIZES.pack_into(h, 24, len(parts["mod"]), len(parts["secc"]), len(parts["secm"]), len(parts["src"]),
                        len(parts["tsm"]), mfc, len(parts["dbg"]), len(parts["ec"]))
    return bytes(h) + b"".join(parts[name] for name in SUBSTREAM_ORDER)


def modules(mod_substream: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos + MODINFO.size <= len(mod_substream):
        end = mod_substream.index(b"\0", pos + MODINFO.size)
        end = mod_substream.index(b"\0", end + 1)
        nxt = (end + 1 + 3) & ~3
        out.append(mod_substream[pos:nxt])
        pos = nxt
    return out


def write_pdb(path: Path, streams: list[bytes | None]) -> Path:
    path.write_bytes(build_msf7(streams))
    return path


def names_without_nul(real: Path, out: Path, n_offsets: int = 20_000, buf_len: int = 80_000) -> Path:
    """Item 4: the DBI file info's names buffer has no NUL and ``n_offsets`` distinct offsets into it."""
    streams = streams_of(real)
    header, parts = split_dbi(streams[DBI])
    n_offsets = min(n_offsets, 0xFFFF)  # one module's count is a u16
    # NumModules=1, NumSourceFiles, ModIndices[1], ModFileCounts[1], FileNameOffsets[n], then the
    # names buffer: 'A' only (its length a multiple of 4, so no padding NUL ends it either).
    src = struct.pack("<HHHH", 1, n_offsets, 0, n_offsets) + struct.pack(f"<{n_offsets}I", *range(n_offsets))
    parts["src"] = src + b"A" * (buf_len - buf_len % 4)
    streams[DBI] = join_dbi(header, parts)
    return write_pdb(out, streams)


def names_stream_without_nul(real: Path, out: Path, buf_len: int = 200_000) -> Path:
    """Item 4, the C13 path: the /names buffer the file checksums point into has no NUL."""
    from symtool.formats.pdb import read_pdb  # only to find /names' stream number

    streams = streams_of(real)
    names = read_pdb(real).named_streams["/names"]
    sig_ver = streams[names][:8]
    streams[names] = sig_ver + struct.pack("<I", buf_len) + b"B" * buf_len + b"\0" * 4
    return write_pdb(out, streams)


def shared_module_stream(real: Path, out: Path, n_modules: int = 2000, pad: int = 256 << 10) -> Path:
    """Item 9: ``n_modules`` module infos naming the same module stream, whose C13 part is
    padded with an ignored subsection of ``pad`` bytes."""
    streams = streams_of(real)
    header, parts = split_dbi(streams[DBI])
    mods = modules(parts["mod"])
    rec = None
    for m in mods:
        fields = list(MODINFO.unpack_from(m))
        if fields[3] != 0xFFFF and fields[6] > 0:  # has a stream with C13 lines
            rec, fields_of = m, fields
            break
    assert rec is not None, "no module with line info"
    stream = fields_of[3]
    body = streams[stream]
    c13_end = fields_of[4] + fields_of[5] + fields_of[6]
    extra = C13_SUBSECTION.pack(DEBUG_S_IGNORE, pad) + b"\0" * pad
    streams[stream] = body[:c13_end] + extra + body[c13_end:]
    fields_of[6] += len(extra)
    big = MODINFO.pack(*fields_of) + rec[MODINFO.size:]
    parts["mod"] = b"".join(big if m is rec else m for m in mods) + big * (n_modules - 1)
    streams[DBI] = join_dbi(header, parts)
    return write_pdb(out, streams)


def aliased_named_streams(real: Path, out: Path, aliases: dict[str, int]) -> Path:
    """Item 11: the PDB info stream's named-stream map gains ``name -> stream`` entries that point at
    streams the PDB already uses for something else (the DBI, a module stream, /names).

    The map is a hash table whose bucket order a reader of the map must follow, so it is edited with
    symtool's own table code (the thing under test is the writer's refusal, not the map reader)."""
    from symtool.formats.msf_write import NamedStreamTable

    streams = streams_of(real)
    info = streams[1]
    table, end = NamedStreamTable.parse(info, 28)  # after Version, Signature, Age, GUID
    for name, num in aliases.items():
        table.set(name, num)
    streams[1] = info[:28] + table.serialize() + info[end:]
    return write_pdb(out, streams)


def build_pdb_naming(where: Path, names: list[str], compilation_dir: str | None = None) -> Path:
    """A real PDB (clang -gcodeview + lld-link) whose line table names each of ``names``: one
    function under a ``#line 1 "<name>"`` each.  Relative names are joined to ``compilation_dir``
    (``-fdebug-compilation-dir``) by clang itself."""
    need_tool("clang"), need_tool("lld-link")
    where.mkdir(parents=True, exist_ok=True)

    def c_string(s: str) -> str:
        return s.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n")

    body = "".join(f'#line 1 "{c_string(n)}"\nint f{i}(int x) {{ return x + {i}; }}\n' for i, n in enumerate(names))
    calls = " + ".join(f"f{i}({i})" for i in range(len(names)))
    (where / "main.c").write_text(body + f"int main(void) {{ return {calls}; }}\n")
    extra = [f"-fdebug-compilation-dir={compilation_dir}"] if compilation_dir else []
    subprocess.run(["clang", "--target=x86_64-pc-windows-msvc", "-g", "-gcodeview", *extra, "-c", "main.c",
                    "-o", "main.obj"], check=True, capture_output=True, cwd=where)
    subprocess.run(["lld-link", "/debug", "/nodefaultlib", "/entry:main", "/subsystem:console", "/out:app.exe",
                    "/pdb:app.pdb", "main.obj"], check=True, capture_output=True, cwd=where)
    return where / "app.pdb"
