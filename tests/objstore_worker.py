"""A publisher process for the object-storage race and SIGKILL tests.

    python tests/objstore_worker.py LOCATION SHARED VARIANT...

Publishes, one transaction each, SHARED together with each VARIANT in turn
(credentials and endpoint from the environment) prints ``ready`` once imported, then every transaction
id as it commits, one per line, flushed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from symtool.store.backends import open_backend  # noqa: E402
from symtool.store.identify import identify  # noqa: E402
from symtool.store.objstore import ObjectStore  # noqa: E402


def main(argv: list[str]) -> int:
    location, shared, *variants = argv
    store = ObjectStore(open_backend(location))
    shared_item = identify(Path(shared))
    print("ready", flush=True)
    for v in variants:
        txn, _files = store.publish([shared_item, identify(Path(v))], product="race", comment=Path(v).name)
        print(txn, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
