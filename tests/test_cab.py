"""CAB writer/reader: round trips, interop with cabextract and gcab both ways,
hostile input (hypothesis)."""

from __future__ import annotations

import io
import os
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import need_tool
from symtool.errors import FormatError, StoreError
from symtool.formats import cab
from symtool.formats.cab import (MAX_CAB_INPUT, UnsupportedCompression, compress_to_cab, extract_single,
                                 read_single_header)


def _cab_bytes(src: Path, name: str) -> bytes:
    out = io.BytesIO()
    compress_to_cab(src, out, name)
    return out.getvalue()


def _extract(data: bytes, max_size: int = 1 << 31) -> tuple[str, bytes]:
    out = io.BytesIO()
    name = extract_single(io.BytesIO(data), out, max_size=max_size)
    return name, out.getvalue()


@pytest.fixture(params=["crash.pdb", "empty", "random", "exact-blocks", "one-byte-over"])
def sample_file(request, tmp_path, fixtures_dir) -> Path:
    kind = request.param
    if kind == "crash.pdb":
        return fixtures_dir / "pe-pdb" / "crash.pdb"
    path = tmp_path / f"{kind}.bin"
    size = {"empty": 0, "random": 100_003, "exact-blocks": 3 * 32768, "one-byte-over": 2 * 32768 + 1}[kind]
    path.write_bytes(os.urandom(size) if kind == "random" else bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    return path


def test_roundtrip(sample_file):
    data = _cab_bytes(sample_file, sample_file.name)
    assert data[:4] == b"MSCF"
    name, content = _extract(data)
    assert name == sample_file.name
    assert content == sample_file.read_bytes()
    info = read_single_header(io.BytesIO(data))
    assert info["method_name"] == "MSZIP"
    assert info["blocks"] == -(-len(content) // 32768)
    (cb_cabinet,) = struct.unpack_from("<I", data, 8)
    assert cb_cabinet == len(data)


def test_non_seekable_destination_gives_same_bytes(tmp_path, fixtures_dir):
    src = fixtures_dir / "pe-pdb" / "crash.pdb"

    class Pipe(io.RawIOBase):
        def __init__(self):
            self.buf = bytearray()

        def writable(self):
            return True

        def seekable(self):
            return False

        def write(self, b):
            self.buf += b
            return len(b)

    pipe = Pipe()
    compress_to_cab(src, pipe, "crash.pdb")
    assert bytes(pipe.buf) == _cab_bytes(src, "crash.pdb")


def test_progress_counts_every_byte(fixtures_dir):
    src = fixtures_dir / "pe-pdb" / "crash.pdb"
    seen = []
    compress_to_cab(src, io.BytesIO(), "crash.pdb", progress=seen.append)
    assert sum(seen) == src.stat().st_size
    assert max(seen) <= 32768


def test_unicode_member_name(tmp_path):
    src = tmp_path / "x.pdb"
    src.write_bytes(b"hello" * 1000)
    name, content = _extract(_cab_bytes(src, "sümbol.pdb"))
    assert name == "sümbol.pdb" and content == src.read_bytes()


def test_too_large_input_refused(tmp_path):
    big = tmp_path / "big.pdb"
    with open(big, "wb") as f:
        f.truncate(MAX_CAB_INPUT + 1)  # sparse
    with pytest.raises(StoreError, match="too large for a CAB"):
        compress_to_cab(big, io.BytesIO(), "big.pdb")
    assert MAX_CAB_INPUT == 0x7FFF8000


def test_max_size_enforced(fixtures_dir):
    data = _cab_bytes(fixtures_dir / "pe-pdb" / "crash.pdb", "crash.pdb")
    with pytest.raises(FormatError, match="over the limit"):
        _extract(data, max_size=1000)


# --- interop with tools no one here wrote ------------------------------------------------------

def test_cabextract_reads_ours(tmp_path, sample_file):
    cabextract = need_tool("cabextract")
    cab_path = tmp_path / "out.cab"
    cab_path.write_bytes(_cab_bytes(sample_file, sample_file.name))
    test = subprocess.run([cabextract, "-t", str(cab_path)], capture_output=True, text=True)
    assert test.returncode == 0, test.stdout + test.stderr  # -t verifies block checksums too
    piped = subprocess.run([cabextract, "-q", "-p", str(cab_path)], capture_output=True)
    assert piped.returncode == 0
    assert piped.stdout == sample_file.read_bytes()
    listing = subprocess.run([cabextract, "-l", str(cab_path)], capture_output=True, text=True).stdout
    assert sample_file.name in listing


def test_gcab_reads_ours(tmp_path, sample_file):
    gcab = need_tool("gcab")
    cab_path = tmp_path / "out.cab"
    cab_path.write_bytes(_cab_bytes(sample_file, sample_file.name))
    outdir = tmp_path / "x"
    outdir.mkdir()
    proc = subprocess.run([gcab, "-x", "-C", str(outdir), str(cab_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (outdir / sample_file.name).read_bytes() == sample_file.read_bytes()


@pytest.mark.parametrize("flags,method", [(["-z"], "MSZIP"), ([], "none")])
def test_we_read_gcab(tmp_path, fixtures_dir, flags, method):
    gcab = need_tool("gcab")
    src_dir = tmp_path / "in"
    src_dir.mkdir()
    src = src_dir / "crash.pdb"
    src.write_bytes((fixtures_dir / "pe-pdb" / "crash.pdb").read_bytes())
    cab_path = tmp_path / "crash.pd_"
    proc = subprocess.run([gcab, "-c", *flags, "-n", str(cab_path), "crash.pdb"], cwd=src_dir,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    data = cab_path.read_bytes()
    assert read_single_header(io.BytesIO(data))["method_name"] == method
    assert struct.unpack_from("<I", data, 36 + 8 + 16 + len("crash.pdb") + 1)[0] != 0  # gcab writes checksums
    name, content = _extract(data)
    assert name == "crash.pdb" and content == src.read_bytes()


def test_multi_file_cab_refused(tmp_path):
    gcab = need_tool("gcab")
    (tmp_path / "a.txt").write_bytes(b"a" * 10)
    (tmp_path / "b.txt").write_bytes(b"b" * 10)
    subprocess.run([gcab, "-c", "-z", "-n", "two.cab", "a.txt", "b.txt"], cwd=tmp_path, check=True)
    with pytest.raises(FormatError, match="not a single-file CAB"):
        _extract((tmp_path / "two.cab").read_bytes())


# --- hostile input ------------------------------------------------------------------------------

def _small_cab() -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.pdb"
        p.write_bytes(b"Microsoft C/C++ MSF 7.00\r\n" * 3000)
        return _cab_bytes(p, "t.pdb")


SMALL = _small_cab()


def test_lzx_refused_with_clear_error():
    data = bytearray(SMALL)
    struct.pack_into("<H", data, 36 + 6, 0x1503)  # typeCompress = LZX, window 2^21
    with pytest.raises(UnsupportedCompression, match="LZX"):
        _extract(bytes(data))


@pytest.mark.parametrize("offset,value,message", [
    (0, b"MSCX", "not a CAB"),
    (8, struct.pack("<I", 10**9), "truncated CAB"),
    (25, b"\x02", "unsupported CAB version"),
    (30, struct.pack("<H", 0x0002), "multi-cabinet"),
    (36, struct.pack("<I", 10**9), "do not fit"),
    (36 + 4, struct.pack("<H", 0xFFFF), "do not fit"),
    (36 + 6, struct.pack("<H", 0x0009), "unknown compression"),
    (44, struct.pack("<I", 10**9), "cannot fit"),
    (44 + 6, struct.pack("<H", 3), "points at folder"),
])
def test_corrupt_fields(offset, value, message):
    data = bytearray(SMALL)
    data[offset:offset + len(value)] = value
    with pytest.raises(FormatError, match=message):
        _extract(bytes(data))


def test_truncated_everywhere():
    for cut in list(range(0, 80)) + list(range(80, len(SMALL), 97)):
        with pytest.raises(FormatError):
            _extract(SMALL[:cut])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(SMALL) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_mutations_never_crash(mutations):
    data = bytearray(SMALL)
    for pos, byte in mutations:
        data[pos] = byte
    try:
        name, content = _extract(bytes(data), max_size=1 << 20)
    except FormatError:
        return
    assert isinstance(name, str) and len(content) <= 1 << 20


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_crash(blob):
    try:
        _extract(b"MSCF" + blob, max_size=1 << 20)
    except FormatError:
        pass


@given(st.binary(max_size=200), st.integers(0, 2**32 - 1))
def test_checksum_matches_reference(data, seed):
    # The straightforward word-by-word definition from the CAB specification.
    ref = seed
    n = len(data) // 4
    for i in range(n):
        ref ^= int.from_bytes(data[4 * i:4 * i + 4], "little")
    ul = 0
    for b in data[4 * n:]:
        ul = (ul << 8) | b
    assert cab.checksum(data, seed) == (ref ^ ul) & 0xFFFFFFFF


def test_lzx_cab_from_elsewhere_is_refused_but_cabextract_reads_it(tmp_path, fixtures_dir):
    from nginx_server import lzx_cab

    exe = (fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.exe").read_bytes()
    data = lzx_cab(exe, "dummyprog.exe")
    with pytest.raises(UnsupportedCompression, match="LZX compression"):
        _extract(data)
    assert read_single_header(io.BytesIO(data))["name"] == "dummyprog.exe"
    cabextract = need_tool("cabextract")
    (tmp_path / "x.ex_").write_bytes(data)
    piped = subprocess.run([cabextract, "-q", "-p", str(tmp_path / "x.ex_")], capture_output=True)
    assert piped.returncode == 0 and piped.stdout == exe  # the fixture really is LZX that a real tool expands
