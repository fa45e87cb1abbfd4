"""The storage interface on Azure Blob Storage, through azure-storage-blob.

Create-only is an upload with ``MatchConditions.IfMissing`` (409
``BlobAlreadyExists`` when the blob exists), compare-and-swap one with
``MatchConditions.IfNotModified`` and the etag (412 ``ConditionNotMet``).
Credentials: ``AZURE_STORAGE_CONNECTION_STRING``, or
``AZURE_STORAGE_ACCOUNT_URL`` with azure-identity's DefaultAzureCredential.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Iterator

from symtool.errors import NetworkError, StoreError, UsageError
from symtool.store.backends.base import Backend, Blob, ObjectInfo, join_key, missing_extra


class AzureBackend(Backend):
    scheme = "azblob"

    def __init__(self, container: str, prefix: str, connection_string: str | None = None,
                 account_url: str | None = None):
        self.container_name = container
        self.prefix = prefix
        self.display = f"azblob://{container}/{prefix}".rstrip("/")
        self._conn = connection_string
        self._account_url = account_url
        self._container = None

    @property
    def container(self):
        if self._container is None:
            try:
                from azure.storage.blob import BlobServiceClient
            except ImportError:
                raise missing_extra("azure-storage-blob", "azblob") from None
            if self._conn:
                svc = BlobServiceClient.from_connection_string(self._conn)
            elif self._account_url:
                try:
                    from azure.identity import DefaultAzureCredential
                except ImportError:
                    raise UsageError("azblob:// with AZURE_STORAGE_ACCOUNT_URL needs azure-identity "
                                     "(pip install azure-identity), or set AZURE_STORAGE_CONNECTION_STRING") from None
                svc = BlobServiceClient(self._account_url, credential=DefaultAzureCredential())
            else:
                raise UsageError("azblob:// stores need AZURE_STORAGE_CONNECTION_STRING "
                                 "(or AZURE_STORAGE_ACCOUNT_URL and azure-identity)")
            self._container = svc.get_container_client(self.container_name)
        return self._container

    def _k(self, key: str) -> str:
        return join_key(self.prefix, key)

    def _fail(self, err, key: str) -> Exception:
        from azure.core.exceptions import HttpResponseError

        if isinstance(err, HttpResponseError):
            return StoreError(f"Azure refused the request: {err.status_code} {err.error_code or ''}".rstrip(),
                              self.url(key))
        return NetworkError(f"Azure request failed: {type(err).__name__}", self.url(key))

    def get(self, key: str) -> Blob | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            d = self.container.get_blob_client(self._k(key)).download_blob()
            return Blob(d.readall(), d.properties.etag, dict(d.properties.metadata or {}))
        except ResourceNotFoundError:
            return None
        except AzureError as err:
            raise self._fail(err, key) from None

    def open_read(self, key: str) -> BinaryIO | None:
        got = self.open_read_info(key)
        return None if got is None else got[0]

    def open_read_info(self, key: str) -> "tuple[BinaryIO, ObjectInfo] | None":
        import io

        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            d = self.container.get_blob_client(self._k(key)).download_blob()
        except ResourceNotFoundError:
            return None
        except AzureError as err:
            raise self._fail(err, key) from None

        class _Stream(io.RawIOBase):
            def __init__(self, chunks):
                self.chunks, self.buf = chunks, b""

            def readable(self):
                return True

            def readinto(self, b):
                while not self.buf:
                    self.buf = next(self.chunks, b"")
                    if not self.buf:
                        return 0
                n = min(len(b), len(self.buf))
                b[:n], self.buf = self.buf[:n], self.buf[n:]
                return n

        p = d.properties
        info = ObjectInfo(key, int(p.size), p.etag, dict(p.metadata or {}),
                          p.last_modified.timestamp() if p.last_modified else None)
        return io.BufferedReader(_Stream(d.chunks()), 1 << 20), info

    def head(self, key: str) -> ObjectInfo | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            p = self.container.get_blob_client(self._k(key)).get_blob_properties()
        except ResourceNotFoundError:
            return None
        except AzureError as err:
            raise self._fail(err, key) from None
        return ObjectInfo(key, int(p.size), p.etag, dict(p.metadata or {}),
                          p.last_modified.timestamp() if p.last_modified else None)

    def put(self, key: str, data: bytes | Path, *, metadata: dict | None = None,
            if_none_match: bool = False, if_match: str | None = None) -> str | None:
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError

        kwargs: dict = {"metadata": dict(metadata or {}), "overwrite": True, "max_concurrency": 4}
        if if_none_match:
            kwargs["match_condition"] = MatchConditions.IfMissing
        elif if_match is not None:
            kwargs["match_condition"] = MatchConditions.IfNotModified
            kwargs["etag"] = if_match
        blob = self.container.get_blob_client(self._k(key))
        try:
            if isinstance(data, Path):
                with open(data, "rb") as body:
                    r = blob.upload_blob(body, length=data.stat().st_size, **kwargs)
            else:
                r = blob.upload_blob(bytes(data), **kwargs)
            return r.get("etag")
        except (ResourceExistsError, ResourceModifiedError) as err:
            if err.status_code in (409, 412):
                return None
            raise self._fail(err, key) from None
        except AzureError as err:
            if getattr(err, "status_code", None) == 412:
                return None
            raise self._fail(err, key) from None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        from azure.core.exceptions import AzureError

        cut = len(self.prefix) + 1 if self.prefix else 0
        try:
            for b in self.container.list_blobs(name_starts_with=self._k(prefix)):
                yield ObjectInfo(b.name[cut:], int(b.size), None, {},
                                 b.last_modified.timestamp() if b.last_modified else None)
        except AzureError as err:
            raise self._fail(err, prefix) from None

    def delete(self, key: str) -> None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            self.container.get_blob_client(self._k(key)).delete_blob()
        except ResourceNotFoundError:
            return
        except AzureError as err:
            raise self._fail(err, key) from None
