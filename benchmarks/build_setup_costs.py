"""What a build pays once, whatever its size: this tree against another, in the same run.

    python benchmarks/build_setup_costs.py --baseline OTHER_TREE [--data ../shared/data] [--rounds R]

On the US-application / EP build (4 documents, 39 drawings) the work done once per build is a
measurable share of its CPU per drawing. Each part runs in a fresh Python process per tree
(``PYTHONPATH`` = that tree's ``src``; ``OMP_THREAD_LIMIT=1``), alternating which tree goes first in
each round, and measures its own CPU time (``time.process_time``):

- ``preload``: importing the OCR readers' forkserver modules (that tree's ``READER_PRELOAD`` of
  ``figsearch.pipeline.signs``), once per overlapped build;
- ``engine``: ``create_engine("tesseract")`` in a process that has them imported, as the build process
  makes one (it never reads with it: its readers read; the build process has most of them imported);
- ``reader``: in a process with them imported (as a reader forked from the forkserver),
  ``create_engine("tesseract")`` and its first reading of a drawing sheet (``EP1667425A1``'s
  first sheet, normalised as ingest stores it), as each reader process starts (tesseract's language
  model loads in one or the other);
- ``text model``: ``minilm(threads=1)`` after its imports, as the build process loads it once;
- ``sentences``: ``PatentText.of`` of the 4 documents (their XML parsed before), as the writer makes
  it once per patent.

Prints each part's median per tree and the ratio, with the load average before and after, and what
they add up to in one overlapped build with 2 readers (each part once, ``reader`` twice).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_WORKER = r"""
import json, sys, time
part, data = sys.argv[1], sys.argv[2]
from pathlib import Path
if part == "preload":
    start = time.process_time()
    import importlib
    import figsearch.pipeline.signs as signs
    for name in signs.READER_PRELOAD:
        if name != "__main__":
            importlib.import_module(name)
    spent = time.process_time() - start
elif part in ("engine", "reader"):
    import importlib
    import figsearch.pipeline.signs as signs
    for name in signs.READER_PRELOAD:  # what a reader forked from the forkserver starts with
        if name != "__main__":
            importlib.import_module(name)
    from figsearch.ocr import create_engine
    start = time.process_time()
    engine = create_engine("tesseract")
    spent = time.process_time() - start
    if part == "reader":
        from figsearch import imaging
        from figsearch.pipeline.signs import read_drawing_ahead
        tif = Path(data) / "ep-documents/EP1667425A1/imgf0001.tif"
        sheet = imaging.normalise(next(imaging.open_pages(tif, None, source=str(tif)))[2]).image
        start = time.process_time()
        read_drawing_ahead(sheet, engine, True)
        spent += time.process_time() - start
elif part == "text model":
    import onnxruntime, tokenizers
    from figsearch.embed.encoders.text import minilm
    start = time.process_time()
    minilm(threads=1)
    spent = time.process_time() - start
else:  # sentences
    from figsearch.ingest import xmlsafe
    from figsearch.ingest.ep_xml import parse_document as ep
    from figsearch.ingest.us_xml import parse_document as us
    from figsearch.link.patent_text import PatentText
    files = sorted(Path(data).glob("us-applications/*/*.XML")) + sorted(Path(data).glob("ep-documents/*/*.xml"))
    patents = []
    for path in files:
        root = xmlsafe.parse(path.read_bytes(), str(path))
        patents.append((ep if root.tag == "ep-patent-document" else us)(root, str(path), path.parent).patent)
    start = time.process_time()
    texts = [PatentText.of(p) for p in patents]
    spent = time.process_time() - start
print(json.dumps(spent))
"""

PARTS = ("preload", "engine", "reader", "text model", "sentences")
#: how many times an overlapped build with 2 readers pays each part
IN_A_BUILD = {"reader": 2}


def run(src: Path, part: str, data: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_THREAD_LIMIT": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", _WORKER, part, str(data)], env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{part} with {src} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="the other source tree (its src/ is used)")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "data")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    trees = {"this tree": Path(__file__).resolve().parent.parent / "src", "baseline": args.baseline.resolve() / "src"}
    spent: dict[tuple[str, str], list[float]] = {}
    before = os.getloadavg()[0]
    for round_ in range(args.rounds):
        order = list(trees) if round_ % 2 == 0 else list(trees)[::-1]
        for part in PARTS:
            for name in order:
                spent.setdefault((part, name), []).append(run(trees[name], part, args.data))
    print(f"{args.rounds} rounds, load {before:.1f} -> {os.getloadavg()[0]:.1f}; CPU s, median (each run a fresh process)")
    print("| part | this tree | baseline | ratio |\n|---|---|---|---|")
    total = {name: 0.0 for name in trees}
    for part in PARTS:
        mine, base = (statistics.median(spent[(part, name)]) for name in trees)
        total["this tree"] += IN_A_BUILD.get(part, 1) * mine
        total["baseline"] += IN_A_BUILD.get(part, 1) * base
        print(f"| {part} | {mine:.3f} | {base:.3f} | {mine / max(base, 1e-9):.2f} |")
    print(f"| one overlapped build (2 readers) | {total['this tree']:.3f} | {total['baseline']:.3f} | "
          f"{total['this tree'] - total['baseline']:+.3f} CPU s |")


if __name__ == "__main__":
    main()
