"""Fuzzed PDBs given to the writer and the source-file reader: a FormatError and
the file untouched, or a result every reader accepts.  Never another
exception, and never a rewrite of a file the writer could not vouch for."""

from __future__ import annotations

import os
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES_DIR
from symtool.errors import FormatError
from symtool.formats.msf_write import write_named_streams
from symtool.formats.pdb import iter_source_files, open_msf, read_pdb

SETTINGS = settings(max_examples=int(os.environ.get("SYMTOOL_FUZZ_EXAMPLES", "150")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
BASE = (FIXTURES_DIR / "symstore-exe" / "inputs" / "dummyprog.pdb").read_bytes()
INTERESTING = [0, 1, 2, 3, 0x200, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF]


def _hot_offsets(data: bytes) -> list[int]:
    bs = struct.unpack_from("<I", data, 32)[0]
    offs = list(range(32, 60, 4))
    map_block = struct.unpack_from("<I", data, 52)[0]
    dir_block = struct.unpack_from("<I", data, map_block * bs)[0]
    offs += [dir_block * bs + 4 * k for k in range(bs // 4)]
    return offs


HOT = _hot_offsets(BASE)


@st.composite
def mutated(draw):
    data = bytearray(BASE)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["u32", "byte", "truncate"]))
        if kind == "u32":
            at = draw(st.sampled_from(HOT))
            if at + 4 <= len(data):
                struct.pack_into("<I", data, at, draw(st.sampled_from(INTERESTING)))
        elif kind == "byte":
            if data:
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        else:
            del data[draw(st.integers(0, max(0, len(data) - 1))):]
    return bytes(data)


@SETTINGS
@given(data=mutated())
def test_writer_refuses_or_writes_a_readable_pdb(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("fz")
    p = d / "f.pdb"
    p.write_bytes(data)
    try:
        write_named_streams(p, {"srcsrv": b"SRCSRV", "sourcelink": b"{}"})
    except FormatError:
        assert p.read_bytes() == data
        assert os.listdir(d) == ["f.pdb"]
        return
    info = read_pdb(p)
    assert {"srcsrv", "sourcelink"} <= set(info.named_streams)


@SETTINGS
@given(data=mutated())
def test_source_file_reader_never_crashes(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("fz") / "f.pdb"
    p.write_bytes(data)
    try:
        f, msf = open_msf(p)
    except FormatError:
        return
    with f:
        try:
            iter_source_files(msf)
        except FormatError:
            pass
