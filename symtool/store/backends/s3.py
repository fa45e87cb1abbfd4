"""The storage interface on S3 and S3-compatible services, through boto3.

Create-only is ``PutObject`` with ``If-None-Match: *``, compare-and-swap is
``If-Match: <etag>``.  A failed condition is HTTP 412 ``PreconditionFailed``;
409 ``ConditionalRequestConflict`` (a concurrent conditional write to the
same key) is retried.  Credentials come from boto3's own chain (``AWS_*``
variables, ``~/.aws``, instance roles); the endpoint of an S3-compatible
service from ``SYMTOOL_S3_ENDPOINT``, ``[workspace.metadata.symtool]
s3-endpoint`` or ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import BinaryIO, Iterator

from symtool.errors import NetworkError, StoreError
from symtool.store.backends.base import (RETRY_CONFLICTS, Backend, Blob, ObjectInfo, join_key, missing_extra,
                                         scrub)

MAX_SINGLE_PUT = 5 << 30  # PutObject's limit: larger files go up in parts
MIN_PART = 64 << 20  # part size of a multipart upload (S3 allows 5 MiB to 5 GiB)
MAX_PARTS = 10_000  # S3's limit on parts per upload


class S3Backend(Backend):
    scheme = "s3"

    def __init__(self, bucket: str, prefix: str, endpoint: str | None = None, client=None):
        self.bucket = bucket
        self.prefix = prefix
        self.display = f"s3://{bucket}/{prefix}".rstrip("/")
        self.endpoint = endpoint
        self._client = client
        self.single_put_limit = MAX_SINGLE_PUT  # tests lower both to exercise multipart uploads
        self.part_size = MIN_PART

    @property
    def client(self):
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise missing_extra("boto3", "s3") from None
            session = boto3.session.Session()
            region = session.region_name or ("us-east-1" if self.endpoint else None)
            self._client = session.client(
                "s3", endpoint_url=self.endpoint, region_name=region,
                config=Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=16,
                              connect_timeout=10, read_timeout=60))
        return self._client

    def _k(self, key: str) -> str:
        return join_key(self.prefix, key)

    def _fail(self, err, key: str) -> Exception:
        from botocore.exceptions import ClientError

        where = self.url(key)
        if isinstance(err, ClientError):
            e = err.response.get("Error", {})
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return StoreError(scrub(f"S3 refused the request: {status} {e.get('Code', '')} {e.get('Message', '')}"
                                    .rstrip(), self.display), where)
        # botocore's text echoes parameters (the bucket name, the endpoint URL): scrubbed of credentials.
        return NetworkError(scrub(f"S3 request failed: {err}", self.display), where)

    @staticmethod
    def _status(err) -> tuple[int | None, str]:
        resp = getattr(err, "response", None) or {}
        return resp.get("ResponseMetadata", {}).get("HTTPStatusCode"), resp.get("Error", {}).get("Code", "")

    def get(self, key: str) -> Blob | None:
        r = self._get_object(key)
        return None if r is None else Blob(r["Body"].read(), r.get("ETag"), dict(r.get("Metadata") or {}))

    def open_read(self, key: str) -> BinaryIO | None:
        r = self._get_object(key)
        return None if r is None else r["Body"]

    def open_read_info(self, key: str) -> "tuple[BinaryIO, ObjectInfo] | None":
        r = self._get_object(key)
        if r is None:
            return None
        mod = r.get("LastModified")
        return r["Body"], ObjectInfo(key, int(r.get("ContentLength", 0)), r.get("ETag"),
                                     dict(r.get("Metadata") or {}), mod.timestamp() if mod else None)

    def _get_object(self, key: str) -> dict | None:
        """GetObject's answer, or None when the key does not exist (404 / NoSuchKey)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._k(key))
        except ClientError as err:
            status, code = self._status(err)
            if status == 404 or code in ("NoSuchKey", "NotFound"):
                return None
            raise self._fail(err, key) from None
        except BotoCoreError as err:
            raise self._fail(err, key) from None

    def head(self, key: str) -> ObjectInfo | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            r = self.client.head_object(Bucket=self.bucket, Key=self._k(key))
        except ClientError as err:
            status, code = self._status(err)
            if status == 404 or code in ("NoSuchKey", "NotFound", "404"):
                return None
            raise self._fail(err, key) from None
        except BotoCoreError as err:
            raise self._fail(err, key) from None
        mod = r.get("LastModified")
        return ObjectInfo(key, int(r.get("ContentLength", 0)), r.get("ETag"), dict(r.get("Metadata") or {}),
                          mod.timestamp() if mod else None)

    def put(self, key: str, data: bytes | Path, *, metadata: dict | None = None,
            if_none_match: bool = False, if_match: str | None = None) -> str | None:
        args = {"Bucket": self.bucket, "Key": self._k(key), "Metadata": dict(metadata or {})}
        if if_none_match:
            args["IfNoneMatch"] = "*"
        if if_match is not None:
            args["IfMatch"] = if_match
        if isinstance(data, Path) and data.stat().st_size > self.single_put_limit:
            return self._put_parts(key, data, args)
        def put_object() -> dict:
            if isinstance(data, Path):
                with open(data, "rb") as body:
                    return self.client.put_object(Body=body, **args)
            return self.client.put_object(Body=bytes(data), **args)

        return self._conditional(key, put_object)

    def _conditional(self, key: str, request) -> str | None:
        """The ETag of a conditional write ``request()``; None when its condition failed (412).
        S3's 409 ConditionalRequestConflict (a concurrent write to the key) is retried."""
        from botocore.exceptions import BotoCoreError, ClientError

        for attempt in range(RETRY_CONFLICTS):
            try:
                return request().get("ETag")
            except ClientError as err:
                status, code = self._status(err)
                if status == 412 or code == "PreconditionFailed":
                    return None
                if status == 409 and code == "ConditionalRequestConflict" and attempt + 1 < RETRY_CONFLICTS:
                    time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
                    continue
                raise self._fail(err, key) from None
            except BotoCoreError as err:
                raise self._fail(err, key) from None
        raise StoreError("S3 kept answering 409 ConditionalRequestConflict", self.url(key))

    def _put_parts(self, key: str, path: Path, args: dict) -> str | None:
        """A multipart upload with the put's conditions on CompleteMultipartUpload, so a file
        over PutObject's 5 GiB is still written create-only or by compare-and-swap.  Any
        failure, and a failed condition, aborts the upload: no parts are left behind."""
        from botocore.exceptions import BotoCoreError, ClientError

        size = path.stat().st_size
        part = max(self.part_size, -(-size // MAX_PARTS))
        conditions = {k: args[k] for k in ("IfNoneMatch", "IfMatch") if k in args}
        base = {"Bucket": args["Bucket"], "Key": args["Key"]}
        try:
            upload_id = self.client.create_multipart_upload(**base, Metadata=args["Metadata"])["UploadId"]
        except (ClientError, BotoCoreError) as err:
            raise self._fail(err, key) from None
        try:
            parts = []
            with open(path, "rb") as f:
                for number, offset in enumerate(range(0, size, part), start=1):
                    body = f.read(min(part, size - offset))
                    if len(body) != min(part, size - offset):
                        raise StoreError("the file changed size while it was uploaded", path)
                    r = self.client.upload_part(**base, UploadId=upload_id, PartNumber=number, Body=body)
                    parts.append({"ETag": r["ETag"], "PartNumber": number})
            etag = self._conditional(key, lambda: self.client.complete_multipart_upload(
                **base, UploadId=upload_id, MultipartUpload={"Parts": parts}, **conditions))
            if etag is not None:
                upload_id = None  # completed: nothing to abort
            return etag
        except (ClientError, BotoCoreError) as err:
            raise self._fail(err, key) from None
        finally:
            if upload_id is not None:
                try:
                    self.client.abort_multipart_upload(**base, UploadId=upload_id)
                except (ClientError, BotoCoreError):
                    pass  # the bucket's lifecycle rule for incomplete uploads is the backstop

    def copy(self, src: str, dst: str) -> bool:
        """Server-side copy (CopyObject, in parts past 5 GiB): no bytes pass through here."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.copy({"Bucket": self.bucket, "Key": self._k(src)}, self.bucket, self._k(dst))
        except ClientError as err:
            status, code = self._status(err)
            if status == 404 or code in ("NoSuchKey", "NotFound", "404"):
                return False
            raise self._fail(err, dst) from None
        except BotoCoreError as err:
            raise self._fail(err, dst) from None
        return True

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        from botocore.exceptions import BotoCoreError, ClientError

        cut = len(self.prefix) + 1 if self.prefix else 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                           Prefix=self._k(prefix))
            for page in pages:
                for o in page.get("Contents", []):
                    mod = o.get("LastModified")
                    yield ObjectInfo(o["Key"][cut:], int(o.get("Size", 0)), o.get("ETag"), {},
                                     mod.timestamp() if mod else None)
        except (ClientError, BotoCoreError) as err:
            raise self._fail(err, prefix) from None

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._k(key))
        except ClientError as err:
            status, _code = self._status(err)
            if status == 404:
                return
            raise self._fail(err, key) from None
        except BotoCoreError as err:
            raise self._fail(err, key) from None
