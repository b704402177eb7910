"""Cross-lingual retrieval on EP grants' parallel claims: does a claim find its translation?

An EP B1/B2 publication prints its claims in English, German and French. The three blocks
(``<claims lang="en|de|fr">``) hold the same claims under the same numbers (``num="0001"``
...), so claim N of one block is the translation of claim N of the others: pairs are
aligned by (document, claim number), and a document whose blocks do not hold the same
numbers is left out. For each claim in language X the benchmark searches all claims in
language Y (every document's, by cosine of the encoder's vectors) and counts a hit when the
nearest is the translation (recall@1); it also prints MRR. Both encoders run in the same
process on the same claims; the ratios compare them.

Data: ``../shared/data/xml-text-only/ep/*B1.xml``, ``*B2.xml`` and every
``../shared/data/ep-documents/*/*.xml`` with three claims blocks.

    python benchmarks/crosslingual_benchmark.py [--data ../shared/data] [--models use-multilingual,minilm]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

from figsearch.embed.catalog import create_text
from figsearch.ingest import xmlsafe
from figsearch.ingest.ep_xml import parse_document
from figsearch.records import Section

LANGS = ("en", "de", "fr")
REPO = Path(__file__).resolve().parents[1]


def parallel_claims(data: Path) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """(document, claim number) keys and, per language, the claim texts in the same order."""
    files = sorted((data / "xml-text-only" / "ep").glob("*B[12].xml")) + sorted((data / "ep-documents").glob("*/*.xml"))
    keys: list[tuple[str, str]] = []
    texts: dict[str, list[str]] = {lang: [] for lang in LANGS}
    for path in files:
        root = xmlsafe.parse(path.read_bytes(), str(path))
        patent = parse_document(root, str(path), path.parent).patent
        blocks = {lang: {p.number: p.text for p in patent.paragraphs if p.section == Section.CLAIMS and p.lang == lang}
                  for lang in LANGS}
        numbers = list(blocks["en"])
        if not numbers or any(list(blocks[lang]) != numbers for lang in LANGS):
            print(f"  left out {path.name}: claims blocks {({k: len(v) for k, v in blocks.items()})}", file=sys.stderr)
            continue
        name = f"{path.parent.name}/{path.name}"
        for number in numbers:
            keys.append((name, number))
            for lang in LANGS:
                texts[lang].append(blocks[lang][number])
    return keys, texts


def evaluate(vectors: dict[str, np.ndarray], documents: list[str]) -> dict[tuple[str, str], tuple[float, float, float]]:
    """(X, Y) -> (recall@1, MRR, share of misses whose top hit is another claim of the same document)."""
    out = {}
    documents = np.array(documents)
    for x, y in itertools.permutations(LANGS, 2):
        scores = vectors[x] @ vectors[y].T
        correct = np.diag(scores)
        ranks = (scores > correct[:, None]).sum(axis=1) + 1
        misses = ranks > 1
        same = documents[scores.argmax(axis=1)] == documents
        share = float(np.mean(same[misses])) if misses.any() else 0.0
        out[(x, y)] = (float(np.mean(ranks == 1)), float(np.mean(1.0 / ranks)), share)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--models", default="use-multilingual,minilm", help="comma-separated text encoders; "
                        "the last is the baseline the others are compared with")
    args = parser.parse_args()
    if not (args.data / "xml-text-only" / "ep").is_dir():
        sys.exit(f"no EP data under {args.data}: give --data ../shared/data")
    keys, texts = parallel_claims(args.data)
    documents = len({k[0] for k in keys})
    print(f"{len(keys)} claims in each of {', '.join(LANGS)} from {documents} EP grants "
          f"(aligned by document and claim number)")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    results = {}
    for model in models:
        encoder = create_text(model)
        started = time.perf_counter()
        vectors = {lang: encoder.encode(texts[lang]) for lang in LANGS}
        seconds = time.perf_counter() - started
        results[model] = evaluate(vectors, [k[0] for k in keys])
        print(f"\n{model}: {3 * len(keys)} claims embedded in {seconds:.1f} s "
              f"({3 * len(keys) / seconds:.0f} claims/s)")
        print("  query -> target   recall@1   MRR     misses that hit a claim of the same grant")
        for (x, y), (r1, mrr, same) in results[model].items():
            print(f"  {x} -> {y}           {r1:.3f}   {mrr:.3f}   {same:.2f}")
        worst = min(r[0] for r in results[model].values())
        print(f"  lowest recall@1 over the six pairs: {worst:.3f}")
    if len(models) > 1:
        baseline = models[-1]
        for model in models[:-1]:
            print(f"\nrecall@1 ratio {model} / {baseline}:")
            for pair, (r1, _, _) in results[model].items():
                base = results[baseline][pair][0]
                ratio = f"{r1 / base:.2f}x" if base else "inf"
                print(f"  {pair[0]} -> {pair[1]}  {r1:.3f} / {base:.3f} = {ratio}")


if __name__ == "__main__":
    main()
