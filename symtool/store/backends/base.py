"""The storage interface every object-storage backend implements (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from symtool.errors import UsageError
from symtool.store.layout import OBJECT_SCHEMES

S3_SCHEME, AZURE_SCHEME = OBJECT_SCHEMES

# Attempts for a request the service asks to retry (S3 409 ConditionalRequestConflict).
RETRY_CONFLICTS = 20


@dataclass(frozen=True)
class ObjectInfo:
    key: str  # below the backend's prefix
    size: int
    etag: str | None = None
    metadata: dict = field(default_factory=dict)
    modified: float | None = None  # POSIX seconds


@dataclass(frozen=True)
class Blob:
    data: bytes
    etag: str | None
    metadata: dict = field(default_factory=dict)


class Backend:
    """The storage interface (see the module docstring)."""

    scheme = ""
    #: a location safe to print (no credentials)
    display = ""

    def get(self, key: str) -> Blob | None:
        raise NotImplementedError

    def head(self, key: str) -> ObjectInfo | None:
        raise NotImplementedError

    def put(self, key: str, data: bytes | Path, *, metadata: dict | None = None,
            if_none_match: bool = False, if_match: str | None = None) -> str | None:
        """Store ``data`` (bytes, or a local file streamed) under ``key``; the new etag.

        ``if_none_match``: only if ``key`` does not exist.  ``if_match``: only if
        its etag is still that.  None when the condition failed.
        """
        raise NotImplementedError

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Remove ``key``; no error when it is absent."""
        raise NotImplementedError

    def open_read(self, key: str) -> BinaryIO | None:
        """A stream of the object's bytes (large payloads), None when absent."""
        blob = self.get(key)
        if blob is None:
            return None
        import io

        return io.BytesIO(blob.data)

    def open_read_info(self, key: str) -> "tuple[BinaryIO, ObjectInfo] | None":
        """A stream of the object's bytes with what the same read said of it (size, etag,
        metadata): one request, so the etag is that of the bytes streamed.  None when absent."""
        import io

        blob = self.get(key)
        if blob is None:
            return None
        return io.BytesIO(blob.data), ObjectInfo(key, len(blob.data), blob.etag, dict(blob.metadata))

    def copy(self, src: str, dst: str) -> bool:
        """Copy the object ``src`` to ``dst`` (replacing it); False when ``src`` is absent.
        Streams through a temp file; backends with a server-side copy override it."""
        import shutil
        import tempfile

        stream = self.open_read(src)
        if stream is None:
            return False
        with stream, tempfile.NamedTemporaryFile(prefix="symtool-copy-") as tmp:
            shutil.copyfileobj(stream, tmp, 1 << 20)
            tmp.flush()
            self.put(dst, Path(tmp.name))
        return True

    def url(self, key: str) -> str:
        """A location of ``key`` to show the user."""
        return f"{self.display.rstrip('/')}/{key}"


def join_key(prefix: str, key: str) -> str:
    return f"{prefix}/{key}" if prefix else key


def missing_extra(package: str, extra: str) -> UsageError:
    return UsageError(f"{extra}:// stores need the {package} package: pip install 'cargo-symtool[{extra_name(extra)}]'")


def extra_name(scheme: str) -> str:
    return "s3" if scheme == S3_SCHEME else "azure"


def redact_userinfo(location: str) -> str:
    """``location`` with whatever stands before an ``@`` in its authority shown as ``***``."""
    head, sep, rest = location.strip().partition("://")
    if not sep:
        return location
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    return f"{head}://{authority}{slash}{path}"


def scrub(text: str, location: str | None = None) -> str:
    """SDK error text without anything secret that came from a location: userinfo of any
    ``scheme://user:pass@`` in it, and the raw authority of ``location`` when it held one."""
    from symtool.store.layout import strip_userinfo

    out = strip_userinfo(text)
    if location and "://" in location:
        authority = location.strip().split("://", 1)[1].split("/", 1)[0]
        if "@" in authority:
            secret = authority.rsplit("@", 1)[0]
            for part in {secret, *secret.split(":")}:
                if part:
                    out = out.replace(part, "***")
    return out
