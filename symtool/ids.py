"""Identities of debug files and the symbol-store keys derived from them.

One type for every format (in the spirit of symbolic's DebugId / CodeId):

* :class:`DebugId` identifies a PDB, or the PDB a binary asks for (CodeView
  record).  Store index: ``%08X%04X%04X`` + 8 x ``%02X`` of the GUID fields
  followed by the age in *lowercase*, unpadded hex (age 10 -> ``...a``).  NB10
  (old PDB 2.0) uses ``%08X`` signature + ``%x`` age.  A PDB without a DBI
  stream is keyed by its GUID alone (what symstore.exe does).  Portable PDBs
  use GUID + ``FFFFFFFF``.
* :class:`CodeId` identifies an image (EXE/DLL/SYS): ``%08X`` TimeDateStamp +
  ``%x`` SizeOfImage, e.g. ``5617D4FE8000``.

Keys are compared case-insensitively everywhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from symtool.errors import FormatError, UnsafeNameError

PDB70 = "pdb70"
NB10 = "nb10"
PORTABLE = "portable"


@dataclass(frozen=True)
class DebugId:
    """Identity of a PDB: GUID (or NB10 signature) and age."""

    kind: str  # PDB70, NB10 or PORTABLE
    guid: uuid.UUID | None = None
    signature: int | None = None  # NB10 only
    age: int | None = None  # None: PDB without DBI stream (keyed by GUID alone)

    @classmethod
    def from_guid_bytes(cls, raw: bytes, age: int | None) -> "DebugId":
        """GUID as stored on disk (little-endian Data1..Data3, then Data4)."""
        import uuid  # (it imports the platform module: only PDB and PE identities pay for it)

        if len(raw) != 16:
            raise ValueError("a GUID is 16 bytes")
        return cls(PDB70, guid=uuid.UUID(bytes_le=bytes(raw)), age=age)

    @classmethod
    def nb10(cls, signature: int, age: int) -> "DebugId":
        return cls(NB10, signature=signature, age=age)

    @property
    def guid_str(self) -> str | None:
        """GUID in registry format, upper case: ``3249D99D-0C40-4931-8610-F4E4FB0B6936``."""
        return str(self.guid).upper() if self.guid is not None else None

    def index(self) -> str:
        """The store directory name (the INDEX in ``name/INDEX/name``)."""
        if self.kind == NB10:
            assert self.signature is not None and self.age is not None
            return f"{self.signature:08X}{self.age:x}"
        assert self.guid is not None
        head = self.guid.hex.upper()
        if self.kind == PORTABLE:
            return head + "FFFFFFFF"
        if self.age is None:
            return head
        return f"{head}{self.age:x}"

    def matches(self, other: "DebugId") -> bool:
        """Microsoft's rule: same GUID (or signature) and the same age."""
        return self.index().upper() == other.index().upper()

    def __str__(self) -> str:
        return self.index()


@dataclass(frozen=True)
class CodeId:
    """Identity of a PE image: TimeDateStamp and SizeOfImage."""

    timestamp: int
    size_of_image: int

    def index(self) -> str:
        return f"{self.timestamp:08X}{self.size_of_image:x}"

    def __str__(self) -> str:
        return self.index()


@dataclass(frozen=True)
class BuildId:
    """Identity of an ELF file: the bytes of its GNU build-id note.

    Key: the bytes in lower-case hex, two digits each, in note order
    (debuginfod's ``buildid/<id>/...``, SSQP's ``elf-buildid-<id>``).
    """

    raw: bytes

    def index(self) -> str:
        return self.raw.hex()

    def __str__(self) -> str:
        return self.index()


@dataclass(frozen=True)
class MachUuid:
    """Identity of a Mach-O slice: its ``LC_UUID``.

    Key: the 16 bytes in lower-case hex without dashes (SSQP's
    ``mach-uuid-<uuid>``); shown with dashes in upper case as Apple's tools do.
    """

    raw: bytes

    def index(self) -> str:
        return self.raw.hex()

    @property
    def uuid_str(self) -> str:
        import uuid

        return str(uuid.UUID(bytes=bytes(self.raw))).upper()

    def __str__(self) -> str:
        return self.index()


_INDEX_RE = re.compile(r"^[0-9A-Fa-f]{8,}$")
# SSQP index directories of ELF and Mach-O files (see symtool.store.layout): a build-id is
# 1-64 bytes, a UUID 16; always lower case.
_SSQP_INDEX_RE = re.compile(r"^(elf-buildid-(sym-)?(?:[0-9a-f]{2}){1,64}|mach-uuid-(sym-)?[0-9a-f]{32})$")


def is_ssqp_index(text: str) -> bool:
    """``elf-buildid-[sym-]<id>`` or ``mach-uuid-[sym-]<uuid>``: an ELF/Mach-O key's INDEX."""
    return bool(_SSQP_INDEX_RE.match(text))


def parse_index(text: str) -> str:
    """Validate an INDEX given by a user or read from a store; returns it unchanged."""
    if is_ssqp_index(text):
        return text
    if not _INDEX_RE.match(text) or len(text) > 48:
        raise FormatError(f"not a symbol-store index: {text!r}")
    return text


# Reserved DOS device names: a file called "CON" or "nul.pdb" on a share is trouble.
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(1, 10)} | {f"LPT{i}" for i in range(1, 10)}


def check_file_name(name: str) -> str:
    """Refuse names that could escape a store or misbehave on Windows shares.

    Names come from PDB paths inside binaries and dumps and from admin files of
    stores, i.e. from data someone else controls.
    """
    if not name or name in (".", ".."):
        raise UnsafeNameError(f"unsafe file name {name!r}")
    if any(c in name for c in '/\\:\0') or any(ord(c) < 32 for c in name):
        raise UnsafeNameError(f"unsafe file name {name!r} (separator, drive or control character)")
    if any(c in name for c in '<>"|?*'):
        raise UnsafeNameError(f"unsafe file name {name!r} (character not allowed on Windows)")
    if name.endswith((" ", ".")):
        raise UnsafeNameError(f"unsafe file name {name!r} (trailing dot or space)")
    if name.split(".")[0].upper() in _RESERVED:
        raise UnsafeNameError(f"unsafe file name {name!r} (reserved device name)")
    if len(name) > 255:
        raise UnsafeNameError(f"file name too long ({len(name)} characters)")
    return name


def basename_any(path: str) -> str:
    """File name of a path written on Windows or POSIX (CodeView paths are Windows paths)."""
    return re.split(r"[\\/]", path.rstrip("\\/"))[-1] if path else ""
