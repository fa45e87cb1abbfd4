"""Hostile object-store inputs (issue 22 items 3 and 8, docs/security.md), against a real
SeaweedFS S3 on loopback (tests/objstore_servers.py)."""

from __future__ import annotations

import json
import uuid

import pytest

from hostile_helpers import CRASH_PDB, symtool
from objstore_servers import client_env

AKIA, SECRET = "AKIAHOSTILEEXAMPLE", "wJalrHOSTILESECRETKEY"


@pytest.fixture
def env(seaweedfs, tmp_path):
    e = client_env(seaweedfs)
    e.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "home" / ".cache"), NO_COLOR="1",
             SYMTOOL_HTTP_RETRIES="0")
    return e


# -- 3. credentials in s3:// URLs are never printed ---------------------------------------------------

@pytest.mark.parametrize("args", [
    ["publish", CRASH_PDB],
    ["publish", CRASH_PDB, "--json"],
    ["store", "verify"],
    ["store", "list", "--json"],
    ["fetch", "--pdb", "crash.pdb", "--id", "3249D99D0C4049318610F4E4FB0B69361"],
])
@pytest.mark.parametrize("userinfo", [f"{AKIA}:{SECRET}@", f"{SECRET}@", f"{AKIA}:{SECRET}@@"])
def test_credentials_in_s3_url_are_refused_and_never_printed(seaweedfs, env, tmp_path, args, userinfo):
    loc = f"s3://{userinfo}{seaweedfs.bucket}/creds-{uuid.uuid4().hex[:8]}"
    opt = ["--server", loc, "--cache", tmp_path / "c"] if args[0] == "fetch" else ["--store", loc]
    proc = symtool(*args, *opt, env=env, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert SECRET not in out and AKIA not in out, out
    assert "credentials in an object-store location are refused" in out and "***@" in out, out
    if "--json" in args:
        assert SECRET not in json.loads(proc.stdout)["error"]["message"]
    # nothing was written under the bucket
    assert not list(seaweedfs.backend("").list("creds-"))
