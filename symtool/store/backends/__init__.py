"""Object storage for symbol stores: one small interface, several backends.

A backend stores whole objects under '/'-separated keys (below the store's
prefix) and offers exactly what a lock-free store needs:

* :meth:`~.base.Backend.get`: bytes, etag and metadata (None when absent);
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

from symtool.errors import UsageError
from symtool.store.backends.base import (AZURE_SCHEME, OBJECT_SCHEMES, S3_SCHEME, Backend, Blob,  # noqa: F401
                                         ObjectInfo, redact_userinfo, scrub)


def split_location(location: str) -> tuple[str, str, str]:
    """``scheme://bucket/prefix`` -> (scheme, bucket, prefix without slashes at either end)."""
    from symtool.store.layout import url_scheme

    scheme = url_scheme(location) or ""
    rest = location.strip().split("://", 1)[1] if "://" in location else ""
    bucket, _, prefix = rest.partition("/")
    if "@" in bucket:
        # s3://KEY:SECRET@bucket/x: the SDK would echo it in "Invalid bucket name ...", and the
        # location is printed in reports. Refused, shown redacted; credentials come from the SDK's own settings.
        raise UsageError(f"credentials in an object-store location are refused: {redact_userinfo(location)} "
                         "(give them as the SDK's environment or config: AWS_ACCESS_KEY_ID/"
                         "AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_CONNECTION_STRING...)")
    if scheme not in OBJECT_SCHEMES or not bucket:
        raise UsageError(f"not an object-storage location: {redact_userinfo(location)} (want s3://bucket/prefix or "
                         "azblob://container/prefix)")
    return scheme, bucket, prefix.strip("/")


def require_sdk(scheme: str) -> None:
    """UsageError naming the extra to install when the scheme's SDK is missing.

    Checked once, before any request: each backend method imports its SDK's
    exception classes first, so a missing SDK would otherwise surface as a
    ModuleNotFoundError traceback from whichever call came first."""
    from symtool.store.backends.base import missing_extra

    try:
        if scheme == S3_SCHEME:
            import boto3  # noqa: F401
            import botocore.exceptions  # noqa: F401
        else:
            import azure.core.exceptions  # noqa: F401
            import azure.storage.blob  # noqa: F401
    except ImportError:
        raise missing_extra("boto3" if scheme == S3_SCHEME else "azure-storage-blob", scheme) from None


def open_backend(location: str, config: dict | None = None, environ: dict | None = None) -> Backend:
    """The backend for ``s3://…`` or ``azblob://…``.

    ``config``: ``[workspace.metadata.symtool]`` (``s3-endpoint``); ``environ``:
    ``SYMTOOL_S3_ENDPOINT`` / ``AWS_ENDPOINT_URL``, ``AZURE_STORAGE_CONNECTION_STRING``
    and each SDK's own credential variables.
    """
    env = os.environ if environ is None else environ
    config = config or {}
    scheme, bucket, prefix = split_location(location)
    require_sdk(scheme)
    if scheme == S3_SCHEME:
        from symtool.store.backends.s3 import S3Backend

        endpoint = env.get("SYMTOOL_S3_ENDPOINT") or config.get("s3-endpoint") or env.get("AWS_ENDPOINT_URL") or None
        return S3Backend(bucket, prefix, endpoint=endpoint)
    from symtool.store.backends.azure import AzureBackend

    return AzureBackend(bucket, prefix, connection_string=env.get("AZURE_STORAGE_CONNECTION_STRING"),
                        account_url=env.get("AZURE_STORAGE_ACCOUNT_URL") or config.get("azure-account-url"))


