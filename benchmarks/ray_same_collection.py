"""Whether a 2-worker Ray build of the first N design grants stores the local build's collection.

    PYTHONPATH=src:tests python benchmarks/ray_same_collection.py [N] [SCRATCH]

Builds the first N (default 6) folders of ``../shared/data/us-design-grants`` with the stages in turn
(``pipeline.building.build``) and on a local Ray instance of 2 workers, into SCRATCH/local and SCRATCH/ray
(default: a temporary folder), and prints: every table but the vectors' (``tests/collection_check.py``),
the vectors' keys, their largest difference and whether their input digests are equal (a cut figure's is
``sheet_context.context_digest`` when it was stored mixed with its sheet), and how many cut figures each
build mixed with their sheets. Stop 29 (docs/cluster.md) checked with it that the driver's mixing from the
sheet vectors the workers made stores what ``mix_sheet_context`` stores.
"""
from __future__ import annotations

import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GRANTS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "us-design-grants"


def _embeddings(root: Path) -> dict:
    with sqlite3.connect(f"file:{root / 'figsearch.sqlite'}?mode=ro", uri=True) as db:
        return {(f, m, e): (np.frombuffer(v, dtype=np.float32), d) for f, m, e, v, d in
                db.execute("SELECT figure_id, modality, encoder, vector, input_sha256 FROM embeddings")}


def main() -> int:
    from collection_check import compare, snapshot

    from figsearch.pipeline.building import build
    from figsearch.pipeline.distributed import RayCluster

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="ray-same-"))
    shutil.rmtree(out / "local", ignore_errors=True)
    shutil.rmtree(out / "ray", ignore_errors=True)
    paths = sorted(p for p in GRANTS.iterdir() if p.is_dir())[:count]
    started = time.perf_counter()
    local = build(paths, out / "local")
    print(f"local build: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    with RayCluster("local", workers=2) as cluster:
        ray = build(paths, out / "ray", cluster=cluster)
    print(f"Ray build, 2 workers: {time.perf_counter() - started:.1f} s; drawings encoded {dict(cluster.encoded)}")
    mixed = [{e.modality: e.mixed for e in report.index.embedded}.get("visual") for report in (local, ray)]
    print(f"cut figures mixed with their sheets: local {mixed[0]}, Ray {mixed[1]} (of them by the driver as it stored "
          f"them, from the sheets' vectors the workers made while ingesting: {cluster.mixed_as_stored})")
    reference, other = snapshot(out / "local"), snapshot(out / "ray")
    for snap in (reference, other):
        snap.tables.pop("embeddings")
    difference = compare(reference, other)
    print("tables and files:", "identical" if difference.equal else str(difference)[:2000])
    a, b = _embeddings(out / "local"), _embeddings(out / "ray")
    print(f"vectors: {len(a)} local, {len(b)} Ray, the same keys: {a.keys() == b.keys()}")
    if a.keys() == b.keys() and a:
        print(f"largest difference {max(float(np.abs(a[k][0] - b[k][0]).max()) for k in a):.1e}; "
              f"input digests equal: {all(a[k][1] == b[k][1] for k in a)}")
    return 0 if difference.equal and a.keys() == b.keys() else 1


if __name__ == "__main__":
    sys.exit(main())
