"""Portable PDB writer (tests): just the part that identifies one.

Layout from ECMA-335 II.24.2.1 (metadata root) and the Portable PDB v1.0
specification (#Pdb stream: PDB id = GUID + stamp), declared here
independently of symtool.formats.pdb.
"""

from __future__ import annotations

import struct
import uuid

# Metadata root: Signature "BSJB", MajorVersion, MinorVersion, Reserved, Length (of Version).
METADATA_ROOT = struct.Struct("<4sHHII")
# After the Version string: Flags, Streams (count).
METADATA_ROOT_TAIL = struct.Struct("<HH")
# Stream header: Offset, Size, then the NUL-terminated name padded to 4 bytes.
STREAM_HEADER = struct.Struct("<II")


def build_portable_pdb(guid: uuid.UUID, stamp: int) -> bytes:
    """A metadata root with a #Pdb stream (PDB id = GUID + stamp, entry point 0,
    no referenced tables) and an empty #~ stream."""
    version = b"PDB v1.0\0\0\0\0"
    pdb_stream = guid.bytes_le + struct.pack("<IIQ", stamp, 0, 0)
    names = [b"#Pdb", b"#~"]
    bodies = [pdb_stream, b"\0" * 24]

    def padded(name: bytes) -> bytes:
        return name + b"\0" * (((len(name) + 4) & ~3) - len(name))

    head_len = METADATA_ROOT.size + len(version) + METADATA_ROOT_TAIL.size + sum(
        STREAM_HEADER.size + len(padded(n)) for n in names)
    headers = []
    offset = head_len
    for name, body in zip(names, bodies):
        headers.append(STREAM_HEADER.pack(offset, len(body)) + padded(name))
        offset += len(body)
    root = METADATA_ROOT.pack(b"BSJB", 1, 1, 0, len(version)) + version + METADATA_ROOT_TAIL.pack(0, len(names))
    return root + b"".join(headers) + b"".join(bodies)
