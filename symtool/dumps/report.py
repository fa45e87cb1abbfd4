"""The HTML crash report of ``symtool dumps --html``: one self-contained page a person opens.

:class:`Report` takes the triage rows one at a time (memory grows with buckets, not dumps) and
:func:`render_html` writes the page: a summary, a chart of crashes per day of the top buckets, the
bucket table (rendered here, in the HTML; the page's small script only sorts, filters and expands
it), each bucket's symbolized stack with source links and its dumps, and the missing symbols.

History across runs: :func:`load_baseline` reads the ``--json`` of an earlier run (a list of rows,
the stable format: no new file format) and derives its buckets from each row's ``bucket`` and
``time``; buckets are then new, growing, seen or gone.

Every string from a dump, a PDB, a store or the baseline (module names, comments, panic messages,
paths, URLs) goes through :func:`text` (``html.escape`` plus visible bidi and control characters);
only ``http(s)`` URLs become links (:func:`safe_url`).  A Content-Security-Policy admits only this
page's own style and script (by hash), so nothing else runs and nothing is fetched.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from symtool.dumps.buckets import Bucket, Buckets
from symtool.dumps.triage import ELF_PLATFORMS, MACH_PLATFORMS, TriageRow
from symtool.errors import FormatError, UsageError

# A --json row is ~20 KB (its stack and modules), so this is ~10,000 dumps; rows are decoded one at a
# time, so memory is this file's text plus one row, never every row's objects.
MAX_BASELINE_BYTES = 256 << 20
MAX_DUMPS_LISTED = 200  # per bucket; the count and --json have them all
MAX_FRAMES_SHOWN = 64  # per stack, from the user's frame's runtime path on
MAX_VERSIONS_SHOWN = 8
MAX_UNREADABLE_LISTED = 200
TOP_BUCKETS_CHARTED = 5
MAX_BINS = 60  # days (or groups of days) in the chart and each sparkline

# Bidi controls reorder what is shown around them (a path that reads "exe.txt" but is "txt.exe"):
# shown as escapes, never applied.  U+200E/F and U+061C are the implicit marks.
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
_OTHER_COLOR = "#9e9e9e"
DASH = "\u2014"  # an empty cell


def text(value) -> str:
    """``value`` as HTML text or attribute content: escaped, with bidi and control characters
    (and lone surrogates, which UTF-8 cannot carry) written as visible escapes."""
    if value is None:
        return ""
    s = str(value)
    if not s.isprintable():
        out = []
        for ch in s:
            code = ord(ch)
            if ch in _BIDI:
                out.append(f"\\u{code:04x}")
            elif ch in "\n\t" or ch.isprintable() or ch == " ":
                out.append(ch)
            elif 0xD800 <= code <= 0xDFFF or code > 0xFF:
                out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
            else:
                out.append(f"\\x{code:02x}")
        s = "".join(out)
    elif any(ch in _BIDI for ch in s):  # U+061C is "printable" to Python
        s = "".join(f"\\u{ord(ch):04x}" if ch in _BIDI else ch for ch in s)
    return html.escape(s, quote=True)


def safe_url(url) -> str | None:
    """``url`` if a browser may follow it from the report: http(s) with a host, no whitespace,
    control or bidi characters; else None (shown as text, never as a link)."""
    if not isinstance(url, str) or len(url) > 8192:
        return None
    from urllib.parse import urlsplit

    if any(ch.isspace() or not ch.isprintable() or ch in _BIDI for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def _day(time: str | None) -> _dt.date | None:
    m = _DAY.match(time) if isinstance(time, str) else None
    if m is None:
        return None
    try:
        return _dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


# -- the baseline: an earlier run's --json -----------------------------------------------------------------


@dataclass
class BaselineBucket:
    key: str
    count: int = 0
    first: str | None = None
    last: str | None = None
    signature: list[str] = field(default_factory=list)
    example: str | None = None


@dataclass
class Baseline:
    path: str
    buckets: dict[str, BaselineBucket] = field(default_factory=dict)
    dumps: int = 0
    unreadable: int = 0


def _not_rows(path, why: str) -> FormatError:
    return FormatError(f"not the --json output of `symtool dumps` (a list of rows): {why}", path)


def _optional_str(row: dict, key: str, n: int, path) -> str | None:
    value = row.get(key)
    if value is not None and not isinstance(value, str):
        raise _not_rows(path, f"row {n}: {key!r} is {type(value).__name__}, not a string")
    return value


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """The buckets of an earlier ``symtool dumps --json`` (counts, first/last seen, signature).

    FormatError naming ``path`` for anything else: broken JSON, another shape, an error object,
    or a file over MAX_BASELINE_BYTES (checked before reading it)."""
    from symtool.fsutil import open_regular

    with open_regular(path, what="the baseline") as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_BASELINE_BYTES:
            raise FormatError(f"the baseline is {size} bytes, over the {MAX_BASELINE_BYTES >> 20} MiB read "
                              "(an earlier run's --json)", path)
        data = f.read(MAX_BASELINE_BYTES + 1)
    if len(data) > MAX_BASELINE_BYTES:  # grew while read
        raise FormatError(f"the baseline is over the {MAX_BASELINE_BYTES >> 20} MiB read", path)
    try:
        doc = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FormatError(f"not UTF-8 JSON (byte {err.start})", path) from None
    del data
    out = Baseline(os.fspath(path))
    for n, row in enumerate(_json_list_items(doc, path), 1):
        if not isinstance(row, dict):
            raise _not_rows(path, f"row {n} is {type(row).__name__}, not an object")
        if "bucket" not in row or "path" not in row:
            raise _not_rows(path, f"row {n} has no 'bucket' and 'path'")
        out.dumps += 1
        if _optional_str(row, "error", n, path):
            out.unreadable += 1
            continue
        key = _optional_str(row, "bucket", n, path) or "unknown"
        time = _optional_str(row, "time", n, path)
        dump = _optional_str(row, "path", n, path)
        signature = row.get("signature") or []
        if not isinstance(signature, list) or not all(isinstance(s, str) for s in signature):
            raise _not_rows(path, f"row {n}: 'signature' is not a list of strings")
        b = out.buckets.get(key)
        if b is None:
            b = out.buckets[key] = BaselineBucket(key, signature=list(signature), example=dump)
        b.count += 1
        if time:
            b.first = time if b.first is None or time < b.first else b.first
            b.last = time if b.last is None or time > b.last else b.last
    return out


def _json_list_items(doc: str, path):
    """The items of the JSON list ``doc``, decoded one at a time (a baseline of 10,000 rows never
    holds 10,000 rows of objects)."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\n\r]*")
    i = ws.match(doc, 0).end()
    if doc[i:i + 1] != "[":
        what = "an object" if doc[i:i + 1] == "{" else "empty" if i >= len(doc) else "not a list"
        raise _not_rows(path, f"the file is {what}" + (" (a failed run's error object?)" if what == "an object"
                                                      else ""))
    i = ws.match(doc, i + 1).end()
    if doc[i:i + 1] == "]":
        i += 1
    else:
        while True:
            try:
                item, i = decoder.raw_decode(doc, i)
            except json.JSONDecodeError as err:
                raise FormatError(f"broken JSON at line {err.lineno} column {err.colno}: {err.msg}", path) from None
            except RecursionError:
                raise FormatError("JSON nested too deeply", path) from None
            yield item
            i = ws.match(doc, i).end()
            sep = doc[i:i + 1]
            i = ws.match(doc, i + 1).end()
            if sep == "]":
                break
            if sep != ",":
                line = doc.count("\n", 0, i) + 1
                raise FormatError(f"broken JSON at line {line}: expected ',' or ']' after a row", path)
    if ws.match(doc, i).end() != len(doc):
        raise FormatError(f"broken JSON at line {doc.count(chr(10), 0, i) + 1}: data after the list", path)


# -- accumulating rows -----------------------------------------------------------------------------------------


@dataclass
class DumpEntry:
    path: str
    time: str | None
    os: str | None
    thread_id: int | None
    comments: list[str]


@dataclass
class BucketExtras:
    """What the page shows of a bucket beyond :class:`~symtool.dumps.buckets.Bucket`."""

    days: Counter = field(default_factory=Counter)  # date -> crashes
    versions: Counter = field(default_factory=Counter)  # (module, code_id, debug_id) -> crashes
    dumps: list[DumpEntry] = field(default_factory=list)  # the first MAX_DUMPS_LISTED
    stack_note: str | None = None
    elf_ids: dict[str, str] = field(default_factory=dict)  # ELF module name -> build id (first dump)


@dataclass
class ModuleSymbols:
    """One own module's symbols (a PDB; on Linux the binary with its DWARF, by build id)."""

    name: str
    kind: str  # "PDB" or "DWARF"
    key: str | None  # the store key to publish
    found: bool | None  # None: not checked (a server that failed)
    dumps: int = 0
    error: str | None = None


@dataclass
class Report:
    """Rows in, everything :func:`render_html` shows out."""

    buckets: Buckets = field(default_factory=Buckets)
    extras: dict[str, BucketExtras] = field(default_factory=dict)
    symbols: dict[tuple, ModuleSymbols] = field(default_factory=dict)  # (name, key) -> ModuleSymbols
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, error), the first few

    def add(self, row: TriageRow) -> None:
        self.buckets.add(row)
        if row.error:
            if len(self.unreadable) < MAX_UNREADABLE_LISTED:
                self.unreadable.append((row.path, row.error))
            return
        elf = row.platform in ELF_PLATFORMS
        mach = row.platform in MACH_PLATFORMS
        for m in row.modules:
            if m.os_module:
                continue
            if elf and m.codeview == "ELF":
                kind, key, found = "DWARF", m.image_store_path, m.image_found
            elif mach and m.image_store_path:
                kind, key, found = "DWARF", m.image_store_path, bool(m.image_found and m.debug_path)
            elif not elf and (m.pdb_store_path or m.pdb_found is not None):
                kind, key, found = "PDB", m.pdb_store_path, m.pdb_found
            else:
                continue
            entry = self.symbols.get((m.name, key))
            if entry is None:
                entry = self.symbols[(m.name, key)] = ModuleSymbols(m.name, kind, key, found, error=m.error)
            entry.dumps += 1
        key = row.bucket or "unknown"
        extra = self.extras.get(key)
        if extra is None:
            extra = self.extras[key] = BucketExtras(stack_note=row.stack_note)
            extra.elf_ids = {m.name: m.code_id for m in row.modules if m.codeview == "ELF" and m.code_id}
        day = _day(row.time)
        if day is not None:
            extra.days[day] += 1
        own = _own_module(row, self.buckets.buckets[key])
        if own is not None:
            extra.versions[(own.name, own.code_id, own.debug_id)] += 1
        if len(extra.dumps) < MAX_DUMPS_LISTED:
            extra.dumps.append(DumpEntry(row.path, row.time, row.os, row.thread_id, list(row.comments)))


def _own_module(row: TriageRow, bucket: Bucket):
    """The module a bucket is about: that of the user's frame (past the panic/abort path), else the
    faulting module.  Its identity (code id, debug id) is the "version" the page shows: minidumps
    name builds by identity, not by a version resource."""
    name = None
    if bucket.stack and row.stack:
        from symtool.dumps.signature import runtime_prefix

        os_modules = {m.name.lower() for m in row.modules if m.os_module}
        start = runtime_prefix(row.stack, os_modules)
        name = next((f.module for f in row.stack[start:] if f.function and f.module), None)
    name = name or row.faulting_module
    return next((m for m in row.modules if m.name == name), None) if name else None


# -- the page ---------------------------------------------------------------------------------------------------

_CSS = """
:root{--fg:#1b1b1b;--muted:#5c5c5c;--line:#d0d0d0;--bg:#fff;--alt:#f5f6f8;--accent:#0b57d0;--new:#b3261e;
--grow:#8a4b00;--gone:#4a4a4a}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);
margin:0 auto;padding:1rem 1.5rem;max-width:1600px}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .5rem;border-bottom:1px solid var(--line)}
h3{font-size:1rem;margin:.8rem 0 .3rem}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.muted{color:var(--muted)}
dl.summary{display:grid;grid-template-columns:repeat(auto-fill,minmax(11rem,1fr));gap:.5rem;margin:0}
dl.summary div{background:var(--alt);border:1px solid var(--line);border-radius:6px;padding:.5rem .7rem}
dl.summary dt{color:var(--muted);font-size:.85rem}dl.summary dd{margin:0;font-size:1.35rem;font-weight:600}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid var(--line)}
thead th{position:sticky;top:0;background:var(--bg);border-bottom:2px solid var(--fg);white-space:nowrap}
th button.sort{font:inherit;font-weight:600;background:none;border:0;padding:0;cursor:pointer;color:inherit}
th[aria-sort=ascending] button.sort::after{content:" \\25B2"}th[aria-sort=descending] button.sort::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tbody.bucket:nth-of-type(even) tr.main{background:var(--alt)}
tr.detail>td{background:#fbfbfd;padding:.5rem 1rem 1rem 2.2rem}
.sig{display:block;word-break:break-word}
#bucket-table td{overflow-wrap:anywhere}#bucket-table td:first-child{min-width:16rem}
#bucket-table td.panic-cell{min-width:13rem}#bucket-table td.keep{overflow-wrap:normal}#bucket-table td.exc-cell{min-width:9rem}
ul.plainlist{list-style:none;margin:0;padding:0}
.panic{white-space:pre-wrap;word-break:break-word}
button.toggle{font:inherit;width:1.8rem;margin-right:.3rem;cursor:pointer;border:1px solid var(--line);
background:var(--bg);border-radius:4px}
button:focus-visible,input:focus-visible,select:focus-visible,a:focus-visible{outline:3px solid var(--accent);
outline-offset:1px}
.badge{display:inline-block;font-size:.75rem;font-weight:600;border-radius:3px;padding:0 .35rem;
border:1px solid currentColor;margin-right:.3rem}
.badge.new{color:var(--new)}.badge.growing{color:var(--grow)}.badge.seen,.badge.gone{color:var(--gone)}
.badge.inline{color:#555;font-weight:400}
ol.frames{list-style:none;margin:0;padding:0}
ol.frames li{padding:.1rem 0;border-bottom:1px dotted var(--line);overflow-wrap:anywhere}
ol.frames li.runtime{color:var(--muted)}ol.frames li.user code{font-weight:700}
ol.frames .idx{display:inline-block;width:2rem;color:var(--muted)}
.loc{color:var(--muted);margin-left:.4rem}
a{color:var(--accent)}
#controls{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;margin:.4rem 0}
#controls input{padding:.3rem .4rem;min-width:18rem}
svg.spark rect{fill:#4c78a8}svg.chart text{font-size:11px;fill:var(--muted)}
ul.legend{list-style:none;padding:0;margin:.3rem 0;display:flex;flex-wrap:wrap;gap:.3rem 1.2rem}
ul.legend li{max-width:40rem;word-break:break-word}
caption.left{text-align:left}
table.dumps td,table.dumps th,table.plain td,table.plain th{padding:.15rem .5rem;font-size:13px}
@media print{#controls,button.toggle{display:none}tr.detail[hidden]{display:table-row!important}
thead th{position:static}body{max-width:none;padding:0}tbody.bucket{break-inside:avoid}a{color:inherit}}
"""

_JS = """
(function () {
  "use strict";
  var table = document.getElementById("bucket-table");
  if (!table) { return; }
  var bodies = Array.prototype.slice.call(table.tBodies);
  var texts = bodies.map(function (tb) { return tb.rows[0].textContent.toLowerCase(); });
  var filter = document.getElementById("filter");
  var status = document.getElementById("status-filter");
  var shown = document.getElementById("shown");
  document.getElementById("controls").hidden = false;

  function setOpen(tb, open) {
    var detail = tb.rows[1], button = tb.rows[0].querySelector("button.toggle");
    detail.hidden = !open;
    button.setAttribute("aria-expanded", open ? "true" : "false");
    button.textContent = open ? "\\u25BE" : "\\u25B8";
  }
  bodies.forEach(function (tb) {
    var cell = tb.rows[0].cells[0], button = document.createElement("button");
    button.type = "button";
    button.className = "toggle";
    button.setAttribute("aria-controls", tb.rows[1].id);
    button.setAttribute("aria-label", "stack and dumps of this bucket");
    cell.insertBefore(button, cell.firstChild);
    button.addEventListener("click", function () { setOpen(tb, tb.rows[1].hidden); });
    setOpen(tb, false);
  });
  document.getElementById("expand-all").addEventListener("click", function () {
    var open = bodies.some(function (tb) { return tb.rows[1].hidden && !tb.hidden; });
    bodies.forEach(function (tb) { if (!tb.hidden) { setOpen(tb, open); } });
  });

  function apply() {
    var q = filter.value.trim().toLowerCase(), s = status ? status.value : "", n = 0;
    bodies.forEach(function (tb, i) {
      var ok = (!q || texts[i].indexOf(q) >= 0) && (!s || tb.getAttribute("data-status") === s);
      tb.hidden = !ok;
      n += ok ? 1 : 0;
    });
    shown.textContent = n + " of " + bodies.length + " buckets shown";
  }
  filter.addEventListener("input", apply);
  if (status) { status.addEventListener("change", apply); }
  apply();

  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    var type = th.getAttribute("data-sort");
    if (!type) { return; }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "sort";
    while (th.firstChild) { button.appendChild(th.firstChild); }
    th.appendChild(button);
    button.addEventListener("click", function () {
      var descending = th.getAttribute("aria-sort") !== "descending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      var keyed = bodies.map(function (tb, i) {
        var v = tb.rows[0].cells[col].getAttribute("data-value") || "";
        return { tb: tb, i: i, v: type === "num" ? parseFloat(v) || 0 : v.toLowerCase() };
      });
      keyed.sort(function (a, b) {
        var c = a.v < b.v ? -1 : a.v > b.v ? 1 : 0;
        return (descending ? -c : c) || a.i - b.i;
      });
      keyed.forEach(function (k) { table.appendChild(k.tb); });
    });
  });
})();
"""


def _sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"


_CSP = (f"default-src 'none'; style-src {_sha256(_CSS)}; script-src {_sha256(_JS)}; img-src data:; "
        "base-uri 'none'; form-action 'none'")


def _bins(days: list[_dt.date]) -> tuple[list[tuple[_dt.date, _dt.date]], int]:
    """The chart's bins, oldest first: (first day, last day) of each, and the days per bin."""
    if not days:
        return [], 1
    start, end = min(days), max(days)
    span = (end - start).days + 1
    width = -(-span // MAX_BINS)
    bins = []
    d = start
    while d <= end:
        last = min(d + _dt.timedelta(days=width - 1), end)
        bins.append((d, last))
        d = last + _dt.timedelta(days=1)
    return bins, width


def _binned(counts: Counter, bins, width: int) -> list[int]:
    if not bins:
        return []
    start = bins[0][0]
    out = [0] * len(bins)
    for day, n in counts.items():
        out[min((day - start).days // width, len(bins) - 1)] += n
    return out


def _bin_label(b: tuple[_dt.date, _dt.date]) -> str:
    return b[0].isoformat() if b[0] == b[1] else f"{b[0].isoformat()} to {b[1].isoformat()}"


def _sparkline(values: list[int], bins) -> str:
    if not values:
        return '<span class="muted">no times</span>'
    w, h = 96, 22
    top = max(values) or 1
    step = w / len(values)
    peak = max(range(len(values)), key=lambda i: values[i])
    label = (f"{sum(values)} crashes from {bins[0][0].isoformat()} to {bins[-1][1].isoformat()}, "
             f"most ({values[peak]}) {_bin_label(bins[peak])}")
    rects = []
    for i, v in enumerate(values):
        if v:
            bh = max(1.5, h * v / top)
            rects.append(f'<rect x="{i * step:.1f}" y="{h - bh:.1f}" width="{max(step - 1, 1):.1f}" '
                         f'height="{bh:.1f}"/>')
    return (f'<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
            f'aria-label="{text(label)}"><title>{text(label)}</title>{"".join(rects)}</svg>')


def _chart(report: Report, ordered: list[Bucket], bins, width: int) -> str:
    if not bins:
        return '<p class="muted">No dump carries a time.</p>'
    top = ordered[:TOP_BUCKETS_CHARTED]
    series = [(b.key, _PALETTE[i], _binned(report.extras[b.key].days, bins, width)) for i, b in enumerate(top)]
    rest = Counter()
    for b in ordered[TOP_BUCKETS_CHARTED:]:
        rest.update(report.extras[b.key].days)
    if rest:
        series.append(("other buckets", _OTHER_COLOR, _binned(rest, bins, width)))
    totals = [sum(s[2][i] for s in series) for i in range(len(bins))]
    peak = max(totals) or 1
    ch, left, bottom = 200, 40, 22
    bar = min(720 / len(bins), 48)  # a few days are a few bars, not a wall
    cw = max(left + bar * len(bins), 320)
    parts = [f'<svg class="chart" width="{cw:.0f}" height="{ch + bottom}" viewBox="0 0 {cw:.0f} {ch + bottom}" '
             f'role="img" aria-labelledby="chart-title"><title id="chart-title">Crashes per '
             f'{"day" if width == 1 else f"{width} days"} of the top {len(top)} buckets</title>',
             f'<line x1="{left}" y1="{ch}" x2="{cw}" y2="{ch}" stroke="#888"/>',
             f'<text x="{left - 4}" y="10" text-anchor="end">{peak}</text>',
             f'<text x="{left - 4}" y="{ch}" text-anchor="end">0</text>',
             f'<text x="{left}" y="{ch + 16}">{text(bins[0][0].isoformat())}</text>',
             f'<text x="{cw}" y="{ch + 16}" text-anchor="end">{text(bins[-1][1].isoformat())}</text>']
    for i in range(len(bins)):
        y = ch
        for key, color, values in series:
            v = values[i]
            if not v:
                continue
            bh = ch * v / peak
            y -= bh
            parts.append(f'<rect x="{left + i * bar + 1:.1f}" y="{y:.1f}" width="{max(bar - 2, 1):.1f}" '
                         f'height="{bh:.1f}" fill="{color}"><title>{text(_bin_label(bins[i]))}: {v} '
                         f'crash{"es" if v != 1 else ""} of {text(key)}</title></rect>')
    parts.append("</svg>")
    legend = "".join(f'<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" '
                     f'fill="{color}"/></svg> <code>{text(key)}</code> ({sum(values)})</li>'
                     for key, color, values in series)
    return f'<figure>{"".join(parts)}<figcaption><ul class="legend">{legend}</ul></figcaption></figure>'


def bucket_status(bucket: Bucket, baseline: Baseline | None) -> tuple[str, str]:
    """(status, words) of a bucket against the baseline: new, growing (more crashes than then) or
    seen; ("", "") without a baseline."""
    if baseline is None:
        return "", ""
    old = baseline.buckets.get(bucket.key)
    if old is None:
        return "new", "new"
    if bucket.count > old.count:
        return "growing", f"growing ({old.count} \u2192 {bucket.count})"
    return "seen", f"seen ({old.count} before)"


def gone_buckets(buckets: Buckets, baseline: Baseline | None) -> list[BaselineBucket]:
    """The baseline's buckets with no crash in this run, most crashes (then) first."""
    if baseline is None:
        return []
    gone = [b for k, b in baseline.buckets.items() if k not in buckets.buckets]
    return sorted(gone, key=lambda b: (-b.count, b.key))


_STATUS_ORDER = {"new": 3, "growing": 2, "seen": 1}


def _signature_html(bucket: Bucket) -> str:
    names = bucket.signature or [bucket.key]
    lines = "".join(f'<code class="sig">{text(n)}</code>' for n in names)
    code = f"{bucket.exception_code} " if bucket.exception_code and bucket.signature else ""
    return f'<span class="muted mono">{text(code)}</span>{lines}' if code else lines


def _panic_html(panic: dict | None) -> tuple[str, str]:
    if not isinstance(panic, dict):
        return '<span class="muted">\u2014</span>', ""
    message = panic.get("message")
    where = ""
    if panic.get("file"):
        where = f"{panic.get('file')}:{panic.get('line')}:{panic.get('column')}"
    thread = panic.get("thread")
    body = f'<span class="panic">{text(message) if message is not None else "<i>message not read</i>"}</span>'
    if where:
        body += f'<br><span class="loc mono">at {text(where)}</span>'
    if thread:
        body += f'<br><span class="muted">thread \u2018{text(thread)}\u2019</span>'
    return body, f"{message or ''} {where}"


def _versions_html(versions: Counter) -> tuple[str, str]:
    if not versions:
        return '<span class="muted">\u2014</span>', ""
    items = []
    for (name, code_id, debug_id), n in versions.most_common(MAX_VERSIONS_SHOWN):
        ident = code_id or debug_id or "?"
        title = f"code id {code_id or '?'}, debug id {debug_id or '?'}"
        items.append(f'<li><code title="{text(title)}">{text(name)} {text(ident)}</code> <span class="muted">'
                     f'\u00d7{n}</span></li>')
    more = len(versions) - MAX_VERSIONS_SHOWN
    if more > 0:
        items.append(f'<li class="muted">and {more} more</li>')
    return f'<ul class="plainlist">{"".join(items)}</ul>', str(len(versions))


def _debuginfod_source(frame, extras: BucketExtras, http_stores: list[str], local_stores: list[str]
                       ) -> tuple[str | None, str | None]:
    """(url, local path) of an ELF frame's file in a store's debuginfod source tree (what
    ``publish --sources`` writes and ``debuginfod-find source`` asks for)."""
    build_id = extras.elf_ids.get(frame.module or "")
    if not build_id or not frame.file:
        return None, None
    from urllib.parse import quote

    from symtool.store.native import SOURCE_DIR, source_rel_path

    rel = source_rel_path(frame.file)
    if rel is None:
        return None, None
    for store in local_stores:
        candidate = Path(store) / "debuginfod" / "buildid" / build_id / SOURCE_DIR / rel
        if candidate.is_file():
            return None, str(candidate)
    for store in http_stores:
        return f"{store.rstrip('/')}/debuginfod/buildid/{quote(build_id)}/{SOURCE_DIR}/{quote(rel)}", None
    return None, None


def _short_path(path: str | None) -> str:
    """The last three parts of a source path (the whole path is the element's title)."""
    if not path:
        return ""
    parts = re.split(r"[\\/]", path)
    return path if len(parts) <= 3 else "\u2026/" + "/".join(parts[-3:])


def _frames_html(bucket: Bucket, extras: BucketExtras, http_stores, local_stores) -> str:
    if not bucket.stack:
        note = extras.stack_note or "no stack was walked for this bucket's first dump"
        return f'<p class="muted">{text(note)}</p>'
    start = bucket.user_frame_index
    shown = bucket.stack[:start + MAX_FRAMES_SHOWN]
    items = []
    for k, f in enumerate(shown):
        where = _short_path(f.file) + (f":{f.line}" if f.file and f.line else "")
        url = safe_url(f.source_url)
        local = None
        if f.source_url is None:
            url, local = _debuginfod_source(f, extras, http_stores, local_stores)
            url = safe_url(url)
        source = ""
        if url:
            source = (f' <a class="source" href="{text(url)}" rel="noopener noreferrer nofollow" '
                      f'title="{text(url)}">source</a>')
        elif f.source_url:  # not http(s): shown, never followed
            source = f' <span class="muted mono" title="source (not a web link)">{text(f.source_url)}</span>'
        elif local:
            source = f' <span class="muted mono" title="archived source">{text(local)}</span>'
        classes = ["frame"] + (["runtime"] if k < start else ["user"] if k == start else []) + \
            (["inline"] if f.inline else [])
        inline = '<span class="badge inline">inline</span>' if f.inline else ""
        items.append(f'<li class="{" ".join(classes)}"><span class="idx mono">{f.index:02x}</span>{inline}'
                     f'<code>{text(f.call_site)}</code>'
                     + (f'<span class="loc mono" title="{text(f.file)}">{text(where)}</span>' if where else "")
                     + f"{source}</li>")
    more = len(bucket.stack) - len(shown)
    out = []
    if start:
        out.append(f'<p class="muted">Frames 00\u2013{start - 1:02x} (grey) are the panic/abort path; the '
                   f'signature starts at frame {start:02x}.</p>')
    out.append(f'<ol class="frames">{"".join(items)}</ol>')
    if more > 0:
        out.append(f'<p class="muted">and {more} more frames (in --json)</p>')
    if extras.stack_note:
        out.append(f'<p class="muted">note: {text(extras.stack_note)}</p>')
    return "".join(out)


def _dumps_html(bucket: Bucket, extras: BucketExtras) -> str:
    rows = []
    for d in extras.dumps:
        comments = "<br>".join(text(c) for c in d.comments)
        rows.append(f'<tr><td class="mono">{text(d.path)}</td><td class="mono">{text(d.time or "")}</td>'
                    f'<td>{text(d.os or "")}</td><td class="num">{text(d.thread_id if d.thread_id is not None else "")}'
                    f'</td><td>{comments}</td></tr>')
    more = bucket.count - len(extras.dumps)
    tail = f'<p class="muted">and {more} more dumps (in --json)</p>' if more > 0 else ""
    return (f'<table class="dumps"><thead><tr>'
            f'<th scope="col">dump</th><th scope="col">time</th><th scope="col">OS</th><th scope="col">thread</th>'
            f'<th scope="col">comments</th></tr></thead><tbody>{"".join(rows)}</tbody></table>{tail}')


def _split_stores(stores) -> tuple[list[str], list[str]]:
    http_stores = [s for s in stores if isinstance(s, str) and safe_url(s)]
    local = [s for s in stores if isinstance(s, str) and "://" not in s]
    return http_stores, local


def render_html(report: Report, baseline: Baseline | None = None, stores=(), *,
                generated: _dt.datetime | None = None, title: str = "Crash report") -> str:
    """The whole page, self-contained (inline style and script; nothing fetched)."""
    from symtool import __version__

    generated = generated or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    ordered = report.buckets.ordered()
    all_days = [d for b in ordered for d in report.extras[b.key].days]
    bins, width = _bins(all_days)
    http_stores, local_stores = _split_stores(stores)
    statuses = {b.key: bucket_status(b, baseline) for b in ordered}
    gone = gone_buckets(report.buckets, baseline)

    found = sum(1 for s in report.symbols.values() if s.found is True)
    missing = [s for s in report.symbols.values() if s.found is False]
    unchecked = [s for s in report.symbols.values() if s.found is None]
    out = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
           '<meta name="referrer" content="no-referrer">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f'<meta name="generator" content="symtool {text(__version__)}">',
           f"<title>{text(title)}</title><style>{_CSS}</style></head><body>",
           f'<header><h1>{text(title)}</h1><p class="muted">symtool dumps, {text(generated.isoformat())}'
           + (f"; baseline {text(baseline.path)} ({baseline.dumps} dumps, {len(baseline.buckets)} buckets)"
              if baseline else "") + "</p></header><main>"]

    # Summary
    cards = [("dumps read", report.buckets.dumps), ("unreadable", report.buckets.unreadable),
             ("buckets", len(ordered))]
    if baseline is not None:
        cards += [("new buckets", sum(1 for s, _ in statuses.values() if s == "new")),
                  ("growing", sum(1 for s, _ in statuses.values() if s == "growing")), ("gone", len(gone))]
    else:
        cards.append(("new buckets", "\u2014"))
    cards += [("own modules with symbols", f"{found} of {len(report.symbols)}"), ("symbols missing", len(missing))]
    out.append('<section id="summary" aria-labelledby="h-summary"><h2 id="h-summary">Summary</h2><dl class="summary">')
    out += [f'<div><dt>{text(k)}</dt><dd data-key="{text(k)}">{text(v)}</dd></div>' for k, v in cards]
    out.append("</dl>")
    if baseline is None:
        out.append('<p class="muted">New, growing and gone buckets: pass an earlier run\'s <code>--json</code> '
                   "as <code>--baseline</code>.</p>")
    if unchecked:
        out.append(f'<p>{len(unchecked)} own module(s) could not be checked (a store failed).</p>')
    out.append("</section>")

    out.append('<section id="chart-section" aria-labelledby="h-chart"><h2 id="h-chart">Crashes over time</h2>')
    out.append(_chart(report, ordered, bins, width))
    out.append("</section>")

    # The bucket table
    with_status = baseline is not None
    out.append('<section id="buckets" aria-labelledby="h-buckets"><h2 id="h-buckets">Buckets</h2>')
    out.append('<div id="controls" hidden><label>Filter <input id="filter" type="search" '
               'placeholder="function, message, module, code\u2026" autocomplete="off"></label>')
    if with_status:
        out.append('<label>Status <select id="status-filter"><option value="">all</option>'
                   '<option value="new">new</option><option value="growing">growing</option>'
                   '<option value="seen">seen before</option></select></label>')
    out.append('<button type="button" id="expand-all">expand / collapse all</button>'
               '<span id="shown" aria-live="polite"></span></div>')
    heads = [("signature", "text", "Bucket (signature)"), ("count", "num", "Count")]
    if with_status:
        heads.append(("status", "num", "Status"))
    heads += [("panic", "text", "Panic"), ("exception", "text", "Exception"), ("first", "text", "First seen"),
              ("last", "text", "Last seen"), ("versions", "num", "Module versions"), ("trend", None, "Crashes")]
    out.append('<table id="bucket-table"><caption class="muted left">'
               f'{len(ordered)} buckets, most crashes first. Expand a bucket for its stack and dumps.</caption>'
               "<thead><tr>")
    for key, sort, label in heads:
        attr = f' data-sort="{sort}"' if sort else ""
        out.append(f'<th scope="col" data-key="{key}"{attr}>{label}</th>')
    out.append("</tr></thead>")
    ncols = len(heads)
    for n, b in enumerate(ordered):
        extras = report.extras[b.key]
        status, words = statuses[b.key]
        old = baseline.buckets.get(b.key) if baseline else None
        first = min(t for t in (b.first, old.first if old else None) if t) if (b.first or (old and old.first)) else None
        panic_html, panic_value = _panic_html(b.panic)
        versions_html, versions_value = _versions_html(extras.versions)
        exc = f"{b.exception_code or ''} {b.exception_name or ''}".strip()
        badge = f'<span class="badge {status}">{text(status)}</span>' if status else ""
        out.append(f'<tbody class="bucket" data-bucket="{text(b.key)}" data-status="{status}">'
                   f'<tr class="main" id="bucket-{n}">'
                   f'<td data-value="{text(" | ".join(b.signature) or b.key)}">{badge}{_signature_html(b)}</td>'
                   f'<td class="num" data-value="{b.count}">{b.count}</td>')
        if with_status:
            out.append(f'<td class="keep" data-value="{_STATUS_ORDER.get(status, 0)}">{text(words)}</td>')
        out.append(f'<td class="panic-cell" data-value="{text(panic_value)}">{panic_html}</td>'
                   f'<td class="exc-cell" data-value="{text(exc)}"><code>{text(b.exception_code or "")}</code> '
                   f'{text(b.exception_name or "")}</td>'
                   f'<td class="mono keep" data-value="{text(first or "")}">{text(first or DASH)}</td>'
                   f'<td class="mono keep" data-value="{text(b.last or "")}">{text(b.last or DASH)}</td>'
                   f'<td data-value="{text(versions_value)}">{versions_html}</td>'
                   f'<td>{_sparkline(_binned(extras.days, bins, width), bins)}</td></tr>'
                   f'<tr class="detail" id="bucket-{n}-detail"><td colspan="{ncols}">'
                   f'<h3>Stack of {text(b.example or "")}</h3>{_frames_html(b, extras, http_stores, local_stores)}'
                   f'<h3>Dumps ({b.count})</h3>{_dumps_html(b, extras)}</td></tr></tbody>')
    out.append("</table></section>")

    if baseline is not None:
        out.append('<section id="gone" aria-labelledby="h-gone"><h2 id="h-gone">Gone since the baseline</h2>')
        if gone:
            out.append('<table class="plain"><thead><tr><th scope="col">bucket</th><th scope="col">count then</th>'
                       '<th scope="col">first seen</th><th scope="col">last seen</th></tr></thead><tbody>')
            out += [f'<tr><td><span class="badge gone">gone</span><code>{text(g.key)}</code></td>'
                    f'<td class="num">{g.count}</td><td class="mono">{text(g.first or "")}</td>'
                    f'<td class="mono">{text(g.last or "")}</td></tr>' for g in gone]
            out.append("</tbody></table>")
        else:
            out.append('<p class="muted">Every bucket of the baseline crashed again.</p>')
        out.append("</section>")

    out.append('<section id="missing" aria-labelledby="h-missing"><h2 id="h-missing">Missing symbols</h2>')
    if missing or unchecked:
        out.append('<p class="muted">Own modules (not the operating system\'s) whose symbols are in no store: '
                   "publish these keys (<code>symtool publish</code>).</p>")
        by_module: dict[str, list[ModuleSymbols]] = {}
        for s in sorted(missing + unchecked, key=lambda s: (s.name.lower(), s.key or "")):
            by_module.setdefault(s.name, []).append(s)
        for name, entries in by_module.items():
            out.append(f'<h3><code>{text(name)}</code></h3><ul>')
            for s in entries:
                state = "not checked" if s.found is None else "missing"
                err = f' <span class="muted">({text(s.error)})</span>' if s.error else ""
                out.append(f'<li>{text(s.kind)} <code>{text(s.key or "(no key)")}</code>: {state}, needed by '
                           f'{s.dumps} dump{"s" if s.dumps != 1 else ""}{err}</li>')
            out.append("</ul>")
    else:
        out.append('<p class="muted">Every own module\'s symbols were found.</p>')
    out.append("</section>")

    if report.unreadable:
        out.append('<section id="unreadable" aria-labelledby="h-unreadable"><h2 id="h-unreadable">Unreadable dumps'
                   '</h2><ul>')
        out += [f'<li><code>{text(p)}</code>: {text(e)}</li>' for p, e in report.unreadable]
        more = report.buckets.unreadable - len(report.unreadable)
        if more > 0:
            out.append(f'<li class="muted">and {more} more</li>')
        out.append("</ul></section>")

    out.append(f"</main><script>{_JS}</script></body></html>\n")
    return "".join(out)


def check_report_path(path: str | os.PathLike[str]) -> None:
    """Refuse, before any work, a report path that cannot be written: a directory, or a parent
    directory that is missing or not writable (UsageError naming the path)."""
    p = Path(path)
    if p.is_dir():
        raise UsageError("is a directory: the HTML report needs a file name", path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"cannot write the HTML report: no directory {parent}", path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write the HTML report: directory {parent} is not writable", path)


def write_report(path: str | os.PathLike[str], page: str) -> None:
    """``page`` at ``path``, atomically (a reader never sees half a report)."""
    from symtool.fsutil import atomic_write_text

    atomic_write_text(path, page)


__all__ = ["Report", "Baseline", "BaselineBucket", "load_baseline", "bucket_status", "gone_buckets", "render_html", "check_report_path",
           "write_report", "text", "safe_url", "MAX_BASELINE_BYTES"]
