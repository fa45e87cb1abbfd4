"""Symbol servers over HTTP: probing and downloading as symsrv does, and
publishing with PUT.

Probe order per key: ``GET <server>/index2.txt`` once per server (present =
two-tier store), then the candidates of :func:`symtool.store.layout.candidates`
in order -- plain, CAB-compressed, ``file.ptr`` (``PATH:<where>`` or a plain
path is followed, ``MSG:<text>`` is reported), then the same for the
lower-cased key (servers on case-sensitive file systems).  404/410 means
absent.  Redirects are followed.

Robustness: one ``requests`` session; retries with exponential backoff on
failed connections and 5xx answers (not on stalls: a server silent for the
whole read timeout is not asked again); connect/read timeouts; TLS
verification on; bodies are size-limited (Content-Length checked before
reading, a hard cap while reading), and truncated bodies or bodies longer than
announced are errors.  Every problem becomes a :class:`NetworkError` with one
line naming the URL -- with any ``user:password@`` removed.

Wall-clock limit (``HttpOptions.file_timeout``, ``fetch --timeout``): one file
at one server -- its lookups, retries, redirects and transfer -- gets that
long, however the server misbehaves.  Socket timeouts only bound the wait for
*one* read: a server that drips a byte every half second, or sends header
lines slowly, never trips them.  So the retry loop is ours (backoff capped by
the time left), every connect/read timeout is capped by the time left, the
body loop checks the clock between chunks, and a watchdog timer shuts down
the client's sockets when time is up, which ends a read blocked in the middle
of a header or a chunk.

Credentials come from the environment only: ``SYMTOOL_HTTP_TOKEN`` (bearer)
or ``SYMTOOL_HTTP_USER``/``SYMTOOL_HTTP_PASSWORD`` (basic).  They are never
printed or logged.

``requests`` is imported inside functions: the CLI imports command modules at
startup and must stay fast.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable
from urllib.parse import quote, urlsplit

from symtool.errors import NetworkError, UsageError
from symtool.settings import DEFAULT_MAX_FILE_SIZE, max_file_size
from symtool.store.layout import (INDEX2, MESSAGE, POINTER, Candidate, candidates, is_url, key_dir, key_path,
                                  parse_file_ptr, redact_url, strip_userinfo)

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
# Largest file we download unless told otherwise (SYMTOOL_MAX_FILE_SIZE): bigger
# than any PDB seen in practice, small enough that a hostile server cannot fill a disk.
DEFAULT_MAX_SIZE = DEFAULT_MAX_FILE_SIZE
MAX_POINTER_SIZE = 64 << 10  # file.ptr and index2.txt are tiny
CHUNK = 1 << 20

HTTP_STORE_NOTE = ("HTTP store: no 000Admin transaction history is kept over HTTP "
                   "(the server keeps its own; `symtool store` commands need a file-system store)")

ABSENT = (404, 410)
RETRY_STATUSES = (500, 502, 503, 504)
MAX_RETRY_AFTER = 120.0  # seconds: a Retry-After longer than this is not waited for


def _env_float(env: dict, name: str, default: float, *, upper: float = 1e6) -> float:
    """A number from the environment, finite, between 0 and ``upper`` (nan, inf and 1e300 are refused)."""
    import math

    if not env.get(name):
        return default
    try:
        value = float(env[name])
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= upper):
        raise UsageError(f"{name} must be a number from 0 to {upper:g}, not {env[name][:30]!r}")
    return value


@dataclass
class HttpOptions:
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF
    max_size: int = DEFAULT_MAX_SIZE
    verify_tls: bool = True
    file_timeout: float | None = None  # wall-clock seconds for one file at one server, retries included

    @classmethod
    def from_env(cls, environ: dict | None = None, **overrides) -> "HttpOptions":
        """Defaults, then SYMTOOL_HTTP_TIMEOUT / SYMTOOL_HTTP_RETRIES, then ``overrides`` (not None)."""
        env = os.environ if environ is None else environ
        opts = cls()
        timeout = _env_float(env, "SYMTOOL_HTTP_TIMEOUT", 0)
        if timeout > 0:
            opts.connect_timeout = min(opts.connect_timeout, timeout)
            opts.read_timeout = timeout
        opts.retries = int(_env_float(env, "SYMTOOL_HTTP_RETRIES", opts.retries, upper=100))
        opts.max_size = max_file_size(env)
        for key, value in overrides.items():
            if value is not None:
                setattr(opts, key, value)
        return opts


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, the port made explicit: what credentials are bound to."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ("", "", None)
    scheme = parts.scheme.lower()
    return (scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme))


class _Credentials:
    """requests auth callable; repr never shows the secret.

    Sent only to the origins of the servers the user configured
    (:meth:`HttpClient.server` adds them): a ``file.ptr`` on a server may name
    any URL, and the token must not follow it there (requests already drops
    it on a redirect to another host).
    """

    def __init__(self, header: str):
        self._header = header
        self.origins: set[tuple[str, str, int | None]] = set()

    def __call__(self, request):
        if origin(request.url) in self.origins:
            request.headers["Authorization"] = self._header
        else:
            request.headers.pop("Authorization", None)
        return request

    def __repr__(self) -> str:
        return "<credentials from environment>"


def _credentials(environ: dict | None = None):
    import base64

    env = os.environ if environ is None else environ
    token = _secret(env, "SYMTOOL_HTTP_TOKEN")
    if token:
        return _Credentials(f"Bearer {token}"), ("SYMTOOL_HTTP_TOKEN", token)
    user, password = _secret(env, "SYMTOOL_HTTP_USER"), _secret(env, "SYMTOOL_HTTP_PASSWORD")
    if user:
        if ":" in user:
            raise UsageError("SYMTOOL_HTTP_USER must not contain ':' (basic authentication separates user and "
                             "password with it)")
        raw = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        return _Credentials(f"Basic {raw}"), ("SYMTOOL_HTTP_PASSWORD", password or "")
    return None, None


def _secret(env, name: str) -> str | None:
    """A credential from the environment, surrounding white space removed (``$(cat token-file)`` keeps a
    newline; ``echo`` in a Windows shell a CR).  One with control characters left inside is refused
    with a UsageError that does not show it: requests would echo it whole in "Invalid header value"."""
    value = env.get(name)
    if value is None:
        return None
    value = value.strip(" \t\r\n")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise UsageError(f"{name} contains a line break or another control character (its value is not shown)")
    return value or None


def proxy_settings(environ: dict | None = None) -> tuple[dict[str, str], list[str]]:
    """``({"http": url, "https": url}, no_proxy hosts)`` from ``http_proxy``/``https_proxy``/
    ``all_proxy``/``no_proxy`` (either case; the lower-case one wins, as in curl).

    Windows' system proxy (Internet Options) is not read: symtool runs where symsrv does not,
    CI agents among them, and those set the variables.  ``no_proxy`` entries match a host
    and its subdomains (``example.com``, ``.example.com``); ``*`` turns proxies off."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str:
        return (env.get(name) or env.get(name.upper()) or "").strip()

    proxies = {}
    for scheme in ("http", "https"):
        value = get(f"{scheme}_proxy") or get("all_proxy")
        if value:
            proxies[scheme] = value if "://" in value else "http://" + value
    no_proxy = [h.strip().lower().lstrip(".") for h in get("no_proxy").split(",") if h.strip()]
    return proxies, no_proxy


def _no_proxy_match(host: str, no_proxy: list[str]) -> bool:
    for entry in no_proxy:
        name = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry  # host:port -> host
        if name == "*" or host == name or host.endswith("." + name):
            return True
    return False


class HttpClient:
    """One session shared by all servers of a run."""

    def __init__(self, options: HttpOptions | None = None, environ: dict | None = None):
        import requests

        self.options = options or HttpOptions.from_env(environ)
        o = self.options
        if o.file_timeout is not None and not o.file_timeout > 0:
            raise UsageError(f"the timeout must be a positive number of seconds, not {o.file_timeout:g}")
        self._live = weakref.WeakSet()  # this client's sockets, for the watchdog
        self._deadline: _Deadline | None = None
        self._lock = threading.Lock()
        self.session = requests.Session()
        # No trust_env: no netrc credentials or CA bundles picked up behind our back.  Proxies are
        # the one thing taken from the environment, as curl and pip do (proxy_settings).
        self.session.trust_env = False
        self.proxies, self.no_proxy = proxy_settings(environ)
        adapter = _tracking_adapter(self._live)  # no urllib3 retries: request() retries, watching the clock
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.verify = o.verify_tls
        self.session.headers["User-Agent"] = "symtool (symbol server client)"
        # symsrv does not ask for compressed transfer; neither do we, so
        # Content-Length is the size of the file itself.
        self.session.headers["Accept-Encoding"] = "identity"
        auth, secret = _credentials(environ)
        self.session.auth = auth
        self._secrets = [secret[1]] if secret and secret[1] else []
        self._servers: dict[str, HttpServer] = {}

    def close(self) -> None:
        self.session.close()

    def proxies_for(self, url: str) -> dict[str, str]:
        """The proxy for ``url`` (none for NO_PROXY's hosts and for this machine itself)."""
        if not self.proxies:
            return {}
        host = (urlsplit(url).hostname or "").lower()
        if host in ("localhost", "127.0.0.1", "::1") or _no_proxy_match(host, self.no_proxy):
            return {}
        return self.proxies

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def server(self, url: str) -> "HttpServer":
        base = url.rstrip("/")
        if base not in self._servers:
            if isinstance(self.session.auth, _Credentials):
                self.session.auth.origins.add(origin(base))
            self._servers[base] = HttpServer(self, base)
        return self._servers[base]

    # --- low level -------------------------------------------------------------------------------

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read) timeouts, each capped by the time left for the current file."""
        connect, read = self.options.connect_timeout, self.options.read_timeout
        deadline = self._deadline
        if deadline is not None:
            left = max(deadline.remaining(), 0.01)
            connect, read = min(connect, left), min(read, left)
        return (connect, read)

    # --- the wall-clock limit per file ---------------------------------------------------------

    @contextlib.contextmanager
    def file_deadline(self):
        """One file's wall-clock limit (``options.file_timeout``) around the block.

        Nested blocks share the outer limit; without ``file_timeout`` this does nothing.
        """
        seconds = self.options.file_timeout
        if seconds is None or self._deadline is not None:
            yield
            return
        deadline = _Deadline(seconds)
        watchdog = threading.Timer(seconds, self._expire, args=(deadline,))
        watchdog.daemon = True
        self._deadline = deadline
        watchdog.start()
        try:
            yield
        finally:
            watchdog.cancel()
            with self._lock:
                self._deadline = None

    def _expire(self, deadline: "_Deadline") -> None:
        """Watchdog (another thread): time is up; end any read blocked on this client's sockets."""
        with self._lock:
            if self._deadline is not deadline:
                return  # that file is done
            deadline.expired = True
            for sock in list(self._live):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _out_of_time(self) -> bool:
        deadline = self._deadline
        return deadline is not None and (deadline.expired or deadline.remaining() <= 0.05)

    def deadline_error(self, url: str) -> NetworkError:
        return self.error(url, f"server stalled or too slow: no complete answer within {self.options.file_timeout:g} s "
                               "(the time limit for each file, retries included)")

    def _wait_before_retry(self, delay: float) -> bool:
        """Sleep ``delay`` (capped by the time left); False when there is no time for another try."""
        deadline = self._deadline
        if deadline is not None:
            if deadline.remaining() - delay <= 0.05:
                return False
        time.sleep(max(delay, 0))
        return True

    def scrub(self, text: str) -> str:
        """Remove secrets and URL credentials from a message."""
        text = strip_userinfo(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def error(self, url: str, problem: str) -> NetworkError:
        return NetworkError(self.scrub(problem), redact_url(url))

    def request(self, method: str, url: str, **kwargs):
        """A request with our timeouts and retries; connection-level failures become NetworkError.

        Retried (``options.retries`` times, exponential backoff, Retry-After
        honoured): connections that fail (refused, reset) and 5xx answers.  Not
        retried: timeouts -- a server that stayed silent for the whole timeout
        would make every retry as slow.  The file's time limit ends the loop.
        """
        kwargs.setdefault("allow_redirects", True)
        body = kwargs.get("data")
        attempt = 0
        while True:
            if self._out_of_time():
                raise self.deadline_error(url)
            try:
                resp = self.session.request(method, url, timeout=self.timeout, proxies=self.proxies_for(url),
                                            **kwargs)
            except Exception as err:  # requests/urllib3 raise many types; classify them all
                if self._out_of_time():
                    raise self.deadline_error(url) from None
                if attempt < self.options.retries and _retryable(err) \
                        and self._wait_before_retry(self.options.backoff * 2 ** attempt):
                    attempt += 1
                    _rewind(body)
                    continue
                raise self.error(url, describe_exception(err, self.options)) from None
            resp.symtool_retries = attempt
            if resp.status_code in RETRY_STATUSES and attempt < self.options.retries:
                delay = _retry_after(resp)
                delay = self.options.backoff * 2 ** attempt if delay is None else delay
                if self._wait_before_retry(delay):
                    resp.close()
                    attempt += 1
                    _rewind(body)
                    continue
            return resp

    def status_error(self, url: str, resp) -> NetworkError:
        code = resp.status_code
        reason = resp.reason or ""
        if code in (401, 403):
            hint = ("credentials refused" if "Authorization" in resp.request.headers
                    else "set SYMTOOL_HTTP_TOKEN or SYMTOOL_HTTP_USER/SYMTOOL_HTTP_PASSWORD")
            return self.error(url, f"HTTP {code} {reason} ({hint})")
        if code >= 500:
            retries = getattr(resp, "symtool_retries", self.options.retries)
            return self.error(url, f"HTTP {code} {reason} (server error, after {retries} retries)")
        return self.error(url, f"HTTP {code} {reason}")

    def download(self, url: str, sink: BinaryIO, *, limit: int | None = None,
                 progress: "ProgressFactory | None" = None, label: str = "") -> "Response | None":
        """GET ``url`` into ``sink``. None when absent (404/410); NetworkError otherwise."""
        limit = self.options.max_size if limit is None else limit
        resp = self.request("GET", url, stream=True)
        try:
            if resp.status_code in ABSENT:
                return None
            if resp.status_code != 200:
                raise self.status_error(url, resp)
            announced = resp.headers.get("Content-Length")
            expected: int | None = None
            if announced is not None:
                try:
                    expected = int(announced)
                    if expected < 0:
                        raise ValueError
                except ValueError:
                    raise self.error(url, f"invalid Content-Length {announced!r}") from None
                if expected > limit:
                    raise self.error(url, f"file of {expected} bytes is over the size limit of {limit} bytes")
            advance = progress.start(label or url, expected) if progress is not None else None
            received = 0
            try:
                for chunk in resp.raw.stream(CHUNK, decode_content=False):
                    if self._out_of_time():
                        raise self.deadline_error(url)
                    received += len(chunk)
                    if received > limit:
                        raise self.error(url, f"body exceeds the size limit of {limit} bytes")
                    if expected is not None and received > expected:
                        raise self.error(url, f"body larger than announced ({received}+ bytes, Content-Length {expected})")
                    sink.write(chunk)
                    if advance is not None:
                        advance(len(chunk))
            except NetworkError:
                raise
            except Exception as err:
                if self._out_of_time():
                    raise self.deadline_error(url) from None
                raise self.error(url, describe_exception(err, self.options, received, expected)) from None
            finally:
                if progress is not None:
                    progress.stop()
            if self._out_of_time():  # the watchdog's shutdown reads as a clean end of the body
                raise self.deadline_error(url)
            if expected is not None and received < expected:
                raise self.error(url, f"truncated body: connection closed after {received} of {expected} bytes")
            return Response(url=resp.url, size=received)
        finally:
            resp.close()


class _Deadline:
    """When the current file's time is up (``time.monotonic``)."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.expired = False  # set by the watchdog

    def remaining(self) -> float:
        return self.end - time.monotonic()


def _tracking_adapter(live: "weakref.WeakSet"):
    """A requests adapter whose sockets enter ``live`` (weakly: they leave when
    garbage) through urllib3's hook, the pool classes' ``ConnectionCls``, so the
    watchdog can reach them."""
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Tracked:
        def connect(self):
            super().connect()
            # The socket, not the connection: for a body that ends with the
            # connection, http.client hands the socket to the response and
            # clears the connection's ``sock``.
            live.add(self.sock)

    class TrackedHTTP(Tracked, HTTPConnection):
        pass

    class TrackedHTTPS(Tracked, HTTPSConnection):
        pass

    class Pool(HTTPConnectionPool):
        ConnectionCls = TrackedHTTP

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = TrackedHTTPS

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}

    return Adapter(max_retries=0)


def _retryable(err: BaseException) -> bool:
    """A failed connection worth another try: refused or reset, not a timeout, TLS or URL problem."""
    import requests

    if isinstance(err, (requests.Timeout, requests.exceptions.SSLError, requests.TooManyRedirects)):
        return False
    return isinstance(err, requests.ConnectionError)


def _retry_after(resp) -> float | None:
    value = resp.headers.get("Retry-After", "")
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return None  # absent, or an HTTP date: the usual backoff


def _rewind(body) -> None:
    """A PUT body is read again on a retry."""
    seek = getattr(body, "seek", None)
    if seek is not None:
        seek(0)


@dataclass
class Response:
    url: str  # final URL after redirects
    size: int


class ProgressFactory:
    """What downloads report progress to (the CLI supplies a rich bar)."""

    def start(self, label: str, total: int | None) -> Callable[[int], None]:  # pragma: no cover - interface
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - interface
        pass


def describe_exception(err: BaseException, options: HttpOptions, received: int | None = None,
                       expected: int | None = None) -> str:
    """One line for a requests/urllib3 failure, without the URL (the caller adds it)."""
    chain: list[BaseException] = []
    seen = set()
    stack = [err]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        chain.append(e)
        stack.extend([getattr(e, "reason", None), e.__cause__, e.__context__])
        stack.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
    names = {type(e).__name__ for e in chain}
    text = " ".join(str(e) for e in chain)
    if "NameResolutionError" in names or "Name or service not known" in text or "nodename nor servname" in text \
            or "getaddrinfo failed" in text or "No address associated" in text or "Temporary failure in name" in text:
        return "cannot resolve host name (DNS lookup failed)"
    if "ConnectionRefusedError" in names or "Connection refused" in text or "actively refused" in text:
        return "connection refused"
    if "ConnectTimeoutError" in names or "ConnectTimeout" in names:
        return f"timed out connecting (after {options.connect_timeout:g} s)"
    if "SSLError" in names or "SSLCertVerificationError" in names:
        return "TLS error (certificate verification failed or TLS handshake refused)"
    if "ReadTimeoutError" in names or "ReadTimeout" in names or "timed out" in text:
        return f"server stalled: no data for {options.read_timeout:g} s"
    if "TooManyRedirects" in names:
        return "too many redirects"
    if "IncompleteRead" in names or "ChunkedEncodingError" in names or "ProtocolError" in names:
        if expected is not None and received is not None:
            return f"truncated body: connection closed after about {received} of {expected} bytes"
        return "truncated body: connection closed early"
    if "ConnectionResetError" in names or "RemoteDisconnected" in names:
        return "connection reset by the server"
    if "InvalidURL" in names or "MissingSchema" in names or "InvalidSchema" in names or "LocationParseError" in names:
        return "invalid URL"
    first = chain[0]
    return f"{type(first).__name__}: {str(first).splitlines()[0] if str(first) else ''}".strip()


@dataclass
class Hit:
    """What a server had for a key."""

    form: str  # "plain", "compressed", "pointer", or "message" (only file.ptr MSG: lines)
    url: str  # where it was found (redacted)
    size: int = 0
    pointer: str | None = None  # file.ptr target that is a local/UNC path (not downloaded)
    messages: list[str] = field(default_factory=list)


class HttpServer:
    """One symbol server URL."""

    def __init__(self, client: HttpClient, base: str):
        self.client = client
        self.base = base
        self._two_tier: bool | None = None

    def url(self, rel: str) -> str:
        return f"{self.base}/{quote(rel)}"

    @property
    def display(self) -> str:
        return redact_url(self.base)

    def two_tier(self) -> bool:
        """``index2.txt`` at the root, probed once.  Only 200 counts; any 4xx means flat."""
        if self._two_tier is None:
            url = self.url(INDEX2)
            with self.client.file_deadline():
                resp = self.client.request("GET", url, stream=True)
                try:
                    if resp.status_code == 200:
                        self._two_tier = True
                    elif 400 <= resp.status_code < 500 and resp.status_code not in (401, 407):
                        self._two_tier = False
                    else:
                        raise self.client.status_error(url, resp)
                finally:
                    resp.close()
        return self._two_tier

    def key_dir(self, name: str, index: str) -> str:
        return key_dir(name, index, self.two_tier())

    def _read_pointer(self, cand: Candidate) -> tuple[str, str | None, str | None] | None:
        """(url, target, message) of the file.ptr at ``cand``, or None when absent."""
        url = self.url(cand.rel)
        buf = _Buffer(MAX_POINTER_SIZE)
        if self.client.download(url, buf, limit=MAX_POINTER_SIZE) is None:
            return None
        target, message = parse_file_ptr(bytes(buf.data).decode("utf-8", "replace"))
        return url, target, message

    def fetch(self, name: str, index: str, sink: BinaryIO, *, progress: ProgressFactory | None = None,
              limit: int | None = None) -> Hit | None:
        """Download ``name``/``index`` into ``sink`` (raw: a CAB stays compressed).

        None when the server does not have it.  A file.ptr to a local or UNC
        path returns a Hit with ``pointer`` set and writes nothing.  All of it
        within the client's time limit for one file (``file_timeout``).
        """
        with self.client.file_deadline():
            return self._fetch(name, index, sink, progress=progress, limit=limit)

    def _walk(self, name: str, index: str, probe_file: Callable[[Candidate, list[str]], Hit | None],
              follow_pointer: Callable[[str, str, list[str]], Hit]) -> Hit | None:
        """The key's candidates in layout's order, shared by :meth:`fetch` and :meth:`locate`.

        ``probe_file(cand, messages)`` answers for a stored file (None: not
        there); ``follow_pointer(ptr_url, target, messages)`` for a file.ptr
        that names a path.  Each file.ptr message is kept once (the lower-case
        retry may meet the same file.ptr); one naming no path does not count.
        """
        messages: list[str] = []
        for cand in candidates(name, index, self.two_tier()):
            if cand.form != POINTER:
                hit = probe_file(cand, messages)
                if hit is not None:
                    return hit
                continue
            pointer = self._read_pointer(cand)
            if pointer is None:
                continue
            ptr_url, target, message = pointer
            if message and message not in messages:
                messages.append(message)
            if target is not None:
                return follow_pointer(ptr_url, target, messages)
        if messages:
            return Hit(MESSAGE, self.display, 0, messages=messages)
        return None

    def _fetch(self, name: str, index: str, sink: BinaryIO, *, progress: ProgressFactory | None,
               limit: int | None) -> Hit | None:
        def probe_file(cand: Candidate, messages: list[str]) -> Hit | None:
            got = self.client.download(self.url(cand.rel), sink, limit=limit, progress=progress, label=cand.name)
            return None if got is None else Hit(cand.form, redact_url(got.url), got.size, messages=messages)

        def follow_pointer(ptr_url: str, target: str, messages: list[str]) -> Hit:
            if not is_url(target):
                return Hit(POINTER, redact_url(ptr_url), 0, pointer=target, messages=messages)
            got = self.client.download(target, sink, limit=limit, progress=progress, label=name)
            if got is None:
                raise self.client.error(ptr_url, f"file.ptr points to {redact_url(target)}, which is absent (404)")
            return Hit(POINTER, redact_url(got.url), got.size, messages=messages)

        return self._walk(name, index, probe_file, follow_pointer)

    def locate(self, name: str, index: str) -> Hit | None:
        """Where the server has ``name``/``index``, without downloading it.

        The same candidates in the same order as :meth:`fetch` (HEAD for the
        files; a file.ptr is read, and one naming no path does not count), so
        "found" here means :meth:`fetch` finds it too.
        """
        with self.client.file_deadline():
            return self._locate(name, index)

    def _locate(self, name: str, index: str) -> Hit | None:
        def probe_file(cand: Candidate, messages: list[str]) -> Hit | None:
            url = self.url(cand.rel)
            return Hit(cand.form, redact_url(url), messages=messages) if _exists(self.client, url) else None

        def follow_pointer(ptr_url: str, target: str, messages: list[str]) -> Hit:
            return Hit(POINTER, redact_url(ptr_url), pointer=target, messages=messages)

        return self._walk(name, index, probe_file, follow_pointer)


class _Buffer:
    def __init__(self, limit: int):
        self.data = bytearray()
        self.limit = limit

    def write(self, b: bytes) -> int:
        self.data += b
        return len(b)


# --- publishing ------------------------------------------------------------------------------------

class _ProgressReader:
    """File wrapper for PUT bodies: reports bytes read; has a length for Content-Length."""

    def __init__(self, f: BinaryIO, size: int, advance: Callable[[int], None] | None):
        self.f = f
        self.size = size
        self.advance = advance

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        if data and self.advance is not None:
            self.advance(len(data))
        return data

    def __len__(self) -> int:
        return self.size

    def tell(self) -> int:
        return self.f.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.f.seek(offset, whence)


def _exists(client: HttpClient, url: str) -> bool:
    resp = client.request("HEAD", url)
    if resp.status_code == 200:
        return True
    if resp.status_code in ABSENT:
        return False
    raise client.status_error(url, resp)


IDENTITY_PROBE = 4096  # first bytes compared: a PE's headers (its key: TimeDateStamp, SizeOfImage), a PDB's superblock


def _same_on_server(client: HttpClient, url: str, path: Path, size: int) -> bool:
    """Does the server hold this very file at ``url``?

    Not merely "HEAD answered 200": a catch-all page answers 200 for every
    path.  The same size (Content-Length) and the same first bytes (a Range
    GET; a server ignoring Range sends the whole file, of which only those
    bytes are read).  Anything else -- absent, another size, other bytes,
    no Content-Length -- means upload.  401/403/5xx stay errors.
    """
    resp = client.request("HEAD", url)
    try:
        if resp.status_code in ABSENT:
            return False
        if resp.status_code != 200:
            raise client.status_error(url, resp)
        length = resp.headers.get("Content-Length", "")
    finally:
        resp.close()
    if not (length.isascii() and length.isdigit() and len(length) <= 20 and int(length) == size):
        return False
    with open(path, "rb") as f:
        want = f.read(IDENTITY_PROBE)
    if not want:
        return True
    resp = client.request("GET", url, headers={"Range": f"bytes=0-{len(want) - 1}"}, stream=True)
    try:
        if resp.status_code not in (200, 206):
            return False
        got = resp.raw.read(len(want), decode_content=False)
    except Exception as err:  # a connection dropped mid-read: not confirmed, so upload
        raise client.error(url, describe_exception(err, client.options)) from None
    finally:
        resp.close()
    return got == want


def publish_http(url: str, items: Iterable, *, dry_run: bool = False, progress=None,
                 client: HttpClient | None = None) -> list[dict]:
    """Upload ``items`` (PublishItem) to an HTTP store with PUT at ``name/INDEX/name``.

    Keys the server already holds with these very bytes (:func:`_same_on_server`)
    are skipped.  Each result: ``{"key", "status": "uploaded" | "present"
    | "would-upload" (dry run) | "error", "url", "size"[, "error"]}``.  No
    000Admin history is kept over HTTP (see :data:`HTTP_STORE_NOTE`).
    ``progress``: a :class:`ProgressFactory` or ``None``.
    """
    if not is_url(url):
        raise UsageError(f"not an HTTP(S) URL: {redact_url(url)}")
    own_client = client is None
    client = client or HttpClient()
    server = client.server(url)
    results: list[dict] = []
    try:
        try:
            server.two_tier()
        except NetworkError as err:
            return [{"key": item.key, "status": "error", "url": redact_url(url), "size": item.size,
                     "error": str(err)} for item in items]
        for item in items:
            target = server.url(key_path(item.name, item.index, server.two_tier()))
            result = {"key": item.key, "status": "error", "url": redact_url(target), "size": item.size}
            try:
                if _same_on_server(client, target, Path(item.path), item.size):
                    result["status"] = "present"
                elif dry_run:
                    result["status"] = "would-upload"
                else:
                    _put(client, target, Path(item.path), progress, item.name)
                    result["status"] = "uploaded"
            except NetworkError as err:
                result["error"] = str(err)
            except OSError as err:
                result["error"] = f"{item.path}: {err.strerror or err}"
            results.append(result)
    finally:
        if own_client:
            client.close()
    return results


def _put(client: HttpClient, url: str, path: Path, progress, label: str) -> None:
    size = path.stat().st_size
    with open(path, "rb") as f:
        advance = progress.start(label, size) if progress is not None else None
        try:
            resp = client.request("PUT", url, data=_ProgressReader(f, size, advance),
                                  headers={"Content-Type": "application/octet-stream"})
        finally:
            if progress is not None:
                progress.stop()
    try:
        if resp.status_code not in (200, 201, 204):
            raise client.status_error(url, resp)
    finally:
        resp.close()
    # Read back the size: a proxy that silently drops bodies must not look like success.
    check = client.request("HEAD", url)
    length = check.headers.get("Content-Length")
    if check.status_code != 200 or (length is not None and length.isdigit() and int(length) != size):
        raise client.error(url, f"upload not confirmed (HEAD answered {check.status_code}, "
                                f"{length} bytes instead of {size})")
