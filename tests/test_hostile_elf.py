"""zlib bombs in ELF debug sections (issue 22 item 7; docs/security.md): a real `gcc -g -gz=zlib`
binary whose compressed DWARF sections are replaced by zlib streams of zeros, each under the
512 MiB per-section cap, together gigabytes from a file of a few MB.

ELF64 layouts from the System V gABI, declared here (tests/builders/__init__.py)."""

from __future__ import annotations

import resource
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from conftest import need_tool
from hostile_helpers import clean_env, peak_rss_mib, symtool

EHDR_SHOFF = struct.Struct("<Q")  # e_shoff at 0x28
EHDR_SH = struct.Struct("<HHH")  # e_shentsize, e_shnum, e_shstrndx at 0x3A
SHDR = struct.Struct("<IIQQQQIIQQ")  # name, type, flags, addr, offset, size, link, info, addralign, entsize
CHDR = struct.Struct("<IIQQ")  # Elf64_Chdr: ch_type, ch_reserved, ch_size, ch_addralign
SHF_COMPRESSED = 0x800
ELFCOMPRESS_ZLIB = 1
BOMBED = (".debug_info", ".debug_abbrev", ".debug_line", ".debug_str", ".debug_line_str", ".debug_aranges")
INFLATED = 480 << 20  # per section: under the reader's 512 MiB per-section cap
GIB = 1 << 30


@pytest.fixture
def env(tmp_path):
    return clean_env(tmp_path)


def build_elf(where: Path) -> Path:
    need_tool("gcc")
    where.mkdir(parents=True, exist_ok=True)
    (where / "Cargo.toml").write_text("[workspace]\nmembers = []\n")
    (where / "main.c").write_text("int twice(int x) {\n  return 2 * x;\n}\nint main(void) {\n  return twice(21);\n}\n")
    subprocess.run(["gcc", "-g", "-O0", "-gz=zlib", "-Wl,--build-id", "main.c", "-o", "app"], check=True,
                   capture_output=True, cwd=where)
    return where / "app"


@pytest.fixture(scope="module")
def zeros_480m() -> bytes:
    """zlib of 480 MiB of zeros (~470 KB), made once."""
    c = zlib.compressobj(9)
    block = bytes(1 << 20)
    return b"".join(c.compress(block) for _ in range(INFLATED >> 20)) + c.flush()


def bomb(real: Path, out: Path, payload: bytes, inflated: int) -> Path:
    """``real`` with each BOMBED section's bytes replaced by an SHF_COMPRESSED zlib ``payload`` that
    inflates to ``inflated`` bytes, appended at the end of the file."""
    data = bytearray(real.read_bytes())
    (shoff,) = EHDR_SHOFF.unpack_from(data, 0x28)
    shentsize, shnum, shstrndx = EHDR_SH.unpack_from(data, 0x3A)
    headers = [list(SHDR.unpack_from(data, shoff + k * shentsize)) for k in range(shnum)]
    strtab = headers[shstrndx]
    names = bytes(data[strtab[4]:strtab[4] + strtab[5]])
    done = []
    for k, h in enumerate(headers):
        name = names[h[0]:names.index(b"\0", h[0])].decode()
        if name not in BOMBED:
            continue
        body = CHDR.pack(ELFCOMPRESS_ZLIB, 0, inflated, 1) + payload
        while len(data) % 8:
            data.append(0)
        h[2] |= SHF_COMPRESSED
        h[4], h[5], h[8] = len(data), len(body), 8
        data += body
        SHDR.pack_into(data, shoff + k * shentsize, *h)
        done.append(name)
    assert len(done) == len(BOMBED), done
    out.write_bytes(data)
    return out


@pytest.mark.parametrize("command", ["id", "publish --sources"])
def test_zlib_bomb_is_a_budget_error(tmp_path, env, zeros_480m, command):
    """4.2 MB ELF: `publish --sources` peaked at 4.75 GB, `id` at 1.07 GB. Now: exit 2 naming the budget,
    before inflating (the headers' sizes are counted first), well under 300 MB."""
    real = build_elf(tmp_path / "ws")
    app = bomb(real, tmp_path / "ws" / "bomb", zeros_480m, INFLATED)
    args = ["id", app] if command == "id" else ["publish", app, "--store", tmp_path / "store", "--sources"]
    proc = symtool(*args, env=env, cwd=tmp_path / "ws", limits={resource.RLIMIT_AS: GIB}, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "SYMTOOL_MAX_INFLATE_RATIO" in proc.stderr, proc.stderr
    assert any(line.startswith("error: ") for line in proc.stderr.splitlines()), proc.stderr
    rss, again = peak_rss_mib(*args, env=env, cwd=tmp_path / "ws")
    assert again.returncode == 2 and rss < 300, (rss, again.stderr)
    print(f"{command}: {app.stat().st_size} bytes, peak RSS {rss:.0f} MiB")


def test_compressed_sections_inflate_once_and_count(tmp_path, env):
    """The deterministic counter: each compressed section is inflated once per reader, its declared size
    counted once; an honest `gcc -gz` binary reads as before."""
    from symtool.formats.binio import BoundedReader
    from symtool.formats.elf import ElfFile

    app = build_elf(tmp_path / "ws")
    with open(app, "rb") as f:
        elf = ElfFile(BoundedReader(f, str(app)), str(app))
        elf.read_sections()
        compressed = [s for s in elf.sections if s.flags & SHF_COMPRESSED]
        assert compressed
        sizes = 0
        for _ in range(3):
            for s in compressed:
                view = elf.view(s)
                if _ == 0:
                    sizes += view.size
        assert elf._inflate.used == sizes
    proc = symtool("id", app, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # The budget is the variable's: a floor of 1 byte and a ratio of 1 refuse even this file's sections.
    low = dict(env, SYMTOOL_MAX_INFLATE_FLOOR="1", SYMTOOL_MAX_INFLATE_RATIO="1")
    big = bomb(app, tmp_path / "ws" / "big", zlib.compress(bytes(4 << 20)), 4 << 20)
    proc = symtool("id", big, env=low, cwd=tmp_path)
    assert proc.returncode == 2 and "SYMTOOL_MAX_INFLATE_RATIO" in proc.stderr, proc.stderr
    proc = symtool("id", big, env=env, cwd=tmp_path)
    assert proc.returncode in (0, 2) and "SYMTOOL_MAX_INFLATE" not in proc.stderr, proc.stderr
