"""`symtool dumps --html` in a real browser: Debian's headless Chromium, driven over the DevTools
protocol (tests/cdp_browser.py), after the page's scripts ran.

The report is made from real crashes: five std programs of the corpus (tests/corpus/std-crashers)
crashed under Wine, their PDBs source-indexed (`symtool srcindex --map`) and published to a store,
and one Linux crash (the samples' crash-deep under gdb, its core turned into a Breakpad minidump, as
tests/test_linux_stack.py makes them).  The bucket rows must be those of `dumps --json`; sorting,
filtering and expanding must change the rows; no script error may be logged; hostile strings must
stay text.  Each test keeps a screenshot in build/test-artifacts/ (and under pytest's tmp dir).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from cdp_browser import Browser, artifact_dir
from conftest import need_tool
from test_html_report import HOSTILE, HOSTILE_URL, make_row, symtool

PROGRAMS = ["unwrap_none", "index_oob", "refcell_borrow", "thread_panic", "access_violation"]
STD_URL = "https://raw.githubusercontent.com/rust-lang/rust/1.63.0/library/"
CORPUS_URL = "https://example.org/symtool/tests/corpus/std-crashers/"


def _source_prefixes(pdb: Path, cwd: Path) -> list[str]:
    """--map rules for a corpus PDB: std's sources (the toolchain's rust-src) and the corpus's, wherever the
    corpus was built."""
    proc = symtool("srcindex", pdb, "--dry-run", "--json", cwd=cwd)
    files = [f["path"] for f in json.loads(proc.stdout)[0]["files"]]
    maps = set()
    for path in files:
        if "/rust-src/library/" in path:
            maps.add(path.split("/rust-src/library/")[0] + "/rust-src/library/=" + STD_URL)
        elif "/tests/corpus/std-crashers/" in path:
            maps.add(path.split("/tests/corpus/std-crashers/")[0] + "/tests/corpus/std-crashers/=" + CORPUS_URL)
    return sorted(maps)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, linux_builds):
    """Real dumps (5 Windows std crashes, 1 Linux crash) and the store and build dir they read from."""
    need_tool("wine")
    need_tool("winedbg")
    need_tool("cargo")
    need_tool("gdb")
    from std_corpus import CorpusUnavailable, shared_crashes

    root = tmp_path_factory.mktemp("htmlreport")
    dumps = root / "dumps"
    dumps.mkdir()
    try:
        _shared, every_crash = shared_crashes(tmp_path_factory)  # crashed once per run (tests/std_corpus.py)
    except CorpusUnavailable as err:
        pytest.skip(f"the std toolchain cannot be built here: {err}")
    crashes = {name: every_crash[name] for name in PROGRAMS}
    for c in crashes.values():
        shutil.copyfile(c.dump, dumps / c.dump.name)
    store = root / "store"
    for c in crashes.values():
        staged = root / "staged" / c.name
        staged.mkdir(parents=True)
        shutil.copyfile(c.exe, staged / c.exe.name)
        shutil.copyfile(c.pdb, staged / c.pdb.name)
        maps = [a for m in _source_prefixes(staged / c.pdb.name, root) for a in ("--map", m)]
        proc = symtool("srcindex", staged / c.pdb.name, *maps, cwd=root)
        assert proc.returncode in (0, 1), proc.stderr
        proc = symtool("publish", staged, "--store", store, cwd=root)
        assert proc.returncode == 0, proc.stderr
    # One Linux dump, made as tests/test_linux_stack.py makes them.
    from builders.core_minidump import core_to_minidump
    from test_linux_stack import gdb_crash

    build = linux_builds.dwarf4
    gdb_crash(build.bin("crash-deep"), root / "crash-deep.core")
    (dumps / "crash-deep-linux.dmp").write_bytes(core_to_minidump(root / "crash-deep.core"))
    return {"root": root, "dumps": dumps, "store": store, "build_dir": build.out}


@pytest.fixture(scope="module")
def runs(corpus):
    """`dumps --json` and `dumps --html` on the same dumps."""
    args = [corpus["dumps"], "--store", corpus["store"], "--build-dir", corpus["build_dir"], "--offline"]
    as_json = symtool("dumps", *args, "--json", cwd=corpus["root"])
    assert as_json.returncode == 0, as_json.stderr
    report = corpus["root"] / "report.html"
    as_html = symtool("dumps", *args, "--html", report, cwd=corpus["root"])
    assert as_html.returncode == 0, as_html.stderr
    return {"rows": json.loads(as_json.stdout), "report": report}


@pytest.fixture(scope="module")
def browser():
    binary = need_tool("chromium")
    b = Browser(binary)
    yield b
    b.close()


@pytest.fixture
def page(browser):
    p = browser.page()
    yield p
    p.close()


def keep_screenshot(page, tmp_path: Path, name: str) -> Path:
    shot = page.screenshot(tmp_path / name)
    shutil.copyfile(shot, artifact_dir() / name)
    return shot


# The visible bucket rows, in page order, each cell read by its column's key.
DOM_ROWS = """(() => {
  const keys = Array.from(document.querySelectorAll('#bucket-table thead th')).map(th => th.dataset.key);
  const cell = (t, k) => t.rows[0].cells[keys.indexOf(k)].getAttribute('data-value');
  return Array.from(document.querySelectorAll('#bucket-table tbody.bucket')).filter(t => !t.hidden).map(t => ({
    bucket: t.getAttribute('data-bucket'), count: +cell(t, 'count'), first: cell(t, 'first'), last: cell(t, 'last'),
  }));
})()"""


def test_bucket_rows_match_json(runs, page, tmp_path):
    page.open(runs["report"].as_uri())
    rows = runs["rows"]
    counts = Counter(r["bucket"] for r in rows)
    # A bucket's first and last time ("" when no dump of it has one: the Linux dump made from a core).
    times = {k: sorted(r["time"] for r in rows if r["bucket"] == k and r["time"]) or [""] for k in counts}
    dom = page.evaluate(DOM_ROWS)
    assert [d["bucket"] for d in dom] == sorted(counts, key=lambda k: (-counts[k], times[k][0], k))
    for d in dom:
        assert (d["count"], d["first"], d["last"]) == (counts[d["bucket"]], times[d["bucket"]][0],
                                                       times[d["bucket"]][-1])
    # The Linux crash is one of them, symbolized through its DWARF.
    assert any("crash_deep!crash_deep::level3" in d["bucket"] for d in dom), dom
    summary = page.evaluate("Object.fromEntries(Array.from(document.querySelectorAll('#summary dd'))"
                            ".map(d => [d.dataset.key, d.textContent]))")
    assert summary["dumps read"] == str(len(rows)) and summary["buckets"] == str(len(counts))
    assert summary["unreadable"] == "0" and summary["symbols missing"] == "0"
    keep_screenshot(page, tmp_path, "html-report.png")
    page.drain()
    assert page.errors == []


def test_sorting_and_filtering_change_the_rows(runs, page):
    page.open(runs["report"].as_uri())
    before = [d["bucket"] for d in page.evaluate(DOM_ROWS)]
    sort_by = "document.querySelector('th[data-key=\"{}\"] button.sort').click()"
    page.evaluate(sort_by.format("signature"))
    first = [d["bucket"] for d in page.evaluate(DOM_ROWS)]
    signatures = page.evaluate("Array.from(document.querySelectorAll('tbody.bucket')).map(t => "
                               "t.rows[0].cells[0].getAttribute('data-value').toLowerCase())")
    assert signatures == sorted(signatures, reverse=True) and first != before
    assert page.evaluate("document.querySelector('th[data-key=\"signature\"]').getAttribute('aria-sort')") \
        == "descending"
    page.evaluate(sort_by.format("signature"))
    assert [d["bucket"] for d in page.evaluate(DOM_ROWS)] == first[::-1]
    page.evaluate(sort_by.format("last"))
    lasts = [d["last"] for d in page.evaluate(DOM_ROWS)]
    assert lasts == sorted(lasts, reverse=True)

    def type_filter(query: str) -> None:
        page.evaluate("(q => { const f = document.getElementById('filter'); f.value = q; "
                      f"f.dispatchEvent(new Event('input')); }})({json.dumps(query)})")

    type_filter("index out of bounds")
    shown = page.evaluate(DOM_ROWS)
    assert len(shown) == 1 and "index_oob" in shown[0]["bucket"]
    assert page.evaluate("document.getElementById('shown').textContent") == f"1 of {len(before)} buckets shown"
    type_filter("C0000409")
    assert {d["bucket"] for d in page.evaluate(DOM_ROWS)} == {b for b in before if b.startswith("C0000409")}
    type_filter("")
    assert len(page.evaluate(DOM_ROWS)) == len(before)
    page.drain()
    assert page.errors == []


def test_expanding_a_bucket_shows_its_frames_and_source_links(runs, page, tmp_path):
    page.open(runs["report"].as_uri())
    bucket = next(r["bucket"] for r in runs["rows"] if "unwrap_none" in r["path"])
    select = f"document.querySelector('tbody.bucket[data-bucket={json.dumps(bucket)}]')"
    assert page.evaluate(f"{select}.rows[1].hidden") is True  # collapsed by the script
    assert page.evaluate(f"{select}.querySelector('button.toggle').getAttribute('aria-expanded')") == "false"
    page.evaluate(f"{select}.querySelector('button.toggle').click()")
    assert page.evaluate(f"{select}.rows[1].hidden") is False
    assert page.evaluate(f"{select}.querySelector('button.toggle').getAttribute('aria-expanded')") == "true"
    frames = page.evaluate(f"Array.from({select}.querySelectorAll('li.frame')).map(li => ({{"
                           "text: li.querySelector('code').textContent, inline: li.classList.contains('inline'), "
                           "href: li.querySelector('a.source') && li.querySelector('a.source').href}))")
    row = next(r for r in runs["rows"] if "unwrap_none" in r["path"])
    assert [f["text"].split("!", 1)[1].split("+0x")[0] for f in frames] == [s["function"] for s in row["stack"]]
    assert [f["inline"] for f in frames] == [s["inline"] for s in row["stack"]]
    links = [f["href"] for f in frames if f["href"]]
    assert links == [s["source_url"] for s in row["stack"] if s["source_url"]] and links
    assert any(link.startswith(CORPUS_URL) for link in links) and any(link.startswith(STD_URL) for link in links)
    # Its dumps: path, time, OS, thread.
    dumps = page.evaluate(f"Array.from({select}.querySelectorAll('table.dumps tbody tr')).map(tr => "
                          "Array.from(tr.cells).map(c => c.textContent))")
    assert dumps == [[row["path"], row["time"], row["os"], str(row["thread_id"]), ""]]
    # Keyboard: the toggle is a button, so Enter and Space work; it takes the focus.
    assert page.evaluate(f"{select}.querySelector('button.toggle').focus(), "
                         f"document.activeElement === {select}.querySelector('button.toggle')") is True
    keep_screenshot(page, tmp_path, "html-report-expanded.png")
    page.drain()
    assert page.errors == []


def test_hostile_strings_stay_text_and_nothing_runs(page, tmp_path):
    from symtool.dumps.report import Report, render_html

    report = Report()
    for name in ("evil", "evil2"):
        report.add(make_row(name, hostile=True, pdb_found=False))
    path = tmp_path / "hostile.html"
    path.write_text(render_html(report, None, ["https://symbols.example.org/store"]))
    page.open(path.as_uri())
    page.evaluate("document.querySelectorAll('button.toggle').forEach(b => b.click())")
    page.evaluate("document.querySelectorAll('button.sort').forEach(b => b.click())")
    page.drain()
    assert page.evaluate("window.__pwned === undefined") is True
    assert page.evaluate("document.scripts.length") == 1 and page.evaluate("document.images.length") == 0
    hrefs = page.evaluate("Array.from(document.links).map(a => a.href)")
    assert hrefs and all(h.startswith(("https:", "http:")) for h in hrefs), hrefs
    body = page.evaluate("document.body.innerText")
    assert HOSTILE.replace("\u202e", "\\u202e") in body and HOSTILE_URL in body and "\u202e" not in body
    keep_screenshot(page, tmp_path, "html-report-hostile.png")
    assert page.errors == []


def test_a_large_report_opens_without_script_errors(corpus, page, tmp_path):
    """1,000 dumps over 30 days: the real rows of the corpus dumps, each added ~170 times with another
    path and day (bench/bench_html.py runs the CLI on 1,000 real dump files and times it)."""
    import dataclasses

    from symtool.dumps.triage import triage
    from symtool.dumps.report import Report, render_html

    rows = list(triage(sorted(corpus["dumps"].glob("*.dmp")), [str(corpus["store"])], [str(corpus["build_dir"])]))
    report = Report()
    for k in range(1000):
        row = rows[k % len(rows)]
        report.add(dataclasses.replace(row, path=f"pile/{k:04d}-{Path(row.path).name}",
                                       time=f"2026-11-{1 + k % 30:02d}T{k % 24:02d}:00:00"))
    path = tmp_path / "big.html"
    path.write_text(render_html(report, None, [str(corpus["store"])]))
    assert path.stat().st_size < 1 << 20
    page.open(path.as_uri())
    assert page.evaluate("document.querySelectorAll('tbody.bucket').length") == len({r.bucket for r in rows})
    assert page.evaluate("document.querySelector('#summary dd[data-key=\\'dumps read\\']').textContent") == "1000"
    assert page.evaluate("document.querySelectorAll('svg.chart rect').length") >= 30
    page.evaluate("document.getElementById('expand-all').click()")
    keep_screenshot(page, tmp_path, "html-report-1000.png")
    page.drain()
    assert page.errors == []
