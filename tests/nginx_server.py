"""A real nginx on loopback for the HTTP symbol-server tests.

Started once per session (fixture ``nginx`` in conftest.py) as a non-daemon
child process with its own prefix, config, pid file, logs and temp dirs; it
reads nothing from /etc/nginx.  Locations:

    /plain/        a store as symstore.exe wrote it (pe_store fixture)
    /compressed/   the same files as CABs (name_), made by symtool
    /twotier/      two-tier layout (index2.txt, na/name/INDEX/name)
    /ptr/          file.ptr entries: PATH: to a local file, PATH: to a URL, MSG: only
    /lower/        lower-case keys only (a case-sensitive server)
    /wrong/        bigage.pdb's key serving dummyprog.pdb (a server lying)
    /redirect/     302 to /plain/...
    /loop/         redirects to itself forever
    /error/        HTTP 500 for everything
    /forbidden/    HTTP 403
    /protected/    basic auth (401 without credentials)
    /stall/        proxied to a socket that never answers
    /truncated/    proxied to an upstream that closes after 1000 of 100000 bytes
    /lzx/          dummyprog.exe as an LZX CAB (only cabextract expands it)
    /larger/       bigage.pdb's key with a body longer than its Content-Length
    /upload/       WebDAV PUT, basic auth (user ``ci`` / ``pw-ci``)
    /upload-token/ WebDAV PUT, bearer token ``s3cret-token``
    /upload-open/  WebDAV PUT, no auth

Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from symtool.formats.cab import compress_to_cab
from symtool.store.layout import compressed_name

BASIC_USER, BASIC_PASSWORD = "ci", "pw-ci"
TOKEN = "s3cret-token"

# (name, INDEX) of every file in the pe_store fixture.
PE_STORE_KEYS = [
    ("bigage.pdb", "C9A61DDDD7E44353A668E39AC614A7EAa"),
    ("dummyprog.pdb", "F6301B4562FE4B4DB691192733ECE6B71"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def store_files(store: Path) -> list[tuple[str, str, Path]]:
    """(name, INDEX, path) of every data file in a flat store."""
    out = []
    for name_dir in sorted(store.iterdir()):
        if not name_dir.is_dir() or name_dir.name == "000Admin":
            continue
        for idx_dir in sorted(name_dir.iterdir()):
            f = idx_dir / name_dir.name
            if f.is_file():
                out.append((name_dir.name, idx_dir.name, f))
    return out


def lzx_cab(data: bytes, name: str) -> bytes:
    """A single-file CAB with LZX compression holding one *uncompressed* LZX block.

    symtool does not decode LZX; this is how tests get a real LZX cabinet
    (cabextract expands it) without an LZX compressor.  LZX bit order: 16-bit
    little-endian words, most significant bit first.
    """
    assert 0 < len(data) <= 32768
    bits: list[int] = []

    def put(value: int, n: int) -> None:
        bits.extend((value >> (n - 1 - i)) & 1 for i in range(n))

    put(0, 1)  # no Intel E8 translation
    put(3, 3)  # block type 3: uncompressed
    put(len(data), 24)  # block size
    put(0, 16 - len(bits) % 16)  # 1..16 bits of padding to a word boundary
    payload = bytearray()
    for i in range(0, len(bits), 16):
        payload += struct.pack("<H", int("".join(map(str, bits[i:i + 16])), 2))
    payload += struct.pack("<III", 1, 1, 1) + data + (b"\0" if len(data) % 2 else b"")  # R0-R2, data, pad
    name_raw = name.encode() + b"\0"
    coff_files = 36 + 8
    coff_data = coff_files + 16 + len(name_raw)
    total = coff_data + 8 + len(payload)
    return (struct.pack("<4sIIIIIBBHHHHH", b"MSCF", 0, total, 0, coff_files, 0, 3, 1, 1, 1, 0, 0, 0)
            + struct.pack("<IHH", coff_data, 1, 0x0F03)  # LZX, 32 KiB window
            + struct.pack("<IIHHHH", len(data), 0, 0, 0x5821, 0, 0x20) + name_raw
            + struct.pack("<IHH", 0, len(payload), len(data)) + bytes(payload))


class _BadUpstream:
    """Raw-socket upstream: /stall/ never answers, /truncated/ closes early."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.stop_event = threading.Event()
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop_event.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            path = data.split(b" ", 2)[1] if data.count(b" ") >= 2 else b""
            if path.startswith(b"/truncated/") and not path.endswith(b"index2.txt"):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nContent-Type: application/octet-stream\r\n"
                             b"Connection: close\r\n\r\n" + b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0\0" + b"\0" * 968)
                conn.close()
            elif path.startswith(b"/truncated/"):
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                conn.close()
            else:  # stall: keep the connection open, say nothing
                self.held.append(conn)
                self.stop_event.wait(600)
                conn.close()
        except OSError:
            conn.close()

    def close(self) -> None:
        self.stop_event.set()
        self.sock.close()
        for c in self.held:
            try:
                c.close()
            except OSError:
                pass


CONF = """\
worker_processes 1;
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    types {{ text/plain txt ptr; application/octet-stream pdb exe dll pd_ ex_ dl_; }}
    default_type application/octet-stream;
    sendfile on;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root {www};
        location ~ ^/redirect/(.*)$ {{ return 302 /plain/$1; }}
        location /loop/ {{ return 302 $uri; }}
        location /error/ {{ return 500; }}
        location /forbidden/ {{ return 403; }}
        location /protected/ {{ auth_basic "symbols"; auth_basic_user_file {prefix}/htpasswd; }}
        location /stall/ {{ proxy_pass http://127.0.0.1:{upstream}; proxy_read_timeout 600s; }}
        location /truncated/ {{ proxy_pass http://127.0.0.1:{upstream}; proxy_buffering off; }}
        location /larger/ {{
            sub_filter_types *; sub_filter_once off; sub_filter "MSF" "MSF-MSF-MSF";
            add_header Content-Length 1000;
        }}
        location /upload/ {{
            auth_basic "upload"; auth_basic_user_file {prefix}/htpasswd;
            dav_methods PUT; create_full_put_path on; client_max_body_size 0;
        }}
        location /upload-token/ {{
            if ($http_authorization != "Bearer {token}") {{ return 401; }}
            dav_methods PUT; create_full_put_path on; client_max_body_size 0;
        }}
        location /upload-open/ {{ dav_methods PUT; create_full_put_path on; client_max_body_size 0; }}
    }}
}}
"""


@dataclass
class Nginx:
    base: str  # http://127.0.0.1:PORT
    port: int
    prefix: Path
    www: Path
    proc: subprocess.Popen
    upstream: _BadUpstream
    ptr_targets: dict = field(default_factory=dict)

    def url(self, location: str) -> str:
        return f"{self.base}/{location.strip('/')}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.upstream.close()
        shutil.rmtree(self.prefix.parent, ignore_errors=True)


def _build_tree(www: Path, prefix: Path, pe_store: Path, base: str) -> dict:
    """All the served stores; returns file.ptr facts for tests."""
    plain = www / "plain"
    shutil.copytree(pe_store, plain)
    files = store_files(plain)

    compressed = www / "compressed"
    twotier = www / "twotier"
    lower = www / "lower"
    for name, index, path in files:
        cdir = compressed / name / index
        cdir.mkdir(parents=True)
        with open(cdir / compressed_name(name), "wb") as f:
            compress_to_cab(path, f, name)
        tdir = twotier / name[:2] / name / index
        tdir.mkdir(parents=True)
        shutil.copyfile(path, tdir / name)
        ldir = lower / name.lower() / index.lower()
        ldir.mkdir(parents=True)
        shutil.copyfile(path, ldir / name.lower())
    (twotier / "index2.txt").write_text("")
    (twotier / "pingme.txt").write_text("")

    # file.ptr: one to a local path, one to a URL, one with only a message.
    outside = prefix / "elsewhere"
    outside.mkdir()
    (name0, idx0, path0), (name1, idx1, _p1) = files[0], files[1]
    shutil.copyfile(path0, outside / name0)
    ptr = www / "ptr"
    (ptr / name0 / idx0).mkdir(parents=True)
    (ptr / name0 / idx0 / "file.ptr").write_text(f"PATH:{outside / name0}")
    (ptr / name1 / idx1).mkdir(parents=True)
    (ptr / name1 / idx1 / "file.ptr").write_text(f"PATH:{base}/plain/{name1}/{idx1}/{name1}")
    msg_name, msg_idx = "dummylib.pdb", next(i for n, i, _ in files if n == "dummylib.pdb")
    (ptr / msg_name / msg_idx).mkdir(parents=True)
    (ptr / msg_name / msg_idx / "file.ptr").write_text("MSG:this file was removed by the release team")

    # A lying server: bigage.pdb's key holds dummyprog.pdb (also compressed, also via file.ptr).
    big_idx = dict((n, i) for n, i, _ in files)["bigage.pdb"]
    other = dict((n, p) for n, _i, p in files)["dummyprog.pdb"]
    wrong = www / "wrong" / "bigage.pdb" / big_idx
    wrong.mkdir(parents=True)
    shutil.copyfile(other, wrong / "bigage.pdb")
    wrong_c = www / "wrong-compressed" / "bigage.pdb" / big_idx
    wrong_c.mkdir(parents=True)
    with open(wrong_c / "bigage.pd_", "wb") as f:
        compress_to_cab(other, f, "bigage.pdb")

    larger = www / "larger" / "bigage.pdb" / big_idx
    larger.mkdir(parents=True)
    shutil.copyfile(dict((n, p) for n, _i, p in files)["bigage.pdb"], larger / "bigage.pdb")

    exe = dict((n, p) for n, _i, p in files)["dummyprog.exe"]
    exe_idx = dict((n, i) for n, i, _ in files)["dummyprog.exe"]
    (www / "lzx" / "dummyprog.exe" / exe_idx).mkdir(parents=True)
    (www / "lzx" / "dummyprog.exe" / exe_idx / "dummyprog.ex_").write_bytes(lzx_cab(exe.read_bytes(), "dummyprog.exe"))

    for d in ("upload", "upload-token", "upload-open", "protected"):
        (www / d).mkdir()
    for d in ("upload", "upload-token", "upload-open"):
        (www / d).chmod(0o777)  # WebDAV PUT by the unprivileged workers
    shutil.copytree(plain / "bigage.pdb", www / "protected" / "bigage.pdb")
    return {"local": (name0, idx0, outside / name0), "url": (name1, idx1), "msg": (msg_name, msg_idx)}


# Workers run as this unprivileged account when the tests run as root, as a
# production nginx does: a store whose files only their writer can read answers 403.
WORKER_USER = "nobody"


def served_workdir() -> Path:
    """A directory every user can traverse (pytest's temp dirs are 0700), removed by Nginx.stop."""
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="symtool-nginx-"))
    workdir.chmod(0o755)
    return workdir


def start_nginx(workdir: Path, pe_store: Path, nginx_bin: str) -> Nginx:
    """nginx on 127.0.0.1 serving the test stores under ``workdir`` (see served_workdir)."""
    prefix = workdir / "nginx"
    www = workdir / "www"
    for d in (prefix / "logs", prefix / "tmp", www):
        d.mkdir(parents=True)
    user = ""
    if os.geteuid() == 0:
        import grp
        import pwd

        group = grp.getgrgid(pwd.getpwnam(WORKER_USER).pw_gid).gr_name
        user = f"user {WORKER_USER} {group};"
        # The workers write uploads and request bodies: those dirs are theirs.
        os.chown(prefix / "tmp", pwd.getpwnam(WORKER_USER).pw_uid, -1)
    (prefix / "htpasswd").write_text(f"{BASIC_USER}:{{PLAIN}}{BASIC_PASSWORD}\n")
    upstream = _BadUpstream()
    last_err = ""
    for _attempt in range(5):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        if not (www / "plain").exists():
            facts = _build_tree(www, prefix, pe_store, base)
        conf = prefix / "nginx.conf"
        conf.write_text(CONF.format(user=user, prefix=prefix, port=port, www=www, upstream=upstream.port,
                                    token=TOKEN))
        with open(prefix / "logs" / "stderr.log", "wb") as errf:
            proc = subprocess.Popen(
                [nginx_bin, "-e", str(prefix / "logs" / "error.log"), "-p", str(prefix), "-c", str(conf),
                 "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            server = Nginx(base, port, prefix, www, proc, upstream, facts)
            # The ptr store's URL pointer names the port: rewrite it if a retry changed the port.
            name1, idx1 = facts["url"]
            (www / "ptr" / name1 / idx1 / "file.ptr").write_text(f"PATH:{base}/plain/{name1}/{idx1}/{name1}")
            return server
        proc.wait(5)
        last_err = (prefix / "logs" / "stderr.log").read_text("utf-8", "replace")
        last_err += (prefix / "logs" / "error.log").read_text("utf-8", "replace")
    upstream.close()
    raise RuntimeError(f"nginx did not start: {last_err}")
