"""Object storage for symbol stores: one small interface, several backends.

A backend stores whole objects under '/'-separated keys (below the store's
prefix) and offers exactly what a lock-free store needs:

* :meth:`Backend.get`: bytes, etag and metadata (None when absent);
* :meth:`Backend.head`: size, etag and metadata, without the bytes;
* :meth:`Backend.put`: unconditional, **create-only** (``if_none_match``)
  or **compare-and-swap** (``if_match=etag``); a failed condition returns
  None, never raises;
* :meth:`Backend.list` and :meth:`Backend.delete`.

Implementations: :mod:`.local` (a directory), :mod:`.s3` (boto3) and
:mod:`.azure` (azure-storage-blob).  :func:`open_backend` picks one by the
location's scheme (``s3://bucket/prefix``, ``azblob://container/prefix``).
The transaction logic on top of it is :mod:`symtool.store.objstore`.

Metadata values are ASCII strings (S3 sends them as HTTP headers); keys are
lower-case letters and digits only (Azure wants C# identifiers).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from symtool.errors import UsageError

S3_SCHEME = "s3"
AZURE_SCHEME = "azblob"
OBJECT_SCHEMES = (S3_SCHEME, AZURE_SCHEME)

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

    def url(self, key: str) -> str:
        """A location of ``key`` to show the user."""
        return f"{self.display.rstrip('/')}/{key}"


def split_location(location: str) -> tuple[str, str, str]:
    """``scheme://bucket/prefix`` -> (scheme, bucket, prefix without slashes at either end)."""
    from symtool.store.layout import url_scheme

    scheme = url_scheme(location) or ""
    rest = location.strip().split("://", 1)[1] if "://" in location else ""
    bucket, _, prefix = rest.partition("/")
    if scheme not in OBJECT_SCHEMES or not bucket:
        raise UsageError(f"not an object-storage location: {location} (want s3://bucket/prefix or "
                         "azblob://container/prefix)")
    return scheme, bucket, prefix.strip("/")


def is_object_store(location: str) -> bool:
    from symtool.store.layout import url_scheme

    return url_scheme(location) in OBJECT_SCHEMES


def open_backend(location: str, config: dict | None = None, environ: dict | None = None) -> Backend:
    """The backend for ``s3://…`` or ``azblob://…``.

    ``config``: ``[workspace.metadata.symtool]`` (``s3-endpoint``); ``environ``:
    ``SYMTOOL_S3_ENDPOINT`` / ``AWS_ENDPOINT_URL``, ``AZURE_STORAGE_CONNECTION_STRING``
    and each SDK's own credential variables.
    """
    env = os.environ if environ is None else environ
    config = config or {}
    scheme, bucket, prefix = split_location(location)
    if scheme == S3_SCHEME:
        from symtool.store.backends.s3 import S3Backend

        endpoint = env.get("SYMTOOL_S3_ENDPOINT") or config.get("s3-endpoint") or env.get("AWS_ENDPOINT_URL") or None
        return S3Backend(bucket, prefix, endpoint=endpoint)
    from symtool.store.backends.azure import AzureBackend

    return AzureBackend(bucket, prefix, connection_string=env.get("AZURE_STORAGE_CONNECTION_STRING"),
                        account_url=env.get("AZURE_STORAGE_ACCOUNT_URL") or config.get("azure-account-url"))


def join_key(prefix: str, key: str) -> str:
    return f"{prefix}/{key}" if prefix else key


def missing_extra(package: str, extra: str) -> UsageError:
    return UsageError(f"{extra}:// stores need the {package} package: pip install 'cargo-symtool[{extra_name(extra)}]'")


def extra_name(scheme: str) -> str:
    return "s3" if scheme == S3_SCHEME else "azure"
