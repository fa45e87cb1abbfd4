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
import struct

from symtool.errors import FormatError, UnsafeNameError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    import uuid

PDB70 = "pdb70"
NB10 = "nb10"
PORTABLE = "portable"

# A GUID as stored on disk (and as uuid.UUID's bytes_le): Data1 (u32), Data2, Data3 (u16),
# little-endian, then Data4 (8 bytes as they are).
GUID_LE = struct.Struct("<IHH8s")


class _Value:
    """Value semantics for the identity types (equal and hashed by their fields, immutable): what
    ``@dataclass(frozen=True)`` gives, without importing dataclasses (inspect, ast, dis, tokenize:
    a third of what `symtool id` adds to Python's start) and compiling methods for each class."""

    __slots__ = ()

    def __init__(self, *values) -> None:
        for name, value in zip(self.__slots__, values, strict=True):
            object.__setattr__(self, name, value)

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return other.__class__ is self.__class__ and self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.__class__, self._values()))

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self):  # copy, deepcopy and pickle go through __init__ (__setattr__ refuses)
        return self.__class__, self._values()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class DebugId(_Value):
    """Identity of a PDB: GUID (or NB10 signature) and age.

    ``kind``: PDB70, NB10 or PORTABLE; ``guid_le``: the GUID's 16 bytes as stored on disk (None
    for NB10); ``signature``: NB10 only; ``age``: None for a PDB without a DBI stream (keyed by
    GUID alone)."""

    __slots__ = ("kind", "guid_le", "signature", "age")
    kind: str
    guid_le: bytes | None
    signature: int | None
    age: int | None

    def __init__(self, kind: str, guid_le: bytes | None = None, signature: int | None = None,
                 age: int | None = None) -> None:
        if guid_le is not None and len(guid_le) != GUID_LE.size:
            raise ValueError("a GUID is 16 bytes")
        super().__init__(kind, None if guid_le is None else bytes(guid_le), signature, age)

    @classmethod
    def from_guid_bytes(cls, raw: bytes, age: int | None) -> "DebugId":
        """GUID as stored on disk (little-endian Data1..Data3, then Data4)."""
        return cls(PDB70, guid_le=raw, age=age)

    @classmethod
    def nb10(cls, signature: int, age: int) -> "DebugId":
        return cls(NB10, signature=signature, age=age)

    @property
    def guid(self) -> uuid.UUID | None:
        """The GUID as a :class:`uuid.UUID` (imported here: it imports the platform module)."""
        if self.guid_le is None:
            return None
        import uuid

        return uuid.UUID(bytes_le=self.guid_le)

    @property
    def guid_str(self) -> str | None:
        """GUID in registry format, upper case: ``3249D99D-0C40-4931-8610-F4E4FB0B6936``."""
        if self.guid_le is None:
            return None
        d1, d2, d3, d4 = GUID_LE.unpack(self.guid_le)
        return f"{d1:08X}-{d2:04X}-{d3:04X}-{d4[:2].hex().upper()}-{d4[2:].hex().upper()}"

    def index(self) -> str:
        """The store directory name (the INDEX in ``name/INDEX/name``)."""
        if self.kind == NB10:
            assert self.signature is not None and self.age is not None
            return f"{self.signature:08X}{self.age:x}"
        assert self.guid_le is not None
        d1, d2, d3, d4 = GUID_LE.unpack(self.guid_le)
        head = f"{d1:08X}{d2:04X}{d3:04X}{d4.hex().upper()}"
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


class CodeId(_Value):
    """Identity of a PE image: TimeDateStamp and SizeOfImage."""

    __slots__ = ("timestamp", "size_of_image")
    timestamp: int
    size_of_image: int

    def __init__(self, timestamp: int, size_of_image: int) -> None:
        super().__init__(timestamp, size_of_image)

    def index(self) -> str:
        return f"{self.timestamp:08X}{self.size_of_image:x}"

    def __str__(self) -> str:
        return self.index()


class BuildId(_Value):
    """Identity of an ELF file: the bytes of its GNU build-id note.

    Key: the bytes in lower-case hex, two digits each, in note order
    (debuginfod's ``buildid/<id>/...``, SSQP's ``elf-buildid-<id>``).
    """

    __slots__ = ("raw",)
    raw: bytes

    def __init__(self, raw: bytes) -> None:
        super().__init__(raw)

    def index(self) -> str:
        return self.raw.hex()

    def __str__(self) -> str:
        return self.index()


class MachUuid(_Value):
    """Identity of a Mach-O slice: its ``LC_UUID``.

    Key: the 16 bytes in lower-case hex without dashes (SSQP's
    ``mach-uuid-<uuid>``); shown with dashes in upper case as Apple's tools do.
    """

    __slots__ = ("raw",)
    raw: bytes

    def __init__(self, raw: bytes) -> None:
        super().__init__(raw)

    def index(self) -> str:
        return self.raw.hex()

    @property
    def uuid_str(self) -> str:
        h = bytes(self.raw).hex().upper()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

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
