"""Index files opened memory-mapped (issue 15: server workers share the pages instead of copying them).

`ModalityIndex.open` reads FAISS indexes with `IO_FLAG_MMAP_IFC`: flat codes and plain inverted
lists are then pages of the file, shared between processes. A mapped index must answer exactly as
the same file read into memory, and opening it must not copy its codes into the process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss")

from figsearch.index import modality  # noqa: E402
from figsearch.index.modality import ModalityIndex, build  # noqa: E402
from figsearch.index.plan import choose_plan  # noqa: E402

faiss = modality._faiss()


def _data(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    middles = rng.standard_normal((50, dim))
    x = middles[rng.integers(0, 50, n)] + 0.4 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _build(directory: Path, x: np.ndarray, factory: str) -> dict:
    n, dim = x.shape
    ids = [f"F{i:07d}" for i in range(n)]
    return build(directory, "visual", key="k", identity={}, dim=dim, plan=choose_plan(n, dim, factory=factory),
                 chunks=[(ids, x, n)], generation=1)


@pytest.mark.parametrize("factory", ["Flat", "IVF32,Flat", "IVF32,PQ16", "IVF32,PQ32x4fs"])
def test_a_mapped_index_answers_as_the_same_file_read_into_memory(tmp_path, factory):
    x = _data(4000, 64)
    entry = _build(tmp_path, x, factory)
    mapped = ModalityIndex.open(tmp_path, "visual", entry)
    copied = ModalityIndex(mapped.modality, entry, faiss.read_index(str(tmp_path / entry["files"]["index"])),
                           mapped.ids, mapped.vectors)
    modality._set_nprobe(copied.index, entry["nprobe"])
    assert mapped.mapped == (factory != "IVF32,PQ32x4fs")  # fast-scan lists cannot be mapped: FAISS copies them
    for q in _data(20, 64, seed=1):
        assert mapped.search(q, 10) == copied.search(q, 10)


_CHILD = """
import json, sys
from pathlib import Path
from figsearch.index import modality

def anon():
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("RssAnon:"))

faiss = modality._faiss()
directory, entry, how = Path(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
before = anon()
if how == "mapped":
    index = modality.ModalityIndex.open(directory, "visual", entry).index
else:
    index = faiss.read_index(str(directory / entry["files"]["index"]))
index.search(modality.np.zeros((1, entry["dim"]), "float32") + 0.05, 10)
print(json.dumps({"grew": anon() - before}))
"""


@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat"])
def test_opening_mapped_leaves_the_codes_in_the_page_cache(tmp_path, factory):
    x = _data(40_000, 256)  # 41 MB of codes
    entry = _build(tmp_path, x, factory)
    size = (tmp_path / entry["files"]["index"]).stat().st_size

    def grew(how: str) -> int:
        out = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path), json.dumps(entry), how],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])["grew"]

    assert grew("copied") > 0.8 * size
    assert grew("mapped") < 0.2 * size
