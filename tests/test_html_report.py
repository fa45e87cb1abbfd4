"""`symtool dumps --html` and `--baseline` without a browser: what the page says in its static HTML
(it must read without JavaScript), hostile strings through every field, the baseline's new, growing
and gone buckets, and the CLI's errors.  The page in a real browser: tests/test_html_report_browser.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cli_runner import symtool_in_process
from symtool.dumps.report import MAX_BASELINE_BYTES, Report, load_baseline, render_html, safe_url, text
from symtool.dumps.stack import FrameRow as StackFrame
from symtool.dumps.triage import FrameRow, ModuleRow, TriageRow
from symtool.errors import FormatError

ROOT = Path(__file__).resolve().parent.parent
BIDI = "\u202e"
# What a hostile dump, PDB or store can put in a string: markup, a script URL, a bidi override.
HOSTILE = f'<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">"\'&{BIDI}gpj.exe'
HOSTILE_URL = "javascript:window.__pwned=3"
# An http(s) URL may be a link, but its quotes and markup must stay inside the attribute.
QUOTING_URL = 'https://example.org/a"><script>window.__pwned=4</script>'


def make_row(name: str = "app", *, time: str = "2026-12-01T10:00:00", bucket: str | None = None,
             hostile: bool = False, panic: bool = True, pdb_found: bool = True, path: str | None = None,
             source_url: str | None = None) -> TriageRow:
    """A triage row as `symtool dumps` makes them; with ``hostile`` every string a dump, PDB or store
    supplies carries HOSTILE (and the source URL is a javascript: one)."""
    h = HOSTILE if hostile else ""
    exe = f"{name}{h}.exe"
    user = f"{name}::crash{h}"
    frames = [
        StackFrame(0, exe, "0x1000", f"core::panicking::panic{h}", "0x10", f"/rustc/lib{h}.rs", 10, False,
                   "context", "0x140001000", "0x1000", "0x140002000", source_url=None),
        StackFrame(1, exe, "0x2000", user, None, f"/src/{name}{h}.rs", 20, True, "cfi", "0x140002000", None, None,
                   source_url=HOSTILE_URL if hostile else source_url or f"https://example.org/src/{name}.rs"),
        StackFrame(2, exe, "0x2000", f"{name}::main{h}", "0x20", f"/src/{name}{h}.rs", 30, False, "cfi",
                   "0x140002000", "0x1100", None, source_url=QUOTING_URL if hostile else None),
    ]
    module = ModuleRow(name=exe, path=f"C:\\app\\{exe}", base="0x140000000", size=0x10000, timestamp=1,
                       code_id=f"6B14EA9D2d000{h}", debug_id=f"66F70EB712EB84974C4C44205044422E1{h}",
                       codeview="RSDS", pdb_name=f"{name}{h}.pdb",
                       pdb_store_path=f"{name}{h}.pdb/66F70EB712EB84974C4C44205044422E1/{name}{h}.pdb",
                       pdb_found=pdb_found, os_module=False, error=f"store said {h}" if hostile else None)
    signature = [f"{name}!{user}", f"{name}!{name}::main{h}"]
    return TriageRow(path=path or f"dumps/{name}{h}.dmp", time=time, time_source="header", platform="windows",
                     os=f"Windows NT 10.0{h}", cpu="x64", exception_code="C0000409",
                     exception_name="fail-fast", thread_id=42, faulting_module=exe, faulting_offset="0x1000",
                     bucket=bucket or "C0000409 " + " | ".join(signature), comments=[f"comment {h}"] if h else [],
                     modules=[module], stack=frames, signature=signature,
                     panic={"message": f"boom {h}", "file": f"src/{name}{h}.rs", "line": 3, "column": 5,
                            "thread": f"main{h}"} if panic else None,
                     user_frame=FrameRow(user, f"/src/{name}.rs", 20))


class Parsed(HTMLParser):
    """Every tag with its attributes, and the text, as a browser's parser sees them."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag: str, **attrs) -> list[dict]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def page_of(rows, baseline=None, stores=()) -> str:
    report = Report()
    for row in rows:
        report.add(row)
    return render_html(report, baseline, stores)


# -- escaping ---------------------------------------------------------------------------------------------------

def test_text_escapes_markup_and_shows_bidi_and_controls():
    assert text('<a href="x">&') == "&lt;a href=&quot;x&quot;&gt;&amp;"
    assert text(f"exe.{BIDI}txt") == "exe.\\u202etxt"
    assert text("\u2066a\u2069\u061c") == "\\u2066a\\u2069\\u061c"
    assert text("a\x1bb\x00") == "a\\x1bb\\x00"
    assert text("line\nnext\ttab") == "line\nnext\ttab"
    assert text("\udc80") == "\\udc80"  # a lone surrogate: UTF-8 cannot carry it
    assert text(None) == ""


@pytest.mark.parametrize("url, ok", [
    ("https://example.org/a.rs", True), ("http://h/x", True), ("HTTPS://H/x", True),
    ("javascript:alert(1)", False), ("JavaScript:alert(1)", False), (" javascript:alert(1)", False),
    ("data:text/html,<script>", False), ("file:///etc/passwd", False), ("\\\\server\\share\\a.rs", False),
    ("https://exa mple.org/", False), (f"https://example.org/{BIDI}", False), ("https:///nohost", False),
    ("//example.org/a", False), (None, False), ("%targ%\\a.rs", False),
])
def test_only_http_urls_are_links(url, ok):
    assert (safe_url(url) is not None) is ok and safe_url(url) in (url, None)


def test_hostile_strings_come_out_as_text_in_every_field():
    page = page_of([make_row("evil", hostile=True, pdb_found=False),
                    make_row("evil2", hostile=True, time="2026-12-02T00:00:00")])
    parsed = Parsed(page)
    # Markup from the dump never becomes markup: one script (the page's own), no img, no handlers.
    assert len(parsed.all("script")) == 1 and not parsed.all("img")
    assert not [a for _t, a in parsed.tags for k in a if k.startswith("on")]
    # Every link is http(s); the javascript: source URL is shown as text.
    hrefs = [a["href"] for a in parsed.all("a")]
    assert hrefs and all(h.startswith(("https://", "http://")) for h in hrefs), hrefs
    assert QUOTING_URL in hrefs
    body = "".join(parsed.text)
    assert HOSTILE_URL in body
    # No bidi control reaches the page; each is shown as its escape.
    assert BIDI not in page and "\\u202e" in body
    shown = HOSTILE.replace(BIDI, "\\u202e")
    # Each field carries the hostile text, as text: module names (versions, missing symbols, frames), paths,
    # comments, panic message/location/thread, the OS, store keys and errors, function names, the bucket.
    for field in (f"evil{shown}.exe 6B14EA9D2d000{shown}", f"dumps/evil{shown}.dmp", f"comment {shown}",
                  f"boom {shown}", f"src/evil{shown}.rs:3:5", f"main{shown}", f"Windows NT 10.0{shown}",
                  f"evil{shown}.pdb/66F70EB712EB84974C4C44205044422E1/evil{shown}.pdb", f"store said {shown}",
                  f"evil!evil::crash{shown}", f"!core::panicking::panic{shown}"):
        assert field in body, field
    tbody = parsed.all("tbody", **{"class": "bucket"})
    assert {t["data-bucket"] for t in tbody} == {f"C0000409 evil!evil::crash{shown} | evil!evil::main{shown}",
                                                  f"C0000409 evil2!evil2::crash{shown} | evil2!evil2::main{shown}"}


def test_page_is_self_contained_and_locked_down():
    page = page_of([make_row()])
    parsed = Parsed(page)
    assert not parsed.all("link") and not [a for _t, a in parsed.tags if "src" in a]
    (csp,) = [a["content"] for a in parsed.all("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp and "unsafe-inline" not in csp
    assert not [a for _t, a in parsed.tags if "style" in a]  # inline style attributes would break the CSP


# -- readable without JavaScript ----------------------------------------------------------------------------------

def test_table_is_rendered_in_the_static_html():
    rows = [make_row("a"), make_row("a", time="2026-12-03T00:00:00"), make_row("b", panic=False),
            make_row("c", pdb_found=False)]
    parsed = Parsed(page_of(rows))
    bodies = parsed.all("tbody", **{"class": "bucket"})
    # Most crashes first; every bucket row and its detail row are there, none hidden until a script hides them.
    assert [b["data-bucket"].split("!")[0] for b in bodies] == ["C0000409 a", "C0000409 b", "C0000409 c"]
    assert len(parsed.all("tr", **{"class": "main"})) == 3 and len(parsed.all("tr", **{"class": "detail"})) == 3
    assert not [a for t, a in parsed.tags if t == "tr" and "hidden" in a]
    (controls,) = [a for t, a in parsed.tags if a.get("id") == "controls"]
    assert "hidden" in controls  # the filter works only with JavaScript, so it is shown only then
    counts = [a["data-value"] for a in parsed.all("td", **{"class": "num"}) if "data-value" in a]
    assert counts[:3] == ["2", "1", "1"]
    body = "".join(parsed.text)
    assert "2026-12-01T10:00:00" in body and "2026-12-03T00:00:00" in body
    # The missing PDB, grouped by module, with the key to publish.
    assert "c.pdb/66F70EB712EB84974C4C44205044422E1/c.pdb" in body
    # Frames: inline marked, links to their source.
    assert "inline" in body and parsed.all("a", href="https://example.org/src/a.rs")


def test_chart_and_sparklines_count_crashes_per_day():
    rows = [make_row("a", time=f"2026-12-0{d}T10:00:00") for d in (1, 1, 3)] + [make_row("b")]
    parsed = Parsed(page_of(rows))
    titles = "".join(parsed.text)
    assert "2026-12-01: 2 crashes of C0000409 a!a::crash | a!a::main" in titles
    assert "2026-12-03: 1 crash of C0000409 a!a::crash | a!a::main" in titles
    assert "3 crashes from 2026-12-01 to 2026-12-03, most (2) 2026-12-01" in titles


# -- the baseline ------------------------------------------------------------------------------------------------

def write_json(path: Path, rows) -> Path:
    path.write_text(json.dumps([r.to_json() for r in rows], indent=2))
    return path


def test_baseline_marks_new_growing_seen_and_gone(tmp_path):
    old = write_json(tmp_path / "old.json", [make_row("steady", time="2026-11-01T00:00:00"), make_row("steady"),
                                             make_row("grows"), make_row("gone"), make_row("gone"),
                                             TriageRow("broken.dmp", error="truncated")])
    baseline = load_baseline(old)
    assert (baseline.dumps, baseline.unreadable, len(baseline.buckets)) == (6, 1, 3)
    rows = [make_row("steady"), make_row("grows"), make_row("grows"), make_row("fresh")]
    parsed = Parsed(page_of(rows, baseline))
    status = {b["data-bucket"].split("!")[0].split()[1]: b["data-status"]
              for b in parsed.all("tbody", **{"class": "bucket"})}
    assert status == {"steady": "seen", "grows": "growing", "fresh": "new"}
    body = "".join(parsed.text)
    assert "growing (1 \u2192 2)" in body
    assert "Gone since the baseline" in body and "C0000409 gone!gone::crash | gone!gone::main" in body
    cards = {a["data-key"]: a for a in parsed.all("dd")}
    assert set(cards) >= {"new buckets", "growing", "gone"}
    # First seen goes back to the baseline's first sighting.
    assert "2026-11-01T00:00:00" in body


def test_baseline_accepts_an_empty_run(tmp_path):
    (tmp_path / "empty.json").write_text("[\n]\n")
    assert load_baseline(tmp_path / "empty.json").buckets == {}


@pytest.mark.parametrize("content, words", [
    ("[{\"path\": \"a\", \"bucket\": \"x\"},", "broken JSON"),
    ("{\"error\": {\"message\": \"no dumps\"}}", "error object"),
    ("[1, 2]", "row 1 is int"),
    ("[{\"path\": \"a\"}]", "no 'bucket'"),
    ("[{\"path\": \"a\", \"bucket\": 3}]", "'bucket' is int"),
    ("[{\"path\": \"a\", \"bucket\": \"x\", \"signature\": [1]}]", "'signature'"),
    ("[" * 100000, "nested too deeply"),
    ("[] []", "data after the list"),
    ("", "empty"),
    ("\xff", "not UTF-8"),
])
def test_baseline_refuses_what_is_not_a_run(tmp_path, content, words):
    path = tmp_path / "bad.json"
    path.write_bytes(content.encode("latin-1") if content == "\xff" else content.encode())
    with pytest.raises(FormatError) as err:
        load_baseline(path)
    assert words in str(err.value) and str(path) in str(err.value)


def test_baseline_size_is_capped_before_reading(tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:
        f.truncate(MAX_BASELINE_BYTES + 1)  # sparse: nothing to read if the cap is checked first
    with pytest.raises(FormatError, match="MiB"):
        load_baseline(path)


# -- the command line --------------------------------------------------------------------------------------------

def symtool(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYMTOOL_", "_NT_"))}
    env["NO_COLOR"] = "1"
    proc = symtool_in_process(*map(str, args), timeout=600, cwd=cwd, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


DUMP = ROOT / "tests" / "fixtures" / "dumps" / "symbolic-windows-mini.dmp"


def test_cli_writes_the_report_and_still_prints_text(tmp_path):
    report = tmp_path / "report.html"
    proc = symtool("dumps", DUMP, "--offline", "--html", report, cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    assert "Buckets (1):" in proc.stdout
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and 'class="bucket"' in page
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".symtool-tmp-")]  # written atomically


def test_cli_html_to_stdout_replaces_the_text_report(tmp_path):
    proc = symtool("dumps", DUMP, "--offline", "--html", "-", cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stdout.startswith("<!DOCTYPE html>") and "Buckets (" not in proc.stdout


def test_cli_json_and_html_together(tmp_path):
    proc = symtool("dumps", DUMP, "--offline", "--json", "--html", tmp_path / "r.html", cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    assert len(json.loads(proc.stdout)) == 1 and (tmp_path / "r.html").is_file()


@pytest.mark.parametrize("args, words", [
    (("--html", "-", "--json"), "both write to stdout"),
    (("--json", "--baseline", "BASE"), "--baseline marks buckets"),
    (("--html", "NODIR/r.html"), "NODIR/r.html"),
    (("--html", "."), "is a directory"),
])
def test_cli_bad_report_options_are_exit_2(tmp_path, args, words):
    base = write_json(tmp_path / "base.json", [make_row()])
    args = [str(base) if a == "BASE" else str(tmp_path / a) if a.startswith("NODIR") else a for a in args]
    proc = symtool("dumps", DUMP, "--offline", *args, cwd=tmp_path)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and words in line, line


def test_cli_unwritable_report_dir_is_exit_2(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):
        # root writes anywhere: make the path's parent a file instead, which nobody can write into
        locked = tmp_path / "a-file"
        locked.write_text("")
    proc = symtool("dumps", DUMP, "--offline", "--html", locked / "r.html", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and str(locked / "r.html") in line, line


@pytest.mark.parametrize("content", ["[{", "{\"error\": {}}", "[\"row\"]"])
def test_cli_bad_baseline_is_exit_2_naming_it(tmp_path, content):
    base = tmp_path / "previous.json"
    base.write_text(content)
    proc = symtool("dumps", DUMP, "--offline", "--baseline", base, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: {base}: "), line


def test_cli_missing_baseline_is_exit_2(tmp_path):
    proc = symtool("dumps", DUMP, "--offline", "--baseline", tmp_path / "nope.json", cwd=tmp_path)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and "nope.json" in line, line


def test_cli_text_report_marks_buckets_against_the_baseline(tmp_path):
    first = symtool("dumps", DUMP, "--offline", "--json", cwd=tmp_path)
    (tmp_path / "run1.json").write_text(first.stdout)
    proc = symtool("dumps", DUMP, DUMP, "--offline", "--baseline", tmp_path / "run1.json", cwd=tmp_path)
    assert "[growing (1 \u2192 2)]" in proc.stdout, proc.stdout
    old = write_json(tmp_path / "old.json", [make_row("gone")])
    proc = symtool("dumps", DUMP, "--offline", "--baseline", old, cwd=tmp_path)
    assert "[new]" in proc.stdout and "Gone since the baseline (1):" in proc.stdout
    assert ", 1 new, 1 gone," in proc.stdout


def test_elf_frames_link_to_the_debuginfod_source_tree(tmp_path):
    """Linux frames have no srcsrv: an http(s) store gives the URL `debuginfod-find source` asks; a local
    store's archived copy (publish --sources) is shown as its path, never as a link."""
    build_id = "0123456789abcdef0123456789abcdef01234567"
    row = make_row("lin", source_url=None)
    row.platform = "linux"
    row.stack = [f.__class__(**{**f.__dict__, "source_url": None}) for f in row.stack]
    row.modules[0].codeview, row.modules[0].code_id = "ELF", build_id
    page = Parsed(page_of([row], stores=["https://symbols.example.org/store/"]))
    hrefs = [a["href"] for a in page.all("a", **{"class": "source"})]
    assert f"https://symbols.example.org/store/debuginfod/buildid/{build_id}/source/src/lin.rs" in hrefs, hrefs
    archived = tmp_path / "debuginfod" / "buildid" / build_id / "source" / "src" / "lin.rs"
    archived.parent.mkdir(parents=True)
    archived.write_text("fn main() {}\n")
    page = Parsed(page_of([row], stores=[str(tmp_path)]))
    assert not page.all("a", **{"class": "source"}) and str(archived) in "".join(page.text)
