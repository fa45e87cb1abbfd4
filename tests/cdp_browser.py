"""Headless Chromium driven over the Chrome DevTools Protocol, for tests of pages symtool writes.

Debian's ``chromium`` runs headless in a new profile, with DevTools on a port the browser picks
(``--remote-debugging-port=0``, read back from ``DevToolsActivePort``) on 127.0.0.1.  A page is
driven with ``Runtime.evaluate`` (the scripts of the page have run: clicks, typing, reading the
DOM), and everything the page reports as an error is collected: uncaught exceptions
(``Runtime.exceptionThrown``), ``console.error``/``console.assert``, and the browser's own log
entries at level error (``Log.entryAdded``: CSP violations, failed loads).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", "--remote-debugging-address=127.0.0.1",
         "--remote-debugging-port=0", "--window-size=1400,1000"]
START_TIMEOUT = 30.0
CALL_TIMEOUT = 30.0


class BrowserError(Exception):
    pass


class Page:
    """One tab: ``call`` a DevTools method, ``evaluate`` JavaScript, ``errors`` seen so far."""

    def __init__(self, ws_url: str):
        import websocket  # websocket-client (the test extra)

        # No Origin header: Chromium refuses DevTools connections from origins it was not told about.
        self.ws = websocket.create_connection(ws_url, timeout=CALL_TIMEOUT, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        self.errors: list[str] = []
        self.call("Runtime.enable")
        self.call("Log.enable")
        self.call("Page.enable")

    def _note(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.errors.append("exception: " + (details.get("exception", {}).get("description")
                                                or details.get("text", "")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append("console." + params["type"] + ": " + " ".join(
                str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            self.errors.append(f"log ({params['entry'].get('source')}): {params['entry'].get('text')}")
        self.events.append(message)

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        ident = self.next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + CALL_TIMEOUT
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._note(message)
        raise BrowserError(f"{method}: no answer in {CALL_TIMEOUT} s")

    def wait_event(self, method: str, timeout: float = CALL_TIMEOUT) -> dict:
        for message in self.events:
            if message.get("method") == method:
                self.events.remove(message)
                return message
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            self._note(message)
            if message.get("method") == method:
                self.events.remove(message)
                return message
        raise BrowserError(f"no {method} in {timeout} s")

    def open(self, url: str) -> None:
        """Navigate and wait for the load event (the page's scripts have run by then)."""
        self.events.clear()
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"{url}: {result['errorText']}")
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:200]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def drain(self, seconds: float = 0.2) -> None:
        """Collect the events sent meanwhile (errors logged after a click)."""
        self.ws.settimeout(seconds)
        try:
            while True:
                self._note(json.loads(self.ws.recv()))
        except Exception:  # the timeout: nothing more for now
            pass
        finally:
            self.ws.settimeout(CALL_TIMEOUT)

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params = {"format": "png"}
        if full_page:
            metrics = self.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 8000),
                                "scale": 1})
        data = self.call("Page.captureScreenshot", **params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self.ws.close()


class Browser:
    """A headless Chromium with a private profile; ``page()`` is its first tab."""

    def __init__(self, binary: str):
        self.profile = Path(tempfile.mkdtemp(prefix="symtool-chromium-"))
        # Its log goes to a file: a pipe nobody reads would fill up and stall the browser.
        self.log = self.profile.parent / (self.profile.name + ".log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.log.read_text(errors="replace")
                self.close()
                raise BrowserError(f"chromium did not start: {err[-2000:]}")
            time.sleep(0.05)
        self.port = int(port_file.read_text().split()[0])

    def page(self) -> Page:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as r:
            targets = json.load(r)
        target = next(t for t in targets if t.get("type") == "page")
        return Page(target["webSocketDebuggerUrl"])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
        self.log.unlink(missing_ok=True)


def artifact_dir() -> Path:
    """Where screenshots are kept after the run: build/test-artifacts (gitignored), or
    $SYMTOOL_TEST_ARTIFACTS."""
    d = Path(os.environ.get("SYMTOOL_TEST_ARTIFACTS") or Path(__file__).resolve().parent.parent / "build"
             / "test-artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d
