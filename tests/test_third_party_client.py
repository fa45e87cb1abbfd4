"""A symbol-server client nobody here wrote reads stores symtool published.

pdbparse ships ``symchk.py``, an independent symsrv-style downloader: it asks
``<url>/<pdb>/<GUIDAGE>/<pd_>`` and then the plain name, and expands CABs
with cabextract.  Pointed at the sample build published by symtool (plain and
``--compress``) and served by the real nginx, it must get back the very PDB
the build wrote.  pdbparse does not install on Python >= 3.12, hence the
optional skip there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import need_tool


def _symchk() -> Path:
    try:
        import pdbparse  # noqa: F401
    except Exception as err:  # construct/imp on Python >= 3.12
        pytest.skip(f"optional: pdbparse not importable ({type(err).__name__})")
    script = Path(sys.executable).parent / "symchk.py"
    if not script.is_file():
        found = shutil.which("symchk.py")
        if not found:
            pytest.skip("optional: pdbparse's symchk.py script is not installed")
        script = Path(found)
    return script


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "compressed"])
def test_pdbparse_symchk_fetches_what_symtool_published(nginx, sample_build, tmp_path, env, compress):
    script = _symchk()
    need_tool("cabextract")
    name = f"thirdparty-{'cab' if compress else 'plain'}"
    store = nginx.www / "upload-open" / name
    args = [sys.executable, "-m", "symtool", "publish", str(sample_build.out()), "--store", str(store)]
    if compress:
        args.append("--compress")
    pub = subprocess.run(args, env=env, capture_output=True, text=True)
    assert pub.returncode == 0, pub.stderr
    if compress:
        assert list(store.glob("crash_me.pdb/*/crash_me.pd_")), "expected a CAB in the store"

    work = tmp_path / "client"
    work.mkdir()
    proc = subprocess.run(
        [sys.executable, str(script), "-u", nginx.url(f"upload-open/{name}"), str(sample_build.exe("crash-me"))],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )
    got = work / "crash_me.pdb"
    assert got.is_file(), proc.stdout + proc.stderr
    assert got.read_bytes() == sample_build.pdb("crash-me").read_bytes()
